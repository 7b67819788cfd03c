//! The console's pages at `/` (issue 24): server-rendered HTML over the same functions as the
//! `/v1` console API (`leads.rs`), plain form posts (no script), one session cookie.
//!
//! Access: with `api_tokens`, every page needs a session opened on `/console/login` with a
//! token; without tokens the daemon listens on loopback only and the first page opens a
//! session. Every form post carries the session's CSRF token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use super::leads::{self, shown_email, time_text};
use super::{ApiError, AppState};
use crate::console::session::{self, Session, Sessions};
use crate::console::{charts, pages};

/// What every console handler is given alongside the app state.
pub type Console = Extension<Arc<Sessions>>;

type Params = Query<Vec<(String, String)>>;

/// A request's session, or the answer that stands in for the page.
struct Visitor {
    session: Session,
    /// Set when this request opened the session (no tokens configured): the cookie to set.
    new_cookie: Option<String>,
    token_login: bool,
}

fn cookie_session(sessions: &Sessions, headers: &HeaderMap) -> Option<(String, Session)> {
    let header = headers.get(header::COOKIE)?.to_str().ok()?;
    let id = session::from_cookie_header(header)?;
    sessions.get(id).map(|s| (id.to_string(), s))
}

fn visitor(
    state: &AppState,
    sessions: &Sessions,
    headers: &HeaderMap,
) -> Result<Visitor, Box<Response>> {
    let token_login = !state.api_tokens.is_empty();
    if let Some((_, session)) = cookie_session(sessions, headers) {
        return Ok(Visitor {
            session,
            new_cookie: None,
            token_login,
        });
    }
    if token_login {
        return Err(Box::new(Redirect::to("/console/login").into_response()));
    }
    // Loopback only (see `serve`): the session exists for its CSRF token.
    let (id, session) = sessions.open(None);
    Ok(Visitor {
        session,
        new_cookie: Some(session::set_cookie(&id)),
        token_login,
    })
}

/// A form post's session, if its CSRF token matches.
fn poster(
    state: &AppState,
    sessions: &Sessions,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Session, Box<Response>> {
    let Some((_, session)) = cookie_session(sessions, headers) else {
        return Err(Box::new(if state.api_tokens.is_empty() {
            (
                StatusCode::FORBIDDEN,
                "the console session expired; reload the page",
            )
                .into_response()
        } else {
            Redirect::to("/console/login").into_response()
        }));
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !crate::server::routes::constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                "the form's CSRF token does not match this session; reload the page and try again",
            )
                .into_response(),
        ));
    }
    Ok(session)
}

fn page(
    v: &Visitor,
    name: &str,
    nav: &str,
    title: &str,
    params: &[(String, String)],
    mut ctx: Value,
) -> Response {
    let flash = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
    };
    ctx["title"] = json!(title);
    ctx["nav"] = json!(nav);
    ctx["csrf"] = json!(v.session.csrf);
    ctx["signed_in"] = json!(true);
    ctx["token_login"] = json!(v.token_login);
    ctx["notice"] = json!(flash("notice"));
    if ctx.get("error").is_none_or(Value::is_null) {
        ctx["error"] = json!(flash("error"));
    }
    let mut response =
        match pages::render(name, minijinja::Value::from(minijinja::value::Serde(&ctx))) {
            Ok(html) => Html(html).into_response(),
            Err(e) => ApiError::internal(format!("console template {name}: {e}")).into_response(),
        };
    if let Some(c) = &v.new_cookie {
        if let Ok(value) = HeaderValue::from_str(c) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// After a post: back to `to` with a message (Post/Redirect/Get).
fn back(to: &str, outcome: Result<String, ApiError>) -> Response {
    let (key, text) = match outcome {
        Ok(notice) => ("notice", notice),
        Err(e) => ("error", e.message),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!(
        "{to}{sep}{key}={}",
        utf8_percent_encode(&text, NON_ALPHANUMERIC)
    ))
    .into_response()
}

pub async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
        .into_response()
}

