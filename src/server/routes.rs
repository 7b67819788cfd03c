//! Request handlers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::{ApiError, AppState, ErrorCode};
use crate::lead::RawLead;
use crate::route::LocalAssignments;

/// Longest Idempotency-Key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 256;

pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if state.api_tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t)
            if state
                .api_tokens
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), t.as_bytes())) =>
        {
            next.run(request).await
        }
        _ => {
            ApiError::new(ErrorCode::Unauthorized, "missing or wrong bearer token").into_response()
        }
    }
}

/// Compares tokens without leaking where they differ through timing.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a request body into a raw lead, with a 4xx that says what is wrong.
fn parse_lead(body: Result<Bytes, BytesRejection>) -> Result<RawLead, ApiError> {
    let body = body.map_err(|r| super::edge::body_error(&r))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(RawLead(map)),
        Ok(_) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the body must be a JSON object (one lead)",
        )),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// The `Idempotency-Key` header, taken alone: the `HeaderMap` extractor copies every header
/// of every accept.
pub struct IdempotencyHeader(Option<axum::http::HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdempotencyHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get("idempotency-key").cloned()))
    }
}

pub async fn post_lead(
    State(state): State<Arc<AppState>>,
    _json: super::edge::JsonContentType,
    IdempotencyHeader(idempotency): IdempotencyHeader,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_lead(body)?;
    let lead = state
        .pipeline
        .normalize(&raw)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field(e.field.clone()))?;
    let header_key = match &idempotency {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Some(format!("key:{k}")),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidLead,
                    format!("Idempotency-Key must be 1–{MAX_IDEMPOTENCY_KEY} visible characters"),
                )
                .field("Idempotency-Key"))
            }
        },
    };
    let key = header_key.or_else(|| lead.external_id.as_ref().map(|id| format!("external:{id}")));
    // The store refuses an erased person in the same transaction that would keep the lead.
    let accepted = match state.store.accept(&lead, &raw, key.as_deref()).await {
        Err(crate::store::StoreError::Suppressed) => return Err(suppressed()),
        Err(crate::store::StoreError::IdempotencyConflict { key, lead_id }) => {
            let (what, shown) = match key.split_once(':') {
                Some(("external", id)) => ("external_id", id),
                Some((_, k)) => ("Idempotency-Key", k),
                None => ("Idempotency-Key", key.as_str()),
            };
            return Err(ApiError::new(
                    ErrorCode::IdempotencyConflict,
                    format!("{what} `{shown}` was already used for lead {lead_id} with a different body; send a new key for a different lead, or the same body to repeat it"),
                )
                .field(what));
        }
        other => other.map_err(ApiError::internal)?,
    };
    if !accepted.duplicate {
        metrics::counter!("leadgate_leads_accepted_total").increment(1);
        state.queued.notify_one();
    }
    tracing::info!(lead = %accepted.id, job = %accepted.job_id, email = %lead.masked_email(), duplicate = accepted.duplicate, "lead accepted");
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

/// `409 suppressed`: the person asked to be erased.
pub(super) fn suppressed() -> ApiError {
    ApiError::new(
        ErrorCode::Suppressed,
        "this person asked to be erased; leadgate keeps and processes nothing about them",
    )
    .field("email")
}

#[derive(serde::Deserialize)]
pub struct EraseQuery {
    email: Option<String>,
}

/// `DELETE /v1/leads?email=E`: erases the person everywhere leadgate keeps data and adds
/// them to the suppression list.
pub async fn erase_person(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(q): axum::extract::Query<EraseQuery>,
) -> Result<Json<Value>, ApiError> {
    let email = q
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidLead,
                "name the person to erase: ?email=...",
            )
            .field("email")
        })?;
    let email = crate::normalize::normalize_email(email)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field("email"))?;
    let erased = state
        .store
        .erase_person(&email)
        .await
        .map_err(ApiError::internal)?;
    let cache_entries = state.pipeline.forget(&email).await;
    metrics::counter!("leadgate_erasures_total").increment(1);
    tracing::info!(email = %crate::lead::mask_email(&email), leads = erased.leads, "person erased and suppressed");
    Ok(Json(
        json!({"erased": erased, "cache_entries": cache_entries, "suppressed": true}),
    ))
}

