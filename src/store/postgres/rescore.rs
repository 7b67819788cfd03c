//! Re-scoring at rest on PostgreSQL (migration 0021, issue 25); see the SQLite twin. The
//! claim skips rows another replica's claim holds (`FOR UPDATE SKIP LOCKED`) and moves the
//! claimed ones to the next pass in the same statement.

use std::collections::HashMap;

use sqlx::Row;

use super::{record_decision, rollup, PgStore as Store};
use crate::lead::Event;
use crate::rescore::{Claimed, Settle};
use crate::store::StoreError;

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl Store {
    /// See the SQLite twin.
    pub async fn rescore_claim(
        &self,
        now: i64,
        next: i64,
        batch: usize,
        token: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(
            "WITH due AS (
                 SELECT lead_id, pending FROM rescore_state WHERE due_at <= $1
                 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE rescore_state r SET due_at = $3, claim = $4, pending = NULL
             FROM due WHERE r.lead_id = due.lead_id
             RETURNING r.lead_id, r.decision_id, due.pending",
        )
        .bind(now)
        .bind(batch as i64)
        .bind(next)
        .bind(token)
        .fetch_all(&self.pool)
        .await?;
        let claimed: Vec<Claimed> = rows
            .iter()
            .map(|r| Claimed {
                lead_id: r.get("lead_id"),
                decision_id: r.get("decision_id"),
                pending: r.get("pending"),
                record: None,
                events: Vec::new(),
            })
            .collect();
        if claimed.is_empty() {
            return Ok(claimed);
        }
        self.rescore_load(claimed).await
    }

    /// See the SQLite twin.
    pub async fn rescore_peek(
        &self,
        after: &str,
        limit: usize,
        due: Option<i64>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(
            "SELECT lead_id, decision_id, pending FROM rescore_state
             WHERE lead_id > $1 AND ($2::BIGINT IS NULL OR due_at <= $2) ORDER BY lead_id LIMIT $3",
        )
        .bind(after)
        .bind(due)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        let claimed = rows
            .iter()
            .map(|r| Claimed {
                lead_id: r.get("lead_id"),
                decision_id: r.get("decision_id"),
                pending: r.get("pending"),
                record: None,
                events: Vec::new(),
            })
            .collect();
        self.rescore_load(claimed).await
    }

    /// Adds each person's latest decision record and event history, in two reads.
    async fn rescore_load(&self, mut claimed: Vec<Claimed>) -> Result<Vec<Claimed>, StoreError> {
        if claimed.is_empty() {
            return Ok(claimed);
        }
        let ids: Vec<String> = claimed.iter().map(|c| c.lead_id.clone()).collect();
        let decision_ids: Vec<i64> = claimed.iter().map(|c| c.decision_id).collect();
        let mut records: HashMap<i64, String> =
            sqlx::query("SELECT id, record FROM decisions WHERE id = ANY($1)")
                .bind(&decision_ids)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|r| (r.get("id"), r.get("record")))
                .collect();
        let mut events: HashMap<String, Vec<Event>> = HashMap::new();
        let rows = sqlx::query(
            "SELECT lead_id, body FROM person_events WHERE lead_id = ANY($1)
             ORDER BY lead_id, at_ms, event_key",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let body: &str = r.get("body");
            events
                .entry(r.get("lead_id"))
                .or_default()
                .push(serde_json::from_str(body).map_err(corrupt)?);
        }
        for c in &mut claimed {
            c.record = records.remove(&c.decision_id);
            c.events = events.remove(&c.lead_id).unwrap_or_default();
        }
        Ok(claimed)
    }

    /// See the SQLite twin. The lead's row is locked first, as recording an arrival's
    /// decision locks it: a decision recorded meanwhile is seen, and wins.
    pub async fn rescore_settle(&self, batch: &[Settle]) -> Result<Vec<String>, StoreError> {
        let mut recorded = Vec::new();
        if batch.is_empty() {
            return Ok(recorded);
        }
        let mut tx = self.pool.begin().await?;
        // The account totals move last, once every lead of the batch is locked (rollup.rs).
        let mut moves = Vec::new();
        for s in batch {
            if let Some(decision) = &s.decision {
                let locked = sqlx::query("SELECT id FROM leads WHERE id = $1 FOR UPDATE")
                    .bind(&s.lead_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if locked.is_none() {
                    continue;
                }
                let latest: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM decisions WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
                )
                .bind(&s.lead_id)
                .fetch_optional(&mut *tx)
                .await?;
                if latest != Some(s.decision_id) {
                    continue;
                }
                let pending: Option<String> =
                    sqlx::query_scalar("SELECT pending FROM rescore_state WHERE lead_id = $1")
                        .bind(&s.lead_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .flatten();
                moves.extend(record_decision(&mut tx, &s.lead_id, None, decision).await?);
                if s.rerouted {
                    super::routing::record_assignment(&mut tx, &s.lead_id, decision).await?;
                }
                recorded.push(s.lead_id.clone());
                let (due_at, pending) = match pending {
                    Some(p) => (0, Some(p)),
                    None => (s.due_at, None),
                };
                sqlx::query(
                    "UPDATE rescore_state SET due_at = $1, pending = $2 WHERE lead_id = $3",
                )
                .bind(due_at)
                .bind(pending)
                .bind(&s.lead_id)
                .execute(&mut *tx)
                .await?;
            } else if s.due_at == crate::rescore::NEVER {
                sqlx::query(
                    "UPDATE rescore_state SET due_at = $1 WHERE lead_id = $2 AND pending IS NULL",
                )
                .bind(s.due_at)
                .bind(&s.lead_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        rollup::apply(&mut tx, &moves).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// See the SQLite twin.
    pub async fn rescore_mark_all(&self) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("UPDATE rescore_state SET due_at = 0, pending = 'rules_change'")
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// See the SQLite twin; the row lock makes replicas starting together mark once.
    pub async fn rescore_rules(&self, digest: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rescore_rules (id, digest) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(digest)
        .execute(&mut *tx)
        .await?;
        let before: String =
            sqlx::query_scalar("SELECT digest FROM rescore_rules WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let mut marked = 0;
        if before != digest {
            sqlx::query("UPDATE rescore_rules SET digest = $1 WHERE id = 1")
                .bind(digest)
                .execute(&mut *tx)
                .await?;
            marked = sqlx::query("UPDATE rescore_state SET due_at = 0, pending = 'rules_change'")
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// See the SQLite twin.
    pub async fn rescore_due(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rescore_state WHERE due_at <= $1")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}
