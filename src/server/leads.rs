//! The console's API (issue 24), public contract:
//!
//! - `GET /v1/leads?grade=&status=&route=&owner=&q=&since=&limit=&cursor=` — each lead's
//!   latest decision, newest first, keyset-paged (`next_cursor`).
//! - `GET /v1/review`; `POST /v1/review/{id}/claim` `{"by"}`; `POST /v1/review/{id}/resolve`
//!   `{"action": "assign"|"enroll"|"disqualify", "owner"|"sequence", "reason", "by"?}`.
//! - `POST /v1/leads/{id}/override` `{"grade"?, "route"?, "reason", "by"}`; `DELETE` clears it.
//! - `GET /v1/stats?since=&bucket=day`.
//!
//! The console's pages call the same functions (`pub(super)` here) with form input.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, AppState, ErrorCode};
use crate::console::cursor;
use crate::console::overrides::{RouteOverride, OVERRIDE_RULE};
use crate::console::review::{resolved_decision, ResolveAction};
use crate::lead::{mask_email, LeadStatus};
use crate::store::console::{
    ConsoleRefusal, LeadFilter, LeadRow, NewOverride, OverrideRecord, Resolution, ReviewItem,
};

/// Rows a page holds unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: u32 = 50;
const MOST_LIMIT: u32 = 500;

/// Days the stats cover without `since`.
const DEFAULT_STATS_DAYS: i64 = 30;

const FILTERS: [&str; 6] = ["grade", "status", "route", "owner", "q", "since"];

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidQuery, message).field(field)
}

fn refused(r: ConsoleRefusal) -> ApiError {
    let code = match r {
        ConsoleRefusal::NoLead(_) => ErrorCode::NotFound,
        ConsoleRefusal::NotInReview(_)
        | ConsoleRefusal::ClaimedBy(_)
        | ConsoleRefusal::ResolvedBy(_)
        | ConsoleRefusal::NoOverride(_)
        | ConsoleRefusal::NotDecided(_) => ErrorCode::Conflict,
    };
    ApiError::new(code, r.to_string())
}

/// `2026-12-01` (midnight UTC) or an RFC 3339 time, as unix ms.
pub(super) fn parse_since(field: &str, text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
        .ok_or_else(|| {
            bad(
                field,
                format!("`{field}` must be a date (2026-12-01) or an RFC 3339 time, not `{text}`"),
            )
        })
}

/// The route names the list can filter on: routing.toml's rules, `fallback`, `override`.
pub(super) fn route_names(state: &AppState) -> Vec<String> {
    let mut names = state.pipeline.router.rule_ids();
    names.push("fallback".into());
    names.push(OVERRIDE_RULE.into());
    names
}

pub(super) const STATUSES: [&str; 5] = ["queued", "processing", "done", "failed", "review"];

/// Validates the list's query: unknown parameters and values are refused by name.
pub(super) fn lead_filter(
    state: &AppState,
    params: &[(String, String)],
) -> Result<LeadFilter, ApiError> {
    let mut f = LeadFilter {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut cursor_text = None;
    let mut fingerprint_of = Vec::new();
    for (k, v) in params {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if FILTERS.contains(&k.as_str()) {
            fingerprint_of.push(format!("{k}={v}"));
        }
        match k.as_str() {
            "grade" => {
                let grades = state.pipeline.scorer.grade_names();
                if !grades.iter().any(|g| g == v) {
                    return Err(bad("grade", format!("unknown grade `{v}`; scoring.toml's grades are {}", grades.join(", "))));
                }
                f.grade = Some(v.into());
            }
            "status" => {
                if LeadStatus::parse(v).is_none() {
                    return Err(bad("status", format!("unknown status `{v}`; one of {}", STATUSES.join(", "))));
                }
                f.status = Some(v.into());
            }
            "route" => {
                let routes = route_names(state);
                if !routes.iter().any(|r| r == v) {
                    return Err(bad("route", format!("unknown route `{v}`; routing.toml's rules are {}", routes.join(", "))));
                }
                f.route = Some(v.into());
            }
            "owner" => f.owner = Some(v.into()),
            "q" => f.q = Some(v.to_lowercase()),
            "since" => f.since = Some(parse_since("since", v)?),
            "limit" => {
                f.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MOST_LIMIT).contains(n))
                    .ok_or_else(|| bad("limit", format!("`limit` must be a whole number from 1 to {MOST_LIMIT}, not `{v}`")))?;
            }
            "cursor" => cursor_text = Some(v.to_string()),
            other => {
                return Err(bad(other, format!("unknown parameter `{other}`; the list takes grade, status, route, owner, q, since, limit, cursor")))
            }
        }
    }
    fingerprint_of.sort();
    let fp = cursor::fingerprint(&fingerprint_of.join("&"));
    if let Some(c) = cursor_text {
        let at = cursor::decode(&c, &fp).map_err(|e| bad("cursor", e.to_string()))?;
        f.before = Some((at.decided_at, at.decision_id));
    }
    Ok(f)
}

