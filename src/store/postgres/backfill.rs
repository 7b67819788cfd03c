//! Backfill progress (`backfill_runs`, migration 0019): the cursor of the next page and the
//! counts so far, per connector and parameters. What a pass does is `crate::crm::backfill`'s.

use sqlx::Row;

use super::{now_ms, PgStore};
use crate::crm::backfill::state::{BackfillRun, Counts};
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