pub async fn login_page(State(state): State<Arc<AppState>>, Query(params): Params) -> Response {
    if state.api_tokens.is_empty() {
        return Redirect::to("/").into_response();
    }
    let error = params
        .iter()
        .find(|(k, _)| k == "error")
        .map(|(_, m)| m.clone());
    let ctx = json!({"title": "Sign in", "signed_in": false, "error": error});
    match pages::render(
        "login.html",
        minijinja::Value::from(minijinja::value::Serde(&ctx)),
    ) {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(format!("console template login.html: {e}")).into_response(),
    }
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    let known = state
        .api_tokens
        .iter()
        .any(|k| crate::server::routes::constant_time_eq(k.as_bytes(), token.as_bytes()));
    if !known {
        tracing::warn!("console sign-in with a wrong token");
        return Redirect::to(
            "/console/login?error=That%20token%20is%20not%20one%20of%20%5Bserver%5D%20api_tokens.",
        )
        .into_response();
    }
    let (id, _) = sessions.open(Some(token));
    let mut response = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    if let Some((id, _)) = cookie_session(&sessions, &headers) {
        sessions.close(&id);
    }
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn leads_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let list_params: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "notice" && k != "error")
        .cloned()
        .collect();
    let filters: HashMap<&str, &str> = list_params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut ctx = json!({
        "filters": filters,
        "grades": state.pipeline.scorer.grade_names(),
        "statuses": leads::STATUSES,
        "routes": leads::route_names(&state),
        "rows": [],
    });
    match leads::lead_filter(&state, &list_params) {
        Err(e) => ctx["error"] = json!(e.message),
        Ok(f) => match state.store.list_leads(&f).await {
            Err(e) => ctx["error"] = json!(ApiError::internal(e).message),
            Ok(rows) => {
                ctx["rows"] = rows
                    .iter()
                    .map(|r| leads::row_json(r, v.session.pii))
                    .map(|mut j| {
                        // The table shows both the automatic grade and the override.
                        j["grade"] = json!(rows
                            .iter()
                            .find(|x| j["id"] == x.id.as_str())
                            .map(|x| x.grade.clone()));
                        j["override_grade"] = j["override"]["grade"].clone();
                        j["override_route"] = j["override"]["route"].clone();
                        j
                    })
                    .collect();
                if let Some(c) = leads::next_cursor(&list_params, &f, &rows) {
                    let mut q: Vec<String> = list_params
                        .iter()
                        .filter(|(k, _)| k != "cursor")
                        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
                        .collect();
                    q.push(format!("cursor={c}"));
                    ctx["next_page"] = json!(format!("/?{}", q.join("&")));
                }
            }
        },
    }
    page(&v, "leads.html", "leads", "Leads", &params, ctx)
}

