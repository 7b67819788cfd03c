//! leadgate: enrich, score and route B2B leads, recording why at every step.
//!
//! # Layout
//! - [`settings`]  — `leadgate.toml` through the `config` crate: file, env, `${SECRETS}`
//! - [`lead`]      — the types that flow: RawLead → Lead → EnrichedLead → ScoredLead → Decision
//! - [`intake`]    — leads from CSV / JSONL files, with line numbers
//! - [`normalize`] — email, domain (public suffix list), free / disposable flags
//! - [`enrich`]    — the provider trait, the waterfall, field merge with provenance, erasure watch
//! - [`connector`] — the engine that runs `connectors/*.toml`: manifests, registry, HTTP
//! - [`resilience`] — cache, rate limits, retries, circuit breaker, credit budget, parking,
//!   composed once in `resilience::stack`
//! - [`events`]    — events as a per-person history: dedupe keys, request bodies (issue 25)
//! - [`rules`]     — CEL conditions compiled once, the per-lead context
//! - [`score`]     — rule points, event decay, caps, grades, factors; named scores (fit,
//!   engagement, product lines, combinations), account rollup, the predictive models
//!   (logistic, gradient-boosted trees) + trainer
//! - [`rescore`]   — scores at rest: the sweep that re-scores stored people (decay, events, rules)
//! - [`route`]     — ordered rules, pools and strategies, calendars, territories, account matching, SLA
//! - [`pipeline`]  — the one order of a job's stages (`Pipeline::run_job`): normalize →
//!   suppression → history → enrich → account match → score → route → override → deliver → record
//! - [`store`]     — SQLite and PostgreSQL (bodies written once over `store::dialect`, SQL in
//!   `store/queries/`): durable queue, leads, decisions, rotation, outbox,
//!   suppressions, console queries; the SQLite worker owner lock and account roll-ups
//! - [`webhook`]   — HubSpot / Salesforce / Pipedrive webhook verification and parsing
//! - [`crm`]       — deliver: CRM write-back, owner, nurture enrollment via the outbox; record fetch; polling
//! - [`server`]    — axum routes, bearer auth, edge guards (timeouts, caps, Host/Origin), the
//!   console's pages and API, the error table, metrics, a runtime per core
//! - [`services`]  — what the stages share at run time (pipeline, store, CRM), outside the edge
//! - [`worker`]    — claim, heartbeat, hand the job to the pipeline; [`shutdown`] drains; [`daemon`] wires `serve`
//! - [`console`]   — the RevOps console at `/`: review resolutions, overrides, sessions, pages
//! - [`alert`]     — `[[alert]]`: Slack and signed-webhook messages when a lead turns hot, an SLA
//!   is breached, a provider fails or runs out, deliveries fail; deduped, retried, never blocking
//! - [`batch`], [`simulate`], [`explain`] — the `run`, `simulate` and `explain` commands;
//!   [`json`] writes decisions

pub mod alert;
pub mod batch;
pub mod connector;
pub mod console;
pub mod crm;
pub mod daemon;
pub mod enrich;
pub mod events;
pub mod explain;
pub mod intake;
pub mod json;
pub mod lead;
pub mod normalize;
pub mod pipeline;
pub mod rescore;
pub mod resilience;
pub mod route;
pub mod rules;
pub mod score;
pub mod server;
pub mod services;
pub mod settings;
pub mod shutdown;
pub mod simulate;
pub mod store;
pub mod webhook;
pub mod worker;

pub use server::app;