/// The cursor of the page after `rows`, if the page was full.
pub(super) fn next_cursor(
    params: &[(String, String)],
    f: &LeadFilter,
    rows: &[LeadRow],
) -> Option<String> {
    if rows.len() < f.limit as usize {
        return None;
    }
    let mut of: Vec<String> = params
        .iter()
        .filter(|(k, v)| FILTERS.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", v.trim()))
        .collect();
    of.sort();
    rows.last().map(|r| {
        let at = cursor::Position {
            decided_at: r.decided_at,
            decision_id: r.decision_id,
        };
        cursor::encode(at, &cursor::fingerprint(&of.join("&")))
    })
}

/// Whether this request's bearer token may see full emails. Without tokens the API is on
/// loopback only, as trusted as the store file itself: emails are shown.
pub(super) fn may_see_pii(state: &AppState, headers: &HeaderMap) -> bool {
    if state.api_tokens.is_empty() {
        return true;
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    presented.is_some_and(|t| state.pii_tokens.iter().any(|k| k == t))
}

pub(super) fn shown_email(email: Option<&str>, pii: bool) -> String {
    match email {
        Some(e) if pii => e.to_string(),
        Some(e) => mask_email(e),
        None => "–".into(),
    }
}

pub(super) fn time_text(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub(super) fn row_json(r: &LeadRow, pii: bool) -> Value {
    json!({
        "id": r.id, "email": shown_email(r.email.as_deref(), pii), "score": r.score,
        "grade": r.override_grade.as_ref().unwrap_or(&r.grade), "route": r.route, "owner": r.owner,
        "status": r.status, "decided_at": time_text(r.decided_at),
        "override": (r.override_grade.is_some() || r.override_route.is_some())
            .then(|| json!({"grade": r.override_grade, "route": r.override_route, "automatic_grade": r.grade})),
    })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let f = lead_filter(&state, &params)?;
    let rows = state
        .store
        .list_leads(&f)
        .await
        .map_err(ApiError::internal)?;
    let pii = may_see_pii(&state, &headers);
    Ok(Json(json!({
        "leads": rows.iter().map(|r| row_json(r, pii)).collect::<Vec<_>>(),
        "next_cursor": next_cursor(&params, &f, &rows),
    })))
}

/// A review item as the API and the console show it.
pub(super) fn review_json(i: &ReviewItem, pii: bool) -> Value {
    let record: Value = serde_json::from_str(&i.record).unwrap_or(Value::Null);
    let route = &record["route"];
    json!({
        "lead_id": i.lead_id, "job_id": i.job_id, "email": shown_email(i.email.as_deref(), pii),
        "score": i.score, "grade": i.grade,
        "queue": route["pool"].as_str().or(route["rule"].as_str()).unwrap_or("review"),
        "reason": route["reason"], "decided_at": time_text(i.decided_at),
        "claimed_by": i.claimed_by, "claimed_at": i.claimed_at.map(time_text),
    })
}

pub async fn review_queue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let items = state
        .store
        .review_queue(MOST_LIMIT)
        .await
        .map_err(ApiError::internal)?;
    let pii = may_see_pii(&state, &headers);
    Ok(Json(
        json!({"items": items.iter().map(|i| review_json(i, pii)).collect::<Vec<_>>()}),
    ))
}

fn body<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid: {e}"),
        )
    })
}

fn required(field: &str, v: Option<String>) -> Result<String, ApiError> {
    v.map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidJson, format!("`{field}` is required")).field(field)
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimBody {
    pub by: Option<String>,
}

pub(super) async fn claim_item(
    state: &AppState,
    id: &str,
    by: Option<String>,
) -> Result<ReviewItem, ApiError> {
    let by = required("by", by)?;
    state
        .store
        .claim_review(id, &by)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
}

