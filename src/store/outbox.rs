//! The store's side of delivery: the outbox (one row per CRM side effect, with the CRM's
//! answer) and the polling cursors. What the rows mean is `crate::crm`'s business.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::dialect::written_once;
use super::now_ms;
use crate::crm::outbox::{Effect, EffectStatus, Finished, OutboxEntry};
use crate::store::StoreError;

pub(in crate::store) const COLUMNS: &str =
    "effect_key, status, decision, record_id, result_id, answer, error, attempts";

written_once! {
helpers {
/// An outbox row (its [`COLUMNS`]) as the CRM stage reads it.
pub(in crate::store) fn entry(r: &DbRow) -> OutboxEntry {
    OutboxEntry {
        key: r.get("effect_key"),
        status: EffectStatus::parse(r.get::<String, _>("status").as_str()),
        decision: r.get("decision"),
        record_id: r.get("record_id"),
        result_id: r.get("result_id"),
        answer: r
            .get::<Option<String>, _>("answer")
            .and_then(|a| serde_json::from_str(&a).ok()),
        error: r.get("error"),
        attempts: r.get("attempts"),
    }
}

/// Closes effects with their answers in the caller's transaction (a page's writes commit
/// with its cursor in backfill).
pub(in crate::store) async fn close_effects(
    conn: &mut Conn,
    finished: &[(String, Finished)],
    now: i64,
) -> Result<(), StoreError> {
    for (key, f) in finished {
        sqlx::query(
            "UPDATE outbox SET status = $1, record_id = COALESCE($2, record_id), result_id = COALESCE($3, result_id),
               answer = $4, error = $5, updated_at = $6 WHERE effect_key = $7",
        )
        .bind(f.status.as_str())
        .bind(&f.record_id)
        .bind(&f.result_id)
        .bind(f.answer.as_ref().map(|a| a.to_string()))
        .bind(&f.error)
        .bind(now)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
}

    /// Records that an effect is about to happen, or — when it was begun before — counts
    /// the new attempt and returns the row as it stands (a finished effect is not redone).
    pub async fn outbox_begin(&self, e: &Effect) -> Result<OutboxEntry, StoreError> {
        let now = now_ms();
        let row = sqlx::query(&format!(
            "INSERT INTO outbox (effect_key, lead_id, job_id, connector, op, status, decision, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, 1, $7, $8)
             ON CONFLICT(effect_key) DO UPDATE SET attempts = outbox.attempts + 1, updated_at = excluded.updated_at
             RETURNING {COLUMNS}"
        ))
        .bind(&e.key)
        .bind(&e.lead_id)
        .bind(&e.job_id)
        .bind(&e.connector)
        .bind(&e.op)
        .bind(&e.decision)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(entry(&row))
    }

    pub async fn outbox_get(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE effect_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(entry))
    }

    /// Closes an effect with the CRM's answer.
    pub async fn outbox_finish(&self, key: &str, f: &Finished) -> Result<(), StoreError> {
        let answer = f.answer.as_ref().map(|a| a.to_string());
        sqlx::query(
            "UPDATE outbox SET status = $1, record_id = COALESCE($2, record_id), result_id = COALESCE($3, result_id),
               answer = $4, error = $5, updated_at = $6 WHERE effect_key = $7",
        )
        .bind(f.status.as_str())
        .bind(&f.record_id)
        .bind(&f.result_id)
        .bind(answer)
        .bind(&f.error)
        .bind(now_ms())
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When leadgate last wrote to this CRM record (polling skips its own echo).
    pub async fn outbox_last_write(
        &self,
        connector: &str,
        record_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(updated_at) FROM outbox WHERE connector = $1 AND record_id = $2 AND op = 'write' AND status = 'ok'",
        )
        .bind(connector)
        .bind(record_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(at.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    pub async fn poll_cursor(&self, connector: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT cursor FROM poll_cursors WHERE connector = $1")
                .bind(connector)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_poll_cursor(&self, connector: &str, cursor: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO poll_cursors (connector, cursor, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT(connector) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(connector)
        .bind(cursor)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Many effects at once, in one transaction: a backfill begins and closes a batch's
    /// writes together (one commit, one fsync, instead of one per record).
    pub async fn outbox_begin_all(
        &self,
        effects: &[Effect],
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_pick().await?;
        let mut out = Vec::with_capacity(effects.len());
        for e in effects {
            let row = sqlx::query(&format!(
                "INSERT INTO outbox (effect_key, lead_id, job_id, connector, op, status, decision, attempts, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, 1, $7, $8)
                 ON CONFLICT(effect_key) DO UPDATE SET attempts = outbox.attempts + 1, updated_at = excluded.updated_at
                 RETURNING {COLUMNS}"
            ))
            .bind(&e.key)
            .bind(&e.lead_id)
            .bind(&e.job_id)
            .bind(&e.connector)
            .bind(&e.op)
            .bind(&e.decision)
            .bind(now)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            out.push(entry(&row));
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn outbox_finish_all(
        &self,
        finished: &[(String, Finished)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_pick().await?;
        close_effects(&mut tx, finished, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}
