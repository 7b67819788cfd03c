//! Backfill progress (`backfill_runs`, migration 0019): the cursor of the next page and the
//! counts so far, per connector and parameters. What a pass does is `crate::crm::backfill`'s.

use sqlx::Row;

use super::{now_ms, PgStore};
use crate::crm::backfill::state::{BackfillRun, Counts};
use crate::crm::outbox::{Finished, OutboxEntry};
use crate::store::StoreError;

impl PgStore {
    /// The unfinished pass for (connector, params), or a new one (the next generation after
    /// a finished pass; the first when there was none).
    pub async fn backfill_start(
        &self,
        connector: &str,
        params: &str,
    ) -> Result<BackfillRun, StoreError> {
        let row = sqlx::query(
            "SELECT generation, cursor, pages, counts, status FROM backfill_runs WHERE connector = $1 AND params = $2",
        )
        .bind(connector)
        .bind(params)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(r) = &row {
            if r.get::<String, _>("status") == "running" {
                return Ok(BackfillRun {
                    connector: connector.to_string(),
                    params: params.to_string(),
                    generation: r.get("generation"),
                    cursor: r.get("cursor"),
                    pages: r.get("pages"),
                    counts: Counts::from_json(&r.get::<String, _>("counts")),
                    resumed: true,
                });
            }
        }
        let generation = row.map_or(1, |r| r.get::<i64, _>("generation") + 1);
        let now = now_ms();
        sqlx::query(
            "INSERT INTO backfill_runs (connector, params, generation, cursor, pages, counts, status, started_at, updated_at)
             VALUES ($1, $2, $3, NULL, 0, '{}', 'running', $4, $4)
             ON CONFLICT(connector, params) DO UPDATE SET generation = excluded.generation, cursor = NULL,
               pages = 0, counts = '{}', status = 'running', started_at = excluded.started_at, updated_at = excluded.updated_at",
        )
        .bind(connector)
        .bind(params)
        .bind(generation)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(BackfillRun {
            connector: connector.to_string(),
            params: params.to_string(),
            generation,
            cursor: None,
            pages: 0,
            counts: Counts::default(),
            resumed: false,
        })
    }

    /// Commits a page: the next page's cursor, the counts so far, and whether the pass is
    /// done (no next page).
    pub async fn backfill_commit(
        &self,
        run: &BackfillRun,
        next: Option<&str>,
        done: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE backfill_runs SET cursor = $1, pages = $2, counts = $3, status = $4, updated_at = $5
             WHERE connector = $6 AND params = $7",
        )
        .bind(next)
        .bind(run.pages)
        .bind(run.counts.to_json())
        .bind(if done { "done" } else { "running" })
        .bind(now_ms())
        .bind(&run.connector)
        .bind(&run.params)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A page's reads in one round trip each: its records' outbox rows and which of its people
/// asked to be erased (per-record queries were most of a page's store time).
impl PgStore {
    /// The outbox rows among `keys`, by key; keys with no row are absent.
    pub async fn outbox_get_many(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT effect_key, status, decision, record_id, result_id, answer, error, attempts
             FROM outbox WHERE effect_key = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let e = crate::store::outbox::postgres::entry(r);
                (e.key.clone(), e)
            })
            .collect())
    }

    /// Which of `emails` asked to be erased (keyed or legacy digest), by position.
    pub async fn suppressed_among(&self, emails: &[String]) -> Result<Vec<bool>, StoreError> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.suppression_key().await?.clone();
        let digests: Vec<_> = emails.iter().map(|e| key.digests(e)).collect();
        let keyed: Vec<String> = digests.iter().map(|d| d.keyed.clone()).collect();
        let legacy: Vec<String> = digests.iter().map(|d| d.legacy.clone()).collect();
        let found: std::collections::HashSet<String> = sqlx::query_scalar::<_, String>(
            "SELECT email_hmac FROM suppressions_keyed WHERE email_hmac = ANY($1)
             UNION ALL SELECT email_sha256 FROM suppressions WHERE email_sha256 = ANY($2)",
        )
        .bind(&keyed)
        .bind(&legacy)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        Ok(digests
            .iter()
            .map(|d| found.contains(&d.keyed) || found.contains(&d.legacy))
            .collect())
    }
}

impl PgStore {
    /// Closes a page's effects with their answers and commits the page, in one transaction:
    /// the cursor never moves past a write that is not closed, and a page costs one commit.
    pub async fn backfill_close_page(
        &self,
        finished: &[(String, Finished)],
        run: &BackfillRun,
        next: Option<&str>,
        done: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        crate::store::outbox::postgres::close_effects(&mut tx, finished, now).await?;
        sqlx::query(
            "UPDATE backfill_runs SET cursor = $1, pages = $2, counts = $3, status = $4, updated_at = $5
             WHERE connector = $6 AND params = $7",
        )
        .bind(next)
        .bind(run.pages)
        .bind(run.counts.to_json())
        .bind(if done { "done" } else { "running" })
        .bind(now)
        .bind(&run.connector)
        .bind(&run.params)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