pub async fn claim(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ClaimBody = body(&raw)?;
    let item = claim_item(&state, &id, b.by).await?;
    Ok(Json(
        json!({"lead_id": item.lead_id, "claimed_by": item.claimed_by}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolveBody {
    pub action: Option<String>,
    pub owner: Option<String>,
    pub sequence: Option<String>,
    pub reason: Option<String>,
    pub by: Option<String>,
}

/// Resolves the lead's review item and queues its delivery; answers the delivering job.
pub(super) async fn resolve_item(
    state: &AppState,
    id: &str,
    b: ResolveBody,
) -> Result<String, ApiError> {
    let action_text = required("action", b.action)?;
    let action = ResolveAction::parse(&action_text, b.owner.as_deref(), b.sequence.as_deref())
        .map_err(|(field, msg)| ApiError::new(ErrorCode::InvalidJson, msg).field(field))?;
    let reason = required("reason", b.reason)?;
    // Without `by` the resolution is the API's: allowed only on an item nobody claimed.
    let by =
        b.by.map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "api".into());
    let Some(item) = state
        .store
        .open_review(id)
        .await
        .map_err(ApiError::internal)?
    else {
        // Why not: resolved already (by whom) or never in review.
        return Err(
            match state
                .store
                .claim_review(id, &by)
                .await
                .map_err(ApiError::internal)?
            {
                Err(r) => refused(r),
                Ok(_) => ApiError::new(
                    ErrorCode::Conflict,
                    format!("lead {id} is not waiting in the review queue"),
                ),
            },
        );
    };
    if let Some(holder) = item.claimed_by.as_deref().filter(|h| *h != by) {
        return Err(refused(ConsoleRefusal::ClaimedBy(holder.into())));
    }
    let decision = resolved_decision(&item.record, &action, &by, &reason, Utc::now())
        .map_err(ApiError::internal)?;
    let decision = serde_json::to_string(&decision).map_err(ApiError::internal)?;
    let new_job_id = uuid::Uuid::now_v7().to_string();
    let res = Resolution {
        by,
        action: action.name().into(),
        reason,
        decision,
        new_job_id: new_job_id.clone(),
    };
    state
        .store
        .resolve_review(&item.job_id, &item.lead_id, &res)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)?;
    state.queued.notify_one();
    tracing::info!(lead = %item.lead_id, action = %res.action, "review item resolved");
    Ok(new_job_id)
}

pub async fn resolve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: ResolveBody = body(&raw)?;
    let job = resolve_item(&state, &id, b).await?;
    Ok(Json(
        json!({"lead_id": id, "resolved": true, "delivery_job_id": job}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OverrideBody {
    pub grade: Option<String>,
    pub route: Option<String>,
    pub reason: Option<String>,
    pub by: Option<String>,
}

pub(super) async fn add_override(
    state: &AppState,
    id: &str,
    b: OverrideBody,
) -> Result<OverrideRecord, ApiError> {
    let grade = b
        .grade
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty());
    let route = b
        .route
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if grade.is_none() && route.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "an override sets `grade`, `route` or both",
        )
        .field("grade"));
    }
    if let Some(g) = &grade {
        let grades = state.pipeline.scorer.grade_names();
        if !grades.contains(g) {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!(
                    "unknown grade `{g}`; scoring.toml's grades are {}",
                    grades.join(", ")
                ),
            )
            .field("grade"));
        }
    }
    if let Some(r) = &route {
        RouteOverride::parse(r)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, e).field("route"))?;
    }
    let o = NewOverride {
        grade,
        route,
        reason: required("reason", b.reason)?,
        by: required("by", b.by)?,
    };
    state
        .store
        .add_override(id, &o)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
}

pub async fn post_override(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let b: OverrideBody = body(&raw)?;
    let o = add_override(&state, &id, b).await?;
    tracing::info!(lead = %id, "override recorded");
    Ok(Json(json!({"override": o})))
}

pub(super) async fn clear_override(
    state: &AppState,
    id: &str,
    by: Option<String>,
) -> Result<OverrideRecord, ApiError> {
    let by = by
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "api".into());
    state
        .store
        .clear_override(id, &by)
        .await
        .map_err(ApiError::internal)?
        .map_err(refused)
}

pub async fn delete_override(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    raw: Bytes,
) -> Result<Json<Value>, ApiError> {
    let by = if raw.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        body::<ClaimBody>(&raw)?.by
    };
    let o = clear_override(&state, &id, by).await?;
    Ok(Json(json!({"cleared": o})))
}

/// `since` of the stats: a date or time, or the last 30 days.
pub(super) fn stats_since(params: &[(String, String)]) -> Result<i64, ApiError> {
    let mut since = Utc::now().timestamp_millis() - DEFAULT_STATS_DAYS * 86_400_000;
    for (k, v) in params {
        match k.as_str() {
            "since" if !v.trim().is_empty() => since = parse_since("since", v.trim())?,
            "since" => {}
            "bucket" if v == "day" => {}
            "bucket" => {
                return Err(bad(
                    "bucket",
                    format!("bucket `{v}` is not supported; use `day`"),
                ))
            }
            other => {
                return Err(bad(
                    other,
                    format!("unknown parameter `{other}`; stats take since, bucket"),
                ))
            }
        }
    }
    Ok(since)
}

pub(super) fn stats_json(s: &crate::store::console::Stats, since: i64) -> Value {
    json!({
        "bucket": "day",
        "since": time_text(since),
        "by_grade": s.by_grade.iter().map(|(b, g, n)| json!({"bucket": b, "grade": g, "leads": n})).collect::<Vec<_>>(),
        "by_route": s.by_route.iter().map(|(b, r, n)| json!({"bucket": b, "route": r, "leads": n})).collect::<Vec<_>>(),
        "by_provider": s.by_provider.iter().map(|(b, p, o, n)| json!({"bucket": b, "provider": p, "outcome": o, "attempts": n})).collect::<Vec<_>>(),
        "conversion": s.conversion.iter().map(|(band, leads, conv)| json!({
            "band_from": band, "band_to": band + crate::store::console::SCORE_BAND - 1,
            "leads": leads, "converted": conv,
            "rate": if *leads > 0 { *conv as f64 / *leads as f64 } else { 0.0 },
        })).collect::<Vec<_>>(),
    })
}

pub async fn stats(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let since = stats_since(&params)?;
    let s = state.store.stats(since).await.map_err(ApiError::internal)?;
    Ok(Json(stats_json(&s, since)))
}
