//! Routing routes: record that an owner worked a lead (what the SLA sweep checks), a lead's
//! assignment history and routing audit trail, the pools' state now, and pausing or resuming
//! a member at run time.
//!
//! - `POST /v1/leads/{id}/touched` — body (all optional) `{"owner": "41629779",
//!   "activity": "call", "at": "2026-11-23T10:00:00Z"}`; closes the lead's open SLA as met.
//! - `GET /v1/leads/{id}/routing` — `{"assignments": [...], "events": [...]}`.
//! - `GET /v1/pools` — every pool's members: status now, assigned today, capacity.
//! - `POST /v1/pools/{pool}/members/{owner}/pause` (body `{"reason": "..."}` optional) and
//!   `.../resume`; pool `*` pauses the owner in every pool.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState, ErrorCode};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchBody {
    /// The CRM owner who worked the lead; without it, whoever owns the lead.
    owner: Option<String>,
    /// What they did (`call`, `email`, `meeting`, `status_change` ...), for the audit trail.
    activity: Option<String>,
    /// When; now by default.
    at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    reason: Option<String>,
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: Default + for<'de> Deserialize<'de>>(
    headers: &axum::http::HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // A body is JSON by its Content-Type too: `text/plain` crosses sites without a preflight.
    if !super::edge::is_json(headers) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        )
        .field("Content-Type"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid: {e}"),
        )
    })
}

pub async fn touched(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: TouchBody = optional_body(&headers, &body)?;
    let at = b.at.unwrap_or_else(Utc::now);
    let recorded = state
        .store
        .record_touch(&id, b.owner.as_deref(), b.activity.as_deref(), at)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no lead with id {id}")))?;
    Ok(Json(
        json!({"lead_id": recorded.lead_id, "recorded": true, "sla_met": recorded.sla_met}),
    ))
}

pub async fn lead_routing(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .store
        .lead(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no lead with id {id}")))?;
    let assignments = state
        .store
        .lead_assignments(&view.id)
        .await
        .map_err(ApiError::internal)?;
    let events = state
        .store
        .route_events(&view.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        json!({"lead_id": view.id, "assignments": assignments, "events": events}),
    ))
}

pub async fn pools(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let snapshot = state
        .store
        .assignment_snapshot(now)
        .await
        .map_err(ApiError::internal)?;
    let mut out = Vec::new();
    for pool in state.pipeline.router.pools() {
        let members: Vec<Value> = pool
            .members
            .iter()
            .map(|m| {
                let day = m.calendar.local_day(now).to_string();
                let assigned = snapshot.counts.get(&(m.owner.clone(), day.clone())).copied().unwrap_or(0);
                let paused = snapshot.paused.contains(&(pool.id.clone(), m.owner.clone())) || snapshot.paused.contains(&("*".to_string(), m.owner.clone()));
                let (status, reason) = match m.blocked(now, true) {
                    Some((kind, why)) => (json!(kind), Some(why)),
                    None if paused => (json!("paused"), Some("paused at run time".to_string())),
                    None if m.capacity.is_some_and(|c| assigned >= c) => (json!("at_capacity"), None),
                    None => (json!("available"), None),
                };
                json!({
                    "owner": m.owner, "name": m.name, "weight": m.weight, "status": status, "reason": reason,
                    "assigned_today": assigned, "capacity_per_day": m.capacity, "day": day,
                    "timezone": m.calendar.tz.name(),
                })
            })
            .collect();
        out.push(json!({"id": pool.id, "strategy": pool.strategy_name(), "members": members}));
    }
    Ok(Json(json!({"pools": out, "at": now})))
}

pub async fn pause(
    State(state): State<Arc<AppState>>,
    Path((pool, owner)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: PauseBody = optional_body(&headers, &body)?;
    known_member(&state, &pool, &owner)?;
    state
        .store
        .pause_member(&pool, &owner, b.reason.as_deref(), Utc::now())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(%pool, %owner, "member paused");
    Ok(Json(json!({"pool": pool, "owner": owner, "paused": true})))
}

pub async fn resume(
    State(state): State<Arc<AppState>>,
    Path((pool, owner)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    known_member(&state, &pool, &owner)?;
    let was = state
        .store
        .resume_member(&pool, &owner, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(%pool, %owner, was_paused = was, "member resumed");
    Ok(Json(
        json!({"pool": pool, "owner": owner, "paused": false, "was_paused": was}),
    ))
}

fn known_member(state: &AppState, pool: &str, owner: &str) -> Result<(), ApiError> {
    let router = &state.pipeline.router;
    let found = if pool == "*" {
        router.pools().any(|p| p.member(owner).is_some())
    } else {
        let p = router.pool(pool).ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no pool `{pool}` in routing.toml"),
            )
        })?;
        p.member(owner).is_some()
    };
    if found {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("owner {owner} is not a member of pool `{pool}`"),
        ))
    }
}
