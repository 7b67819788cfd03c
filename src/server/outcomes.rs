//! `POST /v1/outcomes`: record that a lead converted (or did not), for the conversion report
//! (`leadgate simulate --from-store`) and for training.
//!
//! Body: `{"email" | "lead_id" | "external_id": ..., "converted": true, "at"?: RFC 3339,
//! "value"?: number, "source"?: text}`. Answers `201` with the recorded outcome; `404` when
//! no stored lead matches; `422` naming the field that is wrong.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ApiError, AppState, ErrorCode};
use crate::lead::mask_email;
use crate::store::{LeadRef, NewOutcome};

/// Longest `source` label kept.
const MAX_SOURCE_LEN: usize = 64;

pub async fn post_outcome(
    State(state): State<Arc<AppState>>,
    _json: super::edge::JsonContentType,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| super::edge::body_error(&r))?;
    let map = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "the body must be a JSON object (one outcome)",
            ))
        }
        Err(e) => {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("the body is not valid JSON: {e}"),
            ))
        }
    };
    let (lead_ref, shown) = lead_ref(&map)?;
    let outcome = new_outcome(&map)?;
    let lead_id = state
        .store
        .find_lead(&lead_ref)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotFound,
                format!("no stored lead with {shown}; send the lead first (POST /v1/leads)"),
            )
        })?;
    let recorded = state
        .store
        .record_outcome(&lead_id, &outcome)
        .await
        .map_err(ApiError::internal)?;
    metrics::counter!("leadgate_outcomes_total", "outcome" => if outcome.converted { "converted" } else { "lost" }).increment(1);
    let who = match &lead_ref {
        LeadRef::Email(e) => mask_email(e),
        _ => lead_id.clone(),
    };
    tracing::info!(lead = %lead_id, who = %who, converted = outcome.converted, "outcome recorded");
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// Which lead: `lead_id` (or `id`), else `email`, else `external_id`.
fn lead_ref(map: &serde_json::Map<String, Value>) -> Result<(LeadRef, String), ApiError> {
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) if k == "external_id" => Ok(Some(n.to_string())),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidLead,
                format!("`{k}` must be a non-empty string"),
            )
            .field(k)),
        }
    };
    if let Some(id) = text("lead_id")?.or(text("id")?) {
        return Ok((LeadRef::Id(id.clone()), format!("id {id}")));
    }
    if let Some(email) = text("email")? {
        let email = crate::normalize::normalize_email(&email)
            .map_err(|e| ApiError::new(ErrorCode::InvalidLead, e.to_string()).field("email"))?;
        let shown = format!("email {}", mask_email(&email));
        return Ok((LeadRef::Email(email), shown));
    }
    if let Some(x) = text("external_id")? {
        return Ok((LeadRef::ExternalId(x.clone()), format!("external_id {x}")));
    }
    Err(ApiError::new(
        ErrorCode::InvalidLead,
        "name the lead: `lead_id`, `email` or `external_id`",
    )
    .field("email"))
}

fn new_outcome(map: &serde_json::Map<String, Value>) -> Result<NewOutcome, ApiError> {
    let converted = match map.get("converted") {
        Some(v) => crate::score::features::parse_outcome(v),
        None => None,
    }
    .ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidLead, "`converted` must be true or false")
            .field("converted")
    })?;
    let at = match map.get("at") {
        None | Some(Value::Null) => Utc::now(),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidLead,
                    format!("`at` is not an RFC 3339 time ({e}); e.g. 2026-11-23T10:00:00Z"),
                )
                .field("at")
            })?,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLead,
                "`at` must be an RFC 3339 time string",
            )
            .field("at"))
        }
    };
    let value = match map.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLead,
                "`value` must be a number (the deal amount)",
            )
            .field("value"))
        }
    };
    let source = match map.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= MAX_SOURCE_LEN => Some(s.trim().to_string()),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLead,
                format!("`source` must be text of at most {MAX_SOURCE_LEN} bytes"),
            )
            .field("source"))
        }
    };
    Ok(NewOutcome {
        converted,
        at,
        value,
        source,
    })
}
