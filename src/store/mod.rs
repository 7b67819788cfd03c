//! Store: the durable queue (jobs), leads, decision history and rotation state, on SQLite
//! (the embedded default, `sqlite.rs`) or PostgreSQL (several replicas, `postgres.rs`);
//! [`Store`] dispatches to the one the storage URL names (`dispatch.rs`). Migrations are
//! embedded (migrations/sqlite/, migrations/postgres/, same file names) and applied at open.
//!
//! The store holds no business rules: it persists what the pipeline decided and hands out
//! jobs; callers decide what a job means.

mod alerts;
pub mod console;
mod crm;
mod dialect;
mod dispatch;
mod events;
mod leads;
mod limits;
mod outbox;
mod picks;
mod postgres;
pub mod privacy;
pub mod reuse;
mod routing;
mod sqlite;
pub mod suppression_list;
mod suppressions;
mod training;
mod usage;
mod versions;

pub use dispatch::{JobAssignments, Store};
pub use postgres::{is_postgres_url, PgStore};
pub use routing::{
    AssignmentRecord, AssignmentSnapshot, OpenAssignment, RouteEvent, SlaOutcome, TouchRecorded,
};
pub use sqlite::{
    LeadRef, NewOutcome, OutcomeLead, RecordedOutcome, SqliteStore, WorkerLock, WorkersHeld,
};
pub use versions::{account_changed, account_version};

use serde::Serialize;

/// Now in unix ms by this process's clock (the stored timestamps' unit).
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("storage URL `{0}` is not supported; use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    Unsupported(String),
    #[error("store query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// The intake writer's own connection (rusqlite) failed: opening it, or a statement.
    #[error("store write failed: {0}")]
    Write(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("job {job_id} is no longer held by this worker: its lease ran out before it was renewed (a stalled process or an unreachable store) and another worker claimed it again, or it was closed; the newer claim records the decision")]
    LeaseLost { job_id: String },
    /// The store answered, but too late for what the caller had to do next (a CRM call
    /// under a lease that could run out in flight).
    #[error("the store answered too slowly: {0}; the job will be retried")]
    TooSlow(String),
    #[error("this person asked to be erased; leadgate keeps and processes nothing about them")]
    Suppressed,
    /// The idempotency key (`key:...` or `external:...`) was stored with a different lead.
    #[error("idempotency key was already used for lead {lead_id} with a different body")]
    IdempotencyConflict { key: String, lead_id: String },
}

/// What makes two arrivals under one idempotency key the same request: a digest of the lead
/// as normalized (case, spacing and field order of the body do not count).
pub fn intake_digest(lead: &crate::lead::Lead) -> String {
    use sha2::Digest;
    let bytes = serde_json::to_vec(lead).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The answer to an accepted lead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    /// The lead's id: the same for every arrival of the same person.
    pub id: String,
    /// This arrival's job id.
    pub job_id: String,
    pub status: String,
    /// True when the idempotency key had been seen: nothing new was queued.
    pub duplicate: bool,
}

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub lead_id: String,
    pub payload: String,
    pub attempts: i64,
}

/// One arrival in a lead's history.
#[derive(Debug, Clone, Serialize)]
pub struct Arrival {
    pub job_id: String,
    pub status: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `GET /v1/leads/{id}` shows.
#[derive(Debug, Clone)]
pub struct LeadView {
    pub id: String,
    pub status: String,
    pub email: Option<String>,
    pub error: Option<String>,
    /// The latest decision, JSON.
    pub decision: Option<serde_json::Value>,
    /// Every decision made for this lead, oldest first.
    pub history: Vec<serde_json::Value>,
    pub arrivals: Vec<Arrival>,
}