pub async fn lead_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let view = match state.store.lead(&id).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                Html(format!(
                    "<p>No lead with id {}.</p><p><a href=\"/\">Leads</a></p>",
                    html_escape(&id)
                )),
            )
                .into_response()
        }
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let overrides = match state.store.overrides(&view.id).await {
        Ok(o) => o,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let writes: Vec<Value> = match state.store.crm_writes(&view.id).await {
        Ok(w) => w
            .iter()
            .map(|w| {
                let mut j = json!(w);
                j["updated_at"] = json!(time_text(w.updated_at));
                j
            })
            .collect(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let active = overrides.iter().any(|o| o.cleared_at.is_none());
    let overrides: Vec<Value> = overrides
        .iter()
        .map(|o| {
            let mut j = json!(o);
            j["created_at"] = json!(time_text(o.created_at));
            j
        })
        .collect();
    let adjustment = view.decision.as_ref().and_then(|d| {
        let sum: f64 = d["factors"]
            .as_array()?
            .iter()
            .filter_map(|f| f["points"].as_f64())
            .sum();
        let diff = d["score"].as_f64()? - sum;
        (diff.abs() >= 0.005).then(|| format!("{diff:+.2}"))
    });
    let ctx = json!({
        "id": view.id, "email": shown_email(view.email.as_deref(), v.session.pii), "status": view.status,
        "d": view.decision, "history": view.history, "overrides": overrides, "active_override": active, "writes": writes,
        "adjustment": adjustment, "grades": state.pipeline.scorer.grade_names(),
    });
    page(&v, "lead.html", "leads", "Lead", &params, ctx)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn field(form: &HashMap<String, String>, k: &str) -> Option<String> {
    form.get(k)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

pub async fn post_override(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let b = leads::OverrideBody {
        grade: field(&form, "grade"),
        route: field(&form, "route"),
        reason: field(&form, "reason"),
        by: field(&form, "by"),
    };
    let outcome = leads::add_override(&state, &id, b)
        .await
        .map(|o| format!("Override recorded by {}.", o.by));
    back(&format!("/leads/{id}"), outcome)
}

pub async fn clear_override(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let outcome = leads::clear_override(&state, &id, field(&form, "by"))
        .await
        .map(|_| "Override cleared.".to_string());
    back(&format!("/leads/{id}"), outcome)
}

pub async fn review_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let items = match state.store.review_queue(500).await {
        Ok(items) => items,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let items: Vec<Value> = items
        .iter()
        .map(|i| leads::review_json(i, v.session.pii))
        .collect();
    page(
        &v,
        "review.html",
        "review",
        "Review queue",
        &params,
        json!({"items": items}),
    )
}

pub async fn claim(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let outcome = leads::claim_item(&state, &id, field(&form, "by"))
        .await
        .map(|i| format!("Claimed by {}.", i.claimed_by.unwrap_or_default()));
    back("/review", outcome)
}

pub async fn resolve(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let action = field(&form, "action");
    let target = field(&form, "target");
    let (owner, sequence) = match action.as_deref() {
        Some("enroll") => (None, target),
        _ => (target, None),
    };
    let b = leads::ResolveBody {
        action,
        owner,
        sequence,
        reason: field(&form, "reason"),
        by: field(&form, "by"),
    };
    let outcome = leads::resolve_item(&state, &id, b)
        .await
        .map(|_| "Resolved: the lead is being delivered.".to_string());
    back("/review", outcome)
}

pub async fn pools_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    match super::routing::pools(State(state.clone())).await {
        Ok(axum::Json(body)) => page(
            &v,
            "pools.html",
            "pools",
            "Pools",
            &params,
            json!({"pools": body["pools"]}),
        ),
        Err(e) => e.into_response(),
    }
}

pub async fn pause(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path((pool, owner)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let body = axum::body::Bytes::from(json!({"reason": "paused from the console"}).to_string());
    let mut json_headers = HeaderMap::new();
    json_headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let outcome = super::routing::pause(
        State(state.clone()),
        Path((pool.clone(), owner.clone())),
        json_headers,
        body,
    )
    .await
    .map(|_| format!("{owner} paused in {pool}."));
    back("/pools", outcome)
}

pub async fn resume(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Path((pool, owner)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = poster(&state, &sessions, &headers, &form) {
        return *r;
    }
    let outcome = super::routing::resume(State(state.clone()), Path((pool.clone(), owner.clone())))
        .await
        .map(|_| format!("{owner} resumed in {pool}."));
    back("/pools", outcome)
}

pub async fn providers_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let reports = state.pipeline.connectors.report(&state.pipeline.waterfall);
    let providers: Vec<Value> = reports
        .iter()
        .map(|r| {
            let s = &r.status;
            json!({
                "id": r.id, "circuit": s.circuit, "limiter": s.rate_limit,
                "credits_today": s.credits_used_today, "budget": s.daily_budget,
                "hit_rate": if s.calls > 0 { format!("{:.0}% of {}", 100.0 * s.hits as f64 / s.calls as f64, s.calls) } else { "–".into() },
            })
        })
        .collect();
    page(
        &v,
        "providers.html",
        "providers",
        "Providers",
        &params,
        json!({"providers": providers}),
    )
}

pub async fn charts_page(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Console,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let v = match visitor(&state, &sessions, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let stats_params: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k == "since")
        .cloned()
        .collect();
    let since = match leads::stats_since(&stats_params) {
        Ok(s) => s,
        Err(e) => return back("/charts", Err(e)),
    };
    let s = match state.store.stats(since).await {
        Ok(s) => s,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let conversion: Vec<(String, f64, String)> = s
        .conversion
        .iter()
        .map(|(band, leads, conv)| {
            let share = if *leads > 0 {
                *conv as f64 / *leads as f64
            } else {
                0.0
            };
            (
                format!("{band}+"),
                share,
                format!("{conv} of {leads} converted"),
            )
        })
        .collect();
    let mut hits: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (_, provider, outcome, n) in &s.by_provider {
        let e = hits.entry(provider).or_default();
        e.1 += n;
        if outcome == "hit" {
            e.0 += n;
        }
    }
    let hit_rate: Vec<(String, f64, String)> = hits
        .iter()
        .map(|(p, (h, t))| {
            (
                p.to_string(),
                if *t > 0 { *h as f64 / *t as f64 } else { 0.0 },
                format!("{h} hits of {t} calls"),
            )
        })
        .collect();
    let ctx = json!({
        "since": time_text(since).get(..10).unwrap_or_default(),
        "grades_svg": charts::stacked("Leads per day by grade", &s.by_grade, &state.pipeline.scorer.grade_names()),
        "conversion_svg": charts::shares("Conversion by score band", &conversion),
        "providers_svg": charts::shares("Provider hit rate (share of calls that found data)", &hit_rate),
    });
    page(&v, "charts.html", "charts", "Charts", &params, ctx)
}