pub async fn get_lead(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .store
        .lead(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no lead with id {id}")))?;
    let mut body = match view.decision {
        Some(Value::Object(d)) => Value::Object(d),
        _ => json!({}),
    };
    body["id"] = json!(view.id);
    body["status"] = json!(view.status);
    body["email"] = json!(view.email);
    if let Some(e) = view.error {
        body["error"] = json!(e);
    }
    body["arrivals"] = json!(view.arrivals);
    body["history"] = json!(view.history);
    // Human overrides (issue 24): the one in force wins over later automatic decisions.
    let overrides = state
        .store
        .overrides(&view.id)
        .await
        .map_err(ApiError::internal)?;
    body["override"] = json!(overrides.iter().rev().find(|o| o.cleared_at.is_none()));
    body["overrides"] = json!(overrides);
    // Every CRM side effect from the outbox, with its attempts (the decision's `delivery`
    // says what this decision did; this says what happened to the record since).
    body["crm_writes"] = json!(state
        .store
        .crm_writes(&view.id)
        .await
        .map_err(ApiError::internal)?);
    Ok(Json(body))
}

/// Room reserved for one serialized decision.
const DECISION_BYTES: usize = 8 * 1024;

pub async fn evaluate(
    State(state): State<Arc<AppState>>,
    _json: super::edge::JsonContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = parse_lead(body)?;
    let lead = state
        .pipeline
        .normalize(&raw)
        .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field(e.field.clone()))?;
    // An erased person is not enriched or scored, not even as a dry run.
    if let Some(email) = &lead.email {
        if state
            .store
            .is_suppressed_recently(email)
            .await
            .map_err(ApiError::internal)?
        {
            return Err(suppressed());
        }
    }
    // A dry run: start from the live routing state (positions, counts, pauses; at most
    // about two seconds old) but write nothing back.
    let now = Utc::now();
    let snapshot = state
        .dry_run_state
        .snapshot(&state.store, now)
        .await
        .map_err(ApiError::internal)?;
    let decision = state
        .pipeline
        .preview(lead, &LocalAssignments::from_snapshot(snapshot), now)
        .await
        .map_err(ApiError::internal)?;
    // Written once, straight to bytes: building a `Value` tree first to add one key cost
    // as much as the serialization itself. A typical decision is 4–5 KB: growing from
    // serde_json's default 128 bytes copied it six times on the way.
    let mut body = Vec::with_capacity(DECISION_BYTES);
    crate::json::write_into(&mut body, &decision).map_err(ApiError::internal)?;
    match body.pop() {
        Some(b'}') => body.extend_from_slice(b",\"dry_run\":true}"),
        _ => return Err(ApiError::internal("a decision is not a JSON object")),
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if !state.ready.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            "starting up or draining",
        ));
    }
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::new(ErrorCode::NotReady, format!("store unreachable: {e}")))?;
    // Redis is an optimisation: without it this replica still serves, on its local cache
    // and a local share of each quota — ready, but it says so.
    let redis = match crate::resilience::redis::redis_state() {
        None => "not configured",
        Some(true) => "ok",
        Some(false) => "unreachable: local cache and a local share of each quota in use",
    };
    Ok(Json(json!({"status": "ready", "redis": redis})))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> String {
    if let Ok(depth) = state.store.queue_depth().await {
        for status in ["queued", "processing", "done", "failed", "review"] {
            metrics::gauge!("leadgate_jobs", "status" => status)
                .set(*depth.get(status).unwrap_or(&0) as f64);
        }
    }
    super::prometheus().render()
}

pub async fn not_found() -> Response {
    let response = ApiError::new(
        ErrorCode::NotFound,
        "no such route; see the README for the API",
    )
    .into_response();
    // No route matched, so the route layer that counts refusals did not run.
    super::edge::refused(super::edge::UNMATCHED, &response);
    response
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}
