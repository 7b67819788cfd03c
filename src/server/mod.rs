//! The HTTP edge: routes, bearer auth, the error table, metrics. Handlers parse and answer;
//! the decisions are the pipeline's and the durability is the store's.

mod connectors;
mod error;
mod metrics;
mod outcomes;
mod routes;
mod routing;
mod webhooks;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::Notify;

pub use error::{ApiError, ErrorCode};
pub use metrics::prometheus;

use crate::pipeline::Pipeline;
use crate::store::Store;

/// What every handler and worker shares.
pub struct AppState {
    pub pipeline: Pipeline,
    pub store: Store,
    /// Wakes idle workers when a lead is queued.
    pub queued: Notify,
    /// False while starting and once draining; `/readyz` answers 503 then.
    pub ready: AtomicBool,
    pub api_tokens: Vec<String>,
    pub body_limit: usize,
    /// Which CRMs may call the webhook routes, with their secrets.
    pub webhooks: crate::webhook::WebhooksConfig,
    /// Fetches the CRM record a webhook named by id; none until a CRM connector is set.
    pub records: Option<Arc<dyn crate::webhook::RecordSource>>,
    /// Delivers decisions to the CRM (write-back, owner, enrollment); none unless
    /// `[delivery]` names a target or sequences. Only the queue's workers deliver.
    pub delivery: Option<Arc<crate::crm::Crm>>,
    /// The routing state dry runs (`POST /v1/evaluate`) start from, re-read at most once a
    /// second.
    pub dry_run_state: DryRunState,
}

/// How long a dry run may reuse the routing state it read: a preview does not need the
/// rotation to the millisecond, and reading positions, counts and pauses per request
/// dominated `POST /v1/evaluate` (benches/e2e.rs).
const DRY_RUN_STATE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// The routing state dry runs start from, read from the store by one request at a time.
#[derive(Default)]
pub struct DryRunState {
    cached: tokio::sync::Mutex<Option<(tokio::time::Instant, crate::route::AssignmentSnapshot)>>,
}

impl DryRunState {
    pub async fn snapshot(
        &self,
        store: &Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::route::AssignmentSnapshot, crate::store::StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, snapshot)) = cached.as_ref() {
            if at.elapsed() < DRY_RUN_STATE_TTL {
                return Ok(snapshot.clone());
            }
        }
        let fresh = store.assignment_snapshot(now).await?;
        *cached = Some((tokio::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }
}

/// The router: `/v1` API behind the bearer check, probes and metrics outside it.
pub fn app(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route(
            "/v1/leads",
            post(routes::post_lead).delete(routes::erase_person),
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
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            routes::require_token,
        ));
    Router::new()
        .merge(api)
        // Webhooks verify their vendor's signature instead of the bearer token.
        .route("/v1/webhooks/{connector}", post(webhooks::receive))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.body_limit))
        .with_state(state)
}
