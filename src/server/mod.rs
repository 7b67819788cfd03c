//! The HTTP edge: routes, bearer auth, the error table, metrics. Handlers parse and answer;
//! the decisions are the pipeline's and the durability is the store's.

mod admission;
mod connectors;
mod console;
pub mod edge;
mod error;
mod events;
mod leads;
mod metrics;
mod outcomes;
mod routes;
mod routing;
pub mod threads;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

pub use edge::Edge;
pub use error::{ApiError, ErrorCode};
pub use metrics::prometheus;

use crate::route::AssignmentSnapshot;
use crate::services::Services;
use crate::store::reuse::{Reuse, Reused};
use crate::store::Store;

/// What the handlers share: the daemon's services (reached through `Deref`, so a handler
/// writes `state.store`) and what only the HTTP edge needs.
pub struct AppState {
    pub services: Arc<Services>,
    pub api_tokens: Vec<String>,
    /// The tokens that may see full email addresses (`[server] pii_tokens`).
    pub pii_tokens: Vec<String>,
    pub body_limit: usize,
    /// Which CRMs may call the webhook routes, with their secrets.
    pub webhooks: crate::webhook::WebhooksConfig,
    /// The routing state dry runs (`POST /v1/evaluate`) start from, re-read at most once a
    /// second.
    pub dry_run_state: DryRunState,
    /// The edge's guards: listen port for the Host check, the webhook limit, timeouts.
    pub edge: Edge,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// How long a dry run may reuse the routing state it read: a preview does not need the
/// rotation to the millisecond, and reading positions, counts and pauses per request
/// dominated `POST /v1/evaluate` (benches/e2e.rs).
const DRY_RUN_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The routing state dry runs start from: read from the store when there is no copy or
/// it is older than twice [`DRY_RUN_STATE_TTL`]; a copy between one and two TTLs old is
/// answered while one background read replaces it ([`Reused`]). Reading it inline, behind a
/// lock every other dry run waited on, put the store's latency into evaluate's tail.
#[derive(Default)]
pub struct DryRunState {
    cached: Arc<std::sync::Mutex<Option<Reused<AssignmentSnapshot>>>>,
}

impl DryRunState {
    pub async fn snapshot(
        &self,
        store: &Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AssignmentSnapshot, crate::store::StoreError> {
        let reuse = lock(&self.cached)
            .as_mut()
            .map_or(Reuse::Stale, |copy| copy.reuse(DRY_RUN_STATE_TTL));
        match reuse {
            Reuse::Fresh(snapshot) => Ok(snapshot),
            Reuse::RefreshBehind(snapshot) => {
                let (cached, store) = (self.cached.clone(), store.clone());
                tokio::spawn(async move {
                    let fresh = store.assignment_snapshot(chrono::Utc::now()).await;
                    let mut cached = lock(&cached);
                    match fresh {
                        Ok(fresh) => *cached = Some(Reused::new(fresh)),
                        Err(e) => {
                            tracing::debug!(error = %e, "routing state refresh failed");
                            if let Some(copy) = cached.as_mut() {
                                copy.refresh_failed();
                            }
                        }
                    }
                });
                Ok(snapshot)
            }
            Reuse::Stale => {
                let fresh = store.assignment_snapshot(now).await?;
                *lock(&self.cached) = Some(Reused::new(fresh.clone()));
                Ok(fresh)
            }
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a value that is still whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The router: `/v1` API behind the bearer check, probes and metrics outside it.
pub fn app(state: Arc<AppState>) -> Router {
    use crate::console::session::Sessions;
    let api = Router::new()
        .route(
            "/v1/leads",
            post(routes::post_lead)
                .delete(routes::erase_person)
                .get(leads::list),
        )
        .route("/v1/connectors", get(connectors::list))
        .route("/v1/leads/{id}", get(routes::get_lead))
        .route("/v1/evaluate", post(routes::evaluate))
        .route("/v1/leads/{id}/touched", post(routing::touched))
        .route("/v1/leads/{id}/routing", get(routing::lead_routing))
        .route("/v1/pools", get(routing::pools))
        .route(
            "/v1/pools/{pool}/members/{owner}/pause",
            post(routing::pause),
        )
        .route(
            "/v1/pools/{pool}/members/{owner}/resume",
            post(routing::resume),
        )
        .route("/v1/outcomes", post(outcomes::post_outcome))
        .route("/v1/events", post(events::post_events))
        .route("/v1/leads/{id}/events", post(events::post_lead_events))
        // The console's API (issue 24).
        .route("/v1/review", get(leads::review_queue))
        .route("/v1/review/{id}/claim", post(leads::claim))
        .route("/v1/review/{id}/resolve", post(leads::resolve))
        .route(
            "/v1/leads/{id}/override",
            post(leads::post_override).delete(leads::delete_override),
        )
        .route("/v1/stats", get(leads::stats));
    // Without tokens (loopback only, see `serve`) a foreign Host or Origin is the sign of a
    // browser page reaching in (DNS rebinding, a cross-site form): refused.
    let api = if state.api_tokens.is_empty() {
        api.route_layer(middleware::from_fn_with_state(
            state.clone(),
            edge::require_local_origin,
        ))
    } else {
        api.route_layer(middleware::from_fn_with_state(
            state.clone(),
            routes::require_token,
        ))
    };
    let body_timeout = tower::ServiceBuilder::new()
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.edge.body_read_timeout,
        ))
        .map_request(|r: axum::http::Request<_>| r.map(axum::body::Body::new));
    // The console's pages (issue 24): their own session and CSRF check, not the bearer token.
    let sessions = match state.edge.session_key {
        Some(key) => Sessions::new(key, &state.api_tokens, &state.pii_tokens),
        None => Sessions::ephemeral(&state.api_tokens, &state.pii_tokens),
    };
    let console_pages = Router::new()
        .route("/", get(console::leads_page))
        .route("/console/assets/console.css", get(console::css))
        .route(
            "/console/login",
            get(console::login_page).post(console::login),
        )
        .route("/console/logout", post(console::logout))
        .route("/leads/{id}", get(console::lead_page))
        .route("/leads/{id}/override", post(console::post_override))
        .route("/leads/{id}/override/clear", post(console::clear_override))
        .route("/review", get(console::review_page))
        .route("/review/{id}/claim", post(console::claim))
        .route("/review/{id}/resolve", post(console::resolve))
        .route("/pools", get(console::pools_page))
        .route("/pools/{pool}/members/{owner}/pause", post(console::pause))
        .route(
            "/pools/{pool}/members/{owner}/resume",
            post(console::resume),
        )
        .route("/providers", get(console::providers_page))
        .route("/charts", get(console::charts_page))
        .layer(axum::Extension(std::sync::Arc::new(sessions)));
    // Without tokens the pages are loopback-only as the API is, with the same guard.
    let console_pages = if state.api_tokens.is_empty() {
        console_pages.route_layer(middleware::from_fn_with_state(
            state.clone(),
            edge::require_local_origin,
        ))
    } else {
        console_pages
    };
    Router::new()
        .merge(api)
        .merge(console_pages)
        // Webhooks verify their vendor's signature instead of the bearer token; a flood from
        // one address is cut off before any of that.
        .route(
            "/v1/webhooks/{connector}",
            post(webhooks::receive).route_layer(middleware::from_fn_with_state(
                state.clone(),
                edge::limit_webhooks,
            )),
        )
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route_layer(middleware::from_fn(edge::count_refusals))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .layer(body_timeout)
        .with_state(state)
}
