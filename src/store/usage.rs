//! Paid providers' credits per UTC day (`provider_usage`), added up across restarts and
//! replicas: see `enrich::usage`.

use std::collections::HashMap;

use sqlx::Row;

use super::dialect::written_once;
use super::{now_ms, StoreError};

written_once! {
    /// Adds each (provider, UTC day `YYYY-MM-DD`, credits) to the day's total, in one
    /// transaction.
    pub async fn add_provider_credits(
        &self,
        charges: &[(String, String, f64)],
    ) -> Result<(), StoreError> {
        if charges.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_pick().await?;
        for (provider, day, credits) in charges {
            sqlx::query(
                "INSERT INTO provider_usage (provider, day, credits, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(provider, day) DO UPDATE SET credits = provider_usage.credits + excluded.credits,
                   updated_at = excluded.updated_at",
            )
            .bind(provider)
            .bind(day)
            .bind(credits)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every provider's credits on UTC day `day` (`YYYY-MM-DD`).
    pub async fn provider_credits_on(&self, day: &str) -> Result<HashMap<String, f64>, StoreError> {
        let rows = sqlx::query("SELECT provider, credits FROM provider_usage WHERE day = $1")
            .bind(day)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<f64, _>(1)))
            .collect())
    }
}
