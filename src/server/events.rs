//! `POST /v1/leads/{id}/events` and `POST /v1/events` (by email): events join the person's
//! history (issue 25). They are kept, not scored here: the person's next evaluation (an
//! arrival, a dry run) scores the whole history.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState, ErrorCode};
use crate::lead::Event;
use crate::store::LeadRef;

fn parse(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|r| super::edge::body_error(&r))?;
    serde_json::from_slice::<Value>(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })
}

fn events_of(body: &Value) -> Result<Vec<Event>, ApiError> {
    crate::events::parse_body(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field(e.field.clone()))
}

/// Keeps the events of the lead `who` names: found, refused if erased, and stored in one
/// write (SQLite: the group commit's next batch), answered once on disk.
async fn keep(state: &AppState, who: LeadRef, events: &[Event]) -> Result<Response, ApiError> {
    let missing = match &who {
        LeadRef::Email(_) => "has this email",
        _ => "has this id",
    };
    let kept = match state.store.keep_events(&who, events).await {
        Ok(Some(kept)) => kept,
        Ok(None) => return Err(unknown(missing)),
        Err(crate::store::StoreError::Suppressed) => return Err(super::routes::suppressed()),
        Err(e) => return Err(ApiError::internal(e)),
    };
    metrics::counter!("leadgate_events_stored_total").increment(kept.added);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "lead_id": kept.lead_id,
            "received": events.len(),
            "stored": kept.added,
            "duplicates": events.len() as u64 - kept.added,
        })),
    )
        .into_response())
}

fn unknown(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no lead {what}; send the lead (POST /v1/leads) before its events"),
    )
}

/// `POST /v1/leads/{id}/events`: one event or `{"events": [...]}` for a known lead.
pub async fn post_lead_events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    _json: super::edge::JsonContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let events = events_of(&parse(body)?)?;
    keep(&state, LeadRef::Id(id), &events).await
}

/// `POST /v1/events`: the same, naming the person by `email` in the body.
pub async fn post_events(
    State(state): State<Arc<AppState>>,
    _json: super::edge::JsonContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse(body)?;
    let email = match body.get("email") {
        Some(Value::String(e)) => crate::normalize::normalize_email(e)
            .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field("email"))?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidLead,
                "name the person: \"email\": \"...\" beside the event or the events",
            )
            .field("email"))
        }
    };
    let events = events_of(&body)?;
    keep(&state, LeadRef::Email(email), &events).await
}
