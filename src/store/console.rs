//! What the console's store queries answer (issue 24): the leads list, the review queue, human
//! overrides and the stats the charts draw. The SQL is per backend (`sqlite/console.rs`,
//! `postgres/console.rs`); the rules (what a resolution or an override means) are
//! `crate::console`'s.

use serde::Serialize;

/// Filters of `GET /v1/leads`, already validated by the caller.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub grade: Option<String>,
    pub status: Option<String>,
    pub route: Option<String>,
    pub owner: Option<String>,
    /// Substring of the email, lowercase.
    pub q: Option<String>,
    /// Decided at or after, unix ms.
    pub since: Option<i64>,
    /// Decisions before this (decided at, decision id) position: the keyset cursor.
    pub before: Option<(i64, i64)>,
    pub limit: u32,
}

/// One row of the leads list: a lead's latest decision.
#[derive(Debug, Clone, Serialize)]
pub struct LeadRow {
    /// The decision's id: with `decided_at`, what the keyset cursor encodes.
    #[serde(skip)]
    pub decision_id: i64,
    pub id: String,
    pub email: Option<String>,
    pub score: i64,
    pub grade: String,
    pub route: String,
    pub owner: Option<String>,
    pub status: String,
    pub decided_at: i64,
    /// The active override's grade, when a human overrode it.
    pub override_grade: Option<String>,
    pub override_route: Option<String>,
}

/// A lead waiting in the review queue.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub job_id: String,
    pub lead_id: String,
    pub email: Option<String>,
    pub score: i64,
    pub grade: String,
    /// The decision routed to review, JSON.
    #[serde(skip)]
    pub record: String,
    pub decided_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
}

/// A human override as stored.
#[derive(Debug, Clone, Serialize)]
pub struct OverrideRecord {
    pub id: i64,
    pub lead_id: String,
    pub grade: Option<String>,
    pub route: Option<String>,
    pub reason: String,
    pub by: String,
    /// What it replaced: `{"grade": .., "route": ..}` of the decision it overrode.
    pub replaced: serde_json::Value,
    pub created_at: i64,
    pub cleared_at: Option<i64>,
    pub cleared_by: Option<String>,
}

/// One CRM side effect of a lead, from the outbox: what the lead page lists under "CRM
/// writes" (every attempt, including SLA reassignments and review resolutions).
#[derive(Debug, Clone, Serialize)]
pub struct CrmWrite {
    pub connector: String,
    /// write | enroll | find | owner ... (the outbox's `op`; the `decide` rows are not listed).
    pub op: String,
    /// pending | ok | failed
    pub status: String,
    pub record_id: Option<String>,
    pub result_id: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The outbox columns a [`CrmWrite`] is read from.
pub(crate) const CRM_WRITE_COLUMNS: &str =
    "connector, op, status, record_id, result_id, error, attempts, created_at, updated_at";

/// A new override, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewOverride {
    pub grade: Option<String>,
    pub route: Option<String>,
    pub reason: String,
    pub by: String,
}

/// A human label for training: the decision's lead as it was scored and the grade/route a
/// person said it should have had.
#[derive(Debug, Clone, Serialize)]
pub struct OverrideLabel {
    pub lead_id: String,
    pub grade: Option<String>,
    pub route: Option<String>,
    pub by: String,
    pub at: i64,
    /// The decision the person overrode, JSON (its `lead` and `enrichment` are the features).
    pub decision: Option<serde_json::Value>,
}

/// A review item's resolution, ready to record: the decision to deliver and the arrival
/// that carries it.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub by: String,
    pub action: String,
    pub reason: String,
    /// The resolved decision, JSON: stored as the new arrival's pending `decide` effect so
    /// the worker delivers it through the outbox exactly once.
    pub decision: String,
    pub new_job_id: String,
}

/// Why a review or override request changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleRefusal {
    #[error("lead {0} is not waiting in the review queue")]
    NotInReview(String),
    #[error("this review item is claimed by {0}; only they may resolve it (or claim it after they release it)")]
    ClaimedBy(String),
    #[error("this review item was already resolved by {0}")]
    ResolvedBy(String),
    #[error("lead {0} has no active override to clear")]
    NoOverride(String),
    #[error("no lead with id {0} (an erased person's lead is gone)")]
    NoLead(String),
    #[error("lead {0} has no decision yet to override")]
    NotDecided(String),
}

