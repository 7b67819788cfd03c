//! Re-scoring at rest on SQLite (migration 0021, issue 25): claiming due people, reading
//! what re-scoring needs in bulk, writing a batch back in one transaction.

use std::collections::HashMap;

use sqlx::Row;

use super::{record_decision, rollup, Store};
use crate::lead::Event;
use crate::rescore::{Claimed, Settle};
use crate::store::StoreError;

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl Store {
    /// Claims up to `batch` people due at `now` and moves them to `next` (both unix ms) in
    /// one immediate transaction: no other claim can take them in this pass. Returns each
    /// with its latest decision's record and whole event history.
    pub async fn rescore_claim(
        &self,
        now: i64,
        next: i64,
        batch: usize,
        token: &str,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT lead_id, decision_id, pending FROM rescore_state
             WHERE due_at <= ? ORDER BY due_at LIMIT ?",
        )
        .bind(now)
        .bind(batch as i64)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
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
        let ids = serde_json::to_string(&claimed.iter().map(|c| &c.lead_id).collect::<Vec<_>>())
            .map_err(corrupt)?;
        sqlx::query(
            "UPDATE rescore_state SET due_at = ?, claim = ?, pending = NULL
             WHERE lead_id IN (SELECT value FROM json_each(?))",
        )
        .bind(next)
        .bind(token)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;

        self.rescore_load(claimed).await
    }

    /// Up to `limit` people after `after` in id order, due at `due` or all of them, with
    /// what re-scoring needs: a look that claims nothing (`rescore --dry-run`).
    pub async fn rescore_peek(
        &self,
        after: &str,
        limit: usize,
        due: Option<i64>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let rows = sqlx::query(
            "SELECT lead_id, decision_id, pending FROM rescore_state
             WHERE lead_id > ? AND (? IS NULL OR due_at <= ?) ORDER BY lead_id LIMIT ?",
        )
        .bind(after)
        .bind(due)
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
        let ids = serde_json::to_string(&claimed.iter().map(|c| &c.lead_id).collect::<Vec<_>>())
            .map_err(corrupt)?;
        let decision_ids =
            serde_json::to_string(&claimed.iter().map(|c| c.decision_id).collect::<Vec<_>>())
                .map_err(corrupt)?;
        let mut records: HashMap<i64, String> = sqlx::query(
            "SELECT id, record FROM decisions WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(&decision_ids)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|r| (r.get("id"), r.get("record")))
        .collect();
        let mut events: HashMap<String, Vec<Event>> = HashMap::new();
        let rows = sqlx::query(
            "SELECT lead_id, body FROM person_events
             WHERE lead_id IN (SELECT value FROM json_each(?))
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

    /// Writes a re-scored batch in one transaction: each moved score as a new decision
    /// (unless a newer decision was recorded meanwhile), then each person's next look.
    /// Returns the lead ids whose decision was recorded.
    pub async fn rescore_settle(&self, batch: &[Settle]) -> Result<Vec<String>, StoreError> {
        let mut recorded = Vec::new();
        if batch.is_empty() {
            return Ok(recorded);
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for s in batch {
            if let Some(decision) = &s.decision {
                let latest: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM decisions WHERE lead_id = ? ORDER BY id DESC LIMIT 1",
                )
                .bind(&s.lead_id)
                .fetch_optional(&mut *tx)
                .await?;
                if latest != Some(s.decision_id) {
                    continue;
                }
                let before = rollup::latest(&mut tx, &s.lead_id).await?;
                // An event that came after the claim keeps its person due: the decision's
                // trigger would clear it.
                let pending: Option<String> =
                    sqlx::query_scalar("SELECT pending FROM rescore_state WHERE lead_id = ?")
                        .bind(&s.lead_id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .flatten();
                record_decision(&mut tx, &s.lead_id, None, before.as_ref(), decision).await?;
                if s.rerouted {
                    super::routing::record_assignment(&mut tx, &s.lead_id, decision).await?;
                }
                recorded.push(s.lead_id.clone());
                let (due_at, pending) = match pending {
                    Some(p) => (0, Some(p)),
                    None => (s.due_at, None),
                };
                sqlx::query("UPDATE rescore_state SET due_at = ?, pending = ? WHERE lead_id = ?")
                    .bind(due_at)
                    .bind(pending)
                    .bind(&s.lead_id)
                    .execute(&mut *tx)
                    .await?;
            } else if s.due_at == crate::rescore::NEVER {
                // A score that cannot fade waits for an event or a rules change.
                sqlx::query(
                    "UPDATE rescore_state SET due_at = ? WHERE lead_id = ? AND pending IS NULL",
                )
                .bind(s.due_at)
                .bind(&s.lead_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Makes every person due now with cause `rules_change`; returns how many.
    pub async fn rescore_mark_all(&self) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("UPDATE rescore_state SET due_at = 0, pending = 'rules_change'")
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// Records `digest` as the rules the sweep runs with; when another digest was recorded,
    /// marks everyone (as [`Store::rescore_mark_all`]) in the same transaction and returns
    /// how many.
    pub async fn rescore_rules(&self, digest: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let before: Option<String> =
            sqlx::query_scalar("SELECT digest FROM rescore_rules WHERE id = 1")
                .fetch_optional(&mut *tx)
                .await?;
        let mut marked = 0;
        if before.as_deref() != Some(digest) {
            sqlx::query(
                "INSERT INTO rescore_rules (id, digest) VALUES (1, ?)
                 ON CONFLICT(id) DO UPDATE SET digest = excluded.digest",
            )
            .bind(digest)
            .execute(&mut *tx)
            .await?;
            // The first digest ever recorded: the migration made everybody due already.
            if before.is_some() {
                marked =
                    sqlx::query("UPDATE rescore_state SET due_at = 0, pending = 'rules_change'")
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(marked)
    }

    /// How many people are due at `now` (`leadgate rescore`, tests).
    pub async fn rescore_due(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rescore_state WHERE due_at <= ?")
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }
}
