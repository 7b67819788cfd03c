//! `GET /v1/connectors`: every connector's configuration and health — configured?,
//! credentials present?, rate limit, circuit state, credits used today, hit rate.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

pub async fn list(State(state): State<Arc<AppState>>) -> Json<Value> {
    let reports = state.pipeline.connectors.report(&state.pipeline.waterfall);
    Json(json!({ "connectors": reports }))
}