/// Counts per bucket for the charts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// (bucket, grade, leads)
    pub by_grade: Vec<(String, String, i64)>,
    /// (bucket, route rule, leads)
    pub by_route: Vec<(String, String, i64)>,
    /// (bucket, provider, outcome, attempts)
    pub by_provider: Vec<(String, String, String, i64)>,
    /// (lowest score of the band, leads with an outcome, converted)
    pub conversion: Vec<(i64, i64, i64)>,
}

/// Width of a score band in the conversion report.
pub const SCORE_BAND: i64 = 10;

use super::{Store, StoreError};

/// What a refusable console write answers: the store failed, or it refused and changed nothing.
pub type Refusable<T> = Result<Result<T, ConsoleRefusal>, StoreError>;

/// Forwards to the backend (as `dispatch.rs` does for the rest of the store).
impl Store {
    pub async fn list_leads(&self, f: &LeadFilter) -> Result<Vec<LeadRow>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list_leads(f).await,
            Store::Postgres(s) => s.list_leads(f).await,
        }
    }

    pub async fn review_queue(&self, limit: u32) -> Result<Vec<ReviewItem>, StoreError> {
        match self {
            Store::Sqlite(s) => s.review_queue(limit).await,
            Store::Postgres(s) => s.review_queue(limit).await,
        }
    }

    pub async fn open_review(&self, lead_id: &str) -> Result<Option<ReviewItem>, StoreError> {
        match self {
            Store::Sqlite(s) => s.open_review(lead_id).await,
            Store::Postgres(s) => s.open_review(lead_id).await,
        }
    }

    pub async fn claim_review(&self, lead_id: &str, by: &str) -> Refusable<ReviewItem> {
        match self {
            Store::Sqlite(s) => s.claim_review(lead_id, by).await,
            Store::Postgres(s) => s.claim_review(lead_id, by).await,
        }
    }

    pub async fn resolve_review(
        &self,
        job_id: &str,
        lead_id: &str,
        res: &Resolution,
    ) -> Refusable<()> {
        match self {
            Store::Sqlite(s) => s.resolve_review(job_id, lead_id, res).await,
            Store::Postgres(s) => s.resolve_review(job_id, lead_id, res).await,
        }
    }

    pub async fn add_override(&self, lead_id: &str, o: &NewOverride) -> Refusable<OverrideRecord> {
        match self {
            Store::Sqlite(s) => s.add_override(lead_id, o).await,
            Store::Postgres(s) => s.add_override(lead_id, o).await,
        }
    }

    pub async fn clear_override(&self, lead_id: &str, by: &str) -> Refusable<OverrideRecord> {
        match self {
            Store::Sqlite(s) => s.clear_override(lead_id, by).await,
            Store::Postgres(s) => s.clear_override(lead_id, by).await,
        }
    }

    pub async fn overrides(&self, lead_id: &str) -> Result<Vec<OverrideRecord>, StoreError> {
        match self {
            Store::Sqlite(s) => s.overrides(lead_id).await,
            Store::Postgres(s) => s.overrides(lead_id).await,
        }
    }

    /// The lead's CRM side effects from the outbox, oldest first.
    pub async fn crm_writes(&self, lead_id: &str) -> Result<Vec<CrmWrite>, StoreError> {
        match self {
            Store::Sqlite(s) => s.crm_writes(lead_id).await,
            Store::Postgres(s) => s.crm_writes(lead_id).await,
        }
    }

    pub async fn lead_id_by_email(&self, email: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.lead_id_by_email(email).await,
            Store::Postgres(s) => s.lead_id_by_email(email).await,
        }
    }

    /// The lead's override in force, if any.
    pub async fn active_override(
        &self,
        lead_id: &str,
    ) -> Result<Option<OverrideRecord>, StoreError> {
        Ok(self
            .overrides(lead_id)
            .await?
            .into_iter()
            .rev()
            .find(|o| o.cleared_at.is_none()))
    }

    /// Human overrides as training labels (for `leadgate train`).
    pub async fn override_labels(&self) -> Result<Vec<OverrideLabel>, StoreError> {
        match self {
            Store::Sqlite(s) => s.override_labels().await,
            Store::Postgres(s) => s.override_labels().await,
        }
    }

    pub async fn stats(&self, since: i64) -> Result<Stats, StoreError> {
        match self {
            Store::Sqlite(s) => s.stats(since).await,
            Store::Postgres(s) => s.stats(since).await,
        }
    }
}
