//! `POST /v1/webhooks/{connector}`: verify, dedupe on the vendor's event id, queue.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{ApiError, AppState, ErrorCode};
use crate::webhook::{fetch_payload, Intake, WebhookError, WebhookRequest};

pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(connector): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // The name from the path is the caller's: only a known one becomes a label or log field.
    let label = connector_label(&connector);
    let body = body.map_err(|r| super::edge::body_error(&r))?;
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_ascii_lowercase(), v.to_string()))
        })
        .collect();
    // The URL the CRM called, as it saw it (a TLS proxy in front says so in X-Forwarded-*).
    let scheme = headers
        .get("x-forwarded-proto")
        .map_or("http", String::as_str);
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get("host"))
        .map_or("localhost", String::as_str);
    let request = WebhookRequest {
        method: "POST",
        url: format!("{scheme}://{host}{uri}"),
        headers: &headers,
        body: &body,
        now_ms: chrono::Utc::now().timestamp_millis(),
    };
    let verified = state.webhooks.handle(&connector, &request).map_err(|e| {
        metrics::counter!("leadgate_webhooks_refused_total", "connector" => label).increment(1);
        // Debug-formatted: the reason cannot forge a log line; an unknown name is not in it.
        let reason = match &e {
            WebhookError::UnknownConnector(_) => "unknown connector".to_string(),
            other => other.to_string(),
        };
        // Unknown names are what a flood of random paths produces: not worth a warning each.
        if label == "unknown" {
            tracing::debug!(connector = label, reason = ?reason, "webhook refused");
        } else {
            tracing::warn!(connector = label, reason = ?reason, "webhook refused");
        }
        match e {
            WebhookError::Unauthorized(_) => ApiError::new(ErrorCode::Unauthorized, e.to_string()),
            WebhookError::BadPayload(_) => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
            WebhookError::NotConfigured(_) => ApiError::new(ErrorCode::NotFound, e.to_string()),
            WebhookError::UnknownConnector(_) => ApiError::new(
                ErrorCode::NotFound,
                "unknown webhook connector; leadgate accepts hubspot, salesforce and pipedrive",
            ),
        }
    })?;

    let (mut queued, mut duplicates, mut failed, mut suppressed) = (0, 0, 0, 0);
    for event in &verified.events {
        let key = format!("webhook:{connector}:{}", event.event_id);
        let accepted = match &event.intake {
            Intake::Lead(raw) => match state.pipeline.normalize(raw) {
                Ok(lead) => {
                    // Someone who asked to be erased is not queued, enriched or stored again.
                    if let Some(email) = &lead.email {
                        if state
                            .store
                            .is_suppressed(email)
                            .await
                            .map_err(ApiError::internal)?
                        {
                            suppressed += 1;
                            continue;
                        }
                    }
                    state.store.accept(&lead, raw, Some(&key)).await
                }
                Err(invalid) => {
                    // Recorded as failed with the reason, so the CRM does not retry forever
                    // and an admin can see what was wrong.
                    let identity = format!("crm:{connector}:event:{}", event.event_id);
                    state
                        .store
                        .accept_record(&identity, raw, &key, Some(&invalid.to_string()))
                        .await
                }
            },
            Intake::Fetch { object, id } => {
                let identity = format!("crm:{connector}:{object}:{id}");
                state
                    .store
                    .accept_record(
                        &identity,
                        &fetch_payload(&connector, object, id),
                        &key,
                        None,
                    )
                    .await
            }
        };
        // Erased between the check above and the accept: refused by the store.
        let accepted = match accepted {
            Err(crate::store::StoreError::Suppressed) => {
                suppressed += 1;
                continue;
            }
            // A vendor that reuses an event id for other content: the first stays, and the
            // CRM must not retry forever, so it is counted and logged, not failed.
            Err(crate::store::StoreError::IdempotencyConflict { lead_id, .. }) => {
                tracing::warn!(connector = label, lead = %lead_id, "webhook event id reused with a different lead; the first is kept");
                duplicates += 1;
                continue;
            }
            other => other.map_err(ApiError::internal)?,
        };
        match (accepted.duplicate, accepted.status.as_str()) {
            (true, _) => duplicates += 1,
            (false, "failed") => failed += 1,
            (false, _) => queued += 1,
        }
    }
    if queued > 0 {
        state.queued.notify_waiters();
        metrics::counter!("leadgate_leads_accepted_total").increment(queued as u64);
    }
    tracing::info!(
        connector = label,
        queued,
        duplicates,
        failed,
        suppressed,
        ignored = verified.ignored,
        "webhook accepted"
    );
    Ok(match verified.reply {
        Some((content_type, body)) => (StatusCode::OK, [("content-type", content_type)], body).into_response(),
        None => (
            StatusCode::OK,
            Json(json!({"queued": queued, "duplicates": duplicates, "failed": failed, "suppressed": suppressed, "ignored": verified.ignored})),
        )
            .into_response(),
    })
}

/// The connector as a metric label and log field: one of the known names, else `unknown`.
fn connector_label(connector: &str) -> &'static str {
    match connector {
        "hubspot" => "hubspot",
        "salesforce" => "salesforce",
        "pipedrive" => "pipedrive",
        _ => "unknown",
    }
}
