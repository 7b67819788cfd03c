//! Reading leads and the queue's counts, and the rotation's slots: the store's side of
//! `GET /v1/leads/{id}`, `leadgate explain`, metrics and live routing. Accepting, claiming
//! and closing jobs stay in each backend's file (group commit, the database clock, the
//! pending lead of migration 0010 on SQLite).

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use sqlx::Row;

use super::dialect::written_once;
use super::privacy::Digests;
use super::{Arrival, Job, LeadView, StoreError};
use crate::lead::{Decision, Lead, LeadStatus, RawLead};

written_once! {
helpers {
/// The job a claim's `RETURNING id, lead_id, payload, attempts` row describes.
pub(in crate::store) fn job(r: &DbRow) -> Job {
    Job {
        id: r.get("id"),
        lead_id: r.get("lead_id"),
        payload: r.get("payload"),
        attempts: r.get("attempts"),
    }
}

/// Whether either digest of an address is on the suppression list, in the caller's
/// transaction (checked where a lead would be kept: atomic with an erasure).
pub(in crate::store) async fn suppressed_in(
    conn: &mut Conn,
    d: &Digests,
) -> Result<bool, StoreError> {
    let found = sqlx::query(
        "SELECT 1 FROM suppressions_keyed WHERE email_hmac = $1
         UNION ALL SELECT 1 FROM suppressions WHERE email_sha256 = $2 LIMIT 1",
    )
    .bind(&d.keyed)
    .bind(&d.legacy)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// Inserts the decision row for `lead_id` (the record names it); `false` when one was
/// already recorded for the job.
pub(in crate::store) async fn insert_decision_row(
    conn: &mut Conn,
    lead_id: &str,
    job_id: Option<&str>,
    decision: &Decision,
) -> Result<bool, StoreError> {
    let mut record = decision.clone();
    record.id = lead_id.to_string();
    let json = serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let done = sqlx::query(
        // The domain it was decided with, or the stored lead's (as `complete` keeps it): the
        // account roll-up reads decisions by domain (migration 0008).
        "INSERT INTO decisions (lead_id, job_id, score, grade, route_rule, record, decided_at, domain)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, (SELECT domain FROM leads WHERE id = $1)))
         ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(lead_id)
    .bind(job_id)
    .bind(decision.score)
    .bind(&decision.grade)
    .bind(&decision.route.rule)
    .bind(json)
    .bind(decision.decided_at.timestamp_millis())
    .bind(&decision.lead.domain)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
}

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The current rotation positions (a dry run starts from them).
    pub async fn rotation_positions(&self) -> Result<HashMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT pool, position FROM rotation")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get::<String, _>("pool"),
                    u64::try_from(r.get::<i64, _>("position")).unwrap_or(0),
                )
            })
            .collect())
    }

    /// The pool's next rotation slot: one atomic upsert, so concurrent workers (in any
    /// replica) never get the same slot and a restart continues where the rotation was.
    pub async fn next_rotation_slot(&self, pool: &str) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO rotation (pool, position) VALUES ($1, 1)
             ON CONFLICT (pool) DO UPDATE SET position = rotation.position + 1
             RETURNING position",
        )
        .bind(pool)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(next - 1).unwrap_or(0))
    }

    /// A lead by its id (or by one of its arrivals' job ids).
    pub async fn lead(&self, id: &str) -> Result<Option<LeadView>, StoreError> {
        let row = sqlx::query(sql!("lead_find"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let lead_id: String = row.get("id");
        let arrivals: Vec<Arrival> = sqlx::query(
            "SELECT id, status, error, created_at FROM jobs WHERE lead_id = $1 ORDER BY created_at, id",
        )
        .bind(&lead_id)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| Arrival {
            job_id: r.get("id"),
            status: r.get("status"),
            error: r.get("error"),
            received_at: Utc
                .timestamp_millis_opt(r.get("created_at"))
                .single()
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
        })
        .collect();
        let history: Vec<serde_json::Value> = sqlx::query_scalar::<_, String>(
            "SELECT record FROM decisions WHERE lead_id = $1 ORDER BY id",
        )
        .bind(&lead_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect();
        let latest = arrivals.last();
        Ok(Some(LeadView {
            status: latest.map_or_else(|| LeadStatus::Done.as_str().to_string(), |a| a.status.clone()),
            error: latest.and_then(|a| a.error.clone()),
            id: lead_id,
            email: row.get("email"),
            decision: history.last().cloned(),
            history,
            arrivals,
        }))
    }

    /// The stored lead with this email, as last received (for `leadgate explain`).
    pub async fn lead_by_email(&self, email: &str) -> Result<Option<RawLead>, StoreError> {
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let payload: Option<String> = sqlx::query_scalar(sql!("lead_payload_by_email"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(p) = payload {
            return serde_json::from_str(&p).map(Some).map_err(corrupt);
        }
        let data: Option<String> = sqlx::query_scalar(sql!("lead_data_by_email"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        match data {
            None => Ok(None),
            Some(d) => {
                let lead: Lead = serde_json::from_str(&d).map_err(corrupt)?;
                let mut v = serde_json::to_value(&lead).map_err(corrupt)?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("email_info");
                }
                Ok(v.as_object().cloned().map(RawLead))
            }
        }
    }

    /// Jobs per status, for metrics and readiness.
    pub async fn queue_depth(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("status"), r.get("n")))
            .collect())
    }

    /// How many decisions are stored (tests, reports).
    pub async fn decision_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
            .fetch_one(&self.pool)
            .await?)
    }
}
