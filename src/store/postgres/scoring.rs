//! The store's side of scoring: outcomes reported through `POST /v1/outcomes`, the leads
//! with outcomes for the conversion report (`leadgate simulate --from-store`), and the rows
//! the account score rolls up. No scoring arithmetic here: the score module does that.
//!
//! PostgreSQL twin of `sqlite/scoring.rs`: same methods and meaning; JSON is read with
//! `jsonb` operators where SQLite uses `json_extract`.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Row;

use super::PgStore;
use crate::lead::Lead;
use crate::score::AccountEngagement;
use crate::store::{LeadRef, NewOutcome, OutcomeLead, RecordedOutcome, StoreError};

/// Connections of the lazily opened read pool the account rollup uses.
const ROLLUP_CONNECTIONS: u32 = 2;

impl PgStore {
    /// A pool on the same database that connects on first use and applies no migrations
    /// (the process's main [`PgStore::open`] does): for the pipeline, which is built before
    /// the store is opened.
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        if !super::is_postgres_url(url) {
            return Err(StoreError::Unsupported(url.into()));
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Open {
                url: super::redact(url),
                reason: e.to_string(),
            })?
            .application_name("leadgate");
        let pool = PgPoolOptions::new()
            .max_connections(ROLLUP_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            suppression_key: Default::default(),
            suppression_list: Default::default(),
        })
    }

    /// The lead an outcome names, by id, email or external id.
    pub async fn find_lead(&self, r: &LeadRef) -> Result<Option<String>, StoreError> {
        let q = match r {
            LeadRef::Id(id) => sqlx::query_scalar::<_, String>(
                "SELECT id FROM leads WHERE id = $1
                 UNION ALL SELECT lead_id FROM jobs WHERE id = $1 LIMIT 1",
            )
            .bind(id),
            LeadRef::Email(e) => sqlx::query_scalar(
                "SELECT id FROM leads WHERE email = $1 ORDER BY updated_at DESC LIMIT 1",
            )
            .bind(e),
            LeadRef::ExternalId(x) => sqlx::query_scalar(
                "SELECT id FROM leads WHERE identity_key = 'external:' || $1
                 UNION ALL SELECT id FROM leads WHERE data::jsonb ->> 'external_id' = $1 LIMIT 1",
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outcomes (lead_id, converted, at, recorded_at, value, source) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(lead_id)
        .bind(o.converted)
        .bind(o.at.timestamp_millis())
        .bind(Utc::now().timestamp_millis())
        .bind(o.value)
        .bind(&o.source)
        .fetch_one(&self.pool)
        .await?;
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
                converted: r.get::<bool, _>("converted"),
                decision: record.and_then(|s| serde_json::from_str(&s).ok()),
            });
        }
        Ok(out)
    }

    /// `(score, decided_at)` of the latest decision of every lead at `domain`, for the
    /// score `score` (the decision's `scores.ID.score`).
    pub async fn account_rows(
        &self,
        domain: &str,
        score: &str,
    ) -> Result<Vec<(f64, DateTime<Utc>)>, StoreError> {
        // The score's value when it is a JSON number; anything else is skipped, as SQLite's
        // json_extract yields no number for it.
        let rows = sqlx::query(
            "SELECT CASE WHEN jsonb_typeof(d.record::jsonb -> 'scores' -> $1 -> 'score') = 'number'
                         THEN (d.record::jsonb -> 'scores' -> $1 -> 'score')::float8 END AS s,
                    d.decided_at
             FROM decisions d
             WHERE d.domain = $2 AND d.id = (SELECT MAX(id) FROM decisions WHERE lead_id = d.lead_id)",
        )
        .bind(score)
        .bind(domain)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let s: Option<f64> = r.try_get("s").ok().flatten();
                let at = Utc.timestamp_millis_opt(r.get("decided_at")).single()?;
                Some((s?, at))
            })
            .collect())
    }
}

impl AccountEngagement for PgStore {
    fn account_rows<'a>(
        &'a self,
        domain: &'a str,
        score: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(f64, DateTime<Utc>)>, StoreError>> {
        Box::pin(PgStore::account_rows(self, domain, score))
    }

    fn account_score<'a>(
        &'a self,
        domain: &'a str,
        rollup: &'a crate::score::AccountRollup,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<crate::score::AccountScore, StoreError>> {
        Box::pin(PgStore::account_score(self, domain, rollup, now))
    }
}
