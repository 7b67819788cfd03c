//! The store's side of scoring: outcomes reported through `POST /v1/outcomes`, the leads
//! with outcomes for the conversion report (`leadgate simulate --from-store`), and the rows
//! the account score rolls up. No scoring arithmetic here: the score module does that.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;

use super::{has_email, Store};
use crate::lead::Lead;
use crate::score::{AccountEngagement, AccountRollup, AccountRows, AccountScore};
use crate::store::StoreError;

/// Connections of the lazily opened read pool the account rollup uses.
const ROLLUP_CONNECTIONS: u32 = 2;

/// How an outcome names its lead.
#[derive(Debug, Clone, PartialEq)]
pub enum LeadRef {
    /// leadgate's lead id (or one of its arrivals' job ids).
    Id(String),
    /// The lead's email, normalized (trimmed, lowercased).
    Email(String),
    /// The id the source system gave it.
    ExternalId(String),
}

/// An outcome to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutcome {
    pub converted: bool,
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub source: Option<String>,
}

/// A recorded outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedOutcome {
    pub id: i64,
    pub lead_id: String,
    pub converted: bool,
    pub at: DateTime<Utc>,
}

/// A stored lead with its latest outcome and latest decision.
#[derive(Debug, Clone)]
pub struct OutcomeLead {
    pub lead_id: String,
    pub lead: Lead,
    pub converted: bool,
    /// The latest decision record, JSON (none when it was never decided).
    pub decision: Option<serde_json::Value>,
}

impl Store {
    /// A read pool on the same SQLite file that connects on first use and applies no
    /// migrations (the process's main [`Store::open`] does): for the pipeline, which is
    /// built before the store is opened.
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(StoreError::Unsupported(url.into()));
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| StoreError::Open {
                url: url.into(),
                reason: e.to_string(),
            })?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        // Never used to accept in practice (the pipeline only reads), but a store is a store.
        let writer = super::group_commit::Target::of(&options, path);
        let pool = SqlitePoolOptions::new()
            .max_connections(ROLLUP_CONNECTIONS)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            group_commit: super::group_commit::GroupCommit::new(writer),
            suppression_key: Default::default(),
            suppression_list: Default::default(),
            path: (path != ":memory:").then(|| std::path::PathBuf::from(path)),
        })
    }

    /// The lead an outcome names, by id, email or external id.
    pub async fn find_lead(&self, r: &LeadRef) -> Result<Option<String>, StoreError> {
        let q = match r {
            // Each also finds a pending lead, one no worker has decided yet (migration 0010):
            // by its id through its jobs, by email or external id through its identity.
            LeadRef::Id(id) => sqlx::query_scalar::<_, String>(
                "SELECT id FROM leads WHERE id = ?1
                 UNION ALL SELECT lead_id FROM jobs WHERE id = ?1
                 UNION ALL SELECT lead_id FROM jobs WHERE lead_id = ?1 LIMIT 1",
            )
            .bind(id),
            LeadRef::Email(e) => sqlx::query_scalar(concat!(
                "SELECT id FROM (SELECT id FROM (SELECT l.id FROM leads l WHERE ",
                has_email!(),
                " ORDER BY l.updated_at DESC LIMIT 1)
                 UNION ALL SELECT lead_id FROM identities WHERE identity_key = 'email:' || ?1)
                 LIMIT 1"
            ))
            .bind(e),
            LeadRef::ExternalId(x) => sqlx::query_scalar(
                "SELECT id FROM leads WHERE identity_key = 'external:' || ?1
                 UNION ALL SELECT id FROM leads WHERE json_extract(data, '$.external_id') = ?1
                 UNION ALL SELECT lead_id FROM identities WHERE identity_key = 'external:' || ?1 LIMIT 1",
            )
            .bind(x),
        };
        Ok(q.fetch_optional(&self.pool).await?)
    }

    /// Records an outcome for a known lead.
    pub async fn record_outcome(
        &self,
        lead_id: &str,
        o: &NewOutcome,
    ) -> Result<RecordedOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // An outcome may come before any arrival was decided: the lead's row first.
        super::materialize(&mut tx, lead_id).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outcomes (lead_id, converted, at, recorded_at, value, source) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(lead_id)
        .bind(o.converted)
        .bind(o.at.timestamp_millis())
        .bind(Utc::now().timestamp_millis())
        .bind(o.value)
        .bind(&o.source)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RecordedOutcome {
            id,
            lead_id: lead_id.into(),
            converted: o.converted,
            at: o.at,
        })
    }

    /// Every lead with an outcome: its latest outcome and latest decision.
    pub async fn outcome_leads(&self) -> Result<Vec<OutcomeLead>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.id, l.data, o.converted,
                    (SELECT record FROM decisions d WHERE d.lead_id = l.id ORDER BY d.id DESC LIMIT 1) AS record
             FROM outcomes o JOIN leads l ON l.id = o.lead_id
             WHERE o.id = (SELECT MAX(id) FROM outcomes WHERE lead_id = o.lead_id)
             ORDER BY o.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let data: String = r.get("data");
            // A lead known only by a CRM record id has no data yet: nothing to score.
            let Ok(lead) = serde_json::from_str::<Lead>(&data) else {
                continue;
            };
            let record: Option<String> = r.get("record");
            out.push(OutcomeLead {
                lead_id: r.get("id"),
                lead,
                converted: r.get::<i64, _>("converted") != 0,
                decision: record.and_then(|s| serde_json::from_str(&s).ok()),
            });
        }
        Ok(out)
    }

    /// `(score, decided_at)` of the latest decision of every lead at `domain`, for the
    /// score `score` (the decision's `scores.ID.score`): the full read, which the running
    /// totals (`rollup.rs`) replace for the roll-up.
    pub async fn account_rows(
        &self,
        domain: &str,
        score: &str,
    ) -> Result<Vec<(f64, DateTime<Utc>)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::rollup::full_rows(&mut conn, domain, score).await
    }
}

impl AccountEngagement for Store {
    fn account_rows<'a>(&'a self, domain: &'a str, score: &'a str) -> AccountRows<'a> {
        Box::pin(Store::account_rows(self, domain, score))
    }

    fn account_score<'a>(
        &'a self,
        domain: &'a str,
        rollup: &'a AccountRollup,
        now: DateTime<Utc>,
    ) -> futures::future::BoxFuture<'a, Result<AccountScore, StoreError>> {
        Box::pin(Store::account_score(self, domain, rollup, now))
    }
}
