//! Limits shared by the replicas on one store (`provider_day_limits`, `provider_holds`):
//! see `resilience::shared`. Each claim is one atomic upsert, so concurrent replicas never
//! both take the last request or credit.

use sqlx::Row;

use super::dialect::written_once;
use super::StoreError;

written_once! {
    /// Counts one request for `provider` on `day` unless `cap` are counted already; `true`
    /// when counted.
    pub async fn claim_provider_request(
        &self,
        provider: &str,
        day: &str,
        cap: u32,
    ) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        let row = sqlx::query(
            "INSERT INTO provider_day_limits (provider, day, requests) VALUES ($1, $2, 1)
             ON CONFLICT(provider, day) DO UPDATE SET requests = provider_day_limits.requests + 1
               WHERE provider_day_limits.requests < $3
             RETURNING requests",
        )
        .bind(provider)
        .bind(day)
        .bind(i64::from(cap))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Adds `credits` to the day's claimed credits unless that would pass `limit`; `Ok(None)`
    /// when claimed, else the credits already claimed.
    pub async fn claim_provider_credits(
        &self,
        provider: &str,
        day: &str,
        credits: f64,
        limit: f64,
    ) -> Result<Option<f64>, StoreError> {
        if credits > limit + f64::EPSILON {
            return Ok(Some(0.0));
        }
        let row = sqlx::query(sql!("claim_provider_credits"))
        .bind(provider)
        .bind(day)
        .bind(credits)
        .bind(limit)
        .fetch_optional(&self.pool)
        .await?;
        if row.is_some() {
            return Ok(None);
        }
        let used: f64 = sqlx::query_scalar(
            "SELECT credits FROM provider_day_limits WHERE provider = $1 AND day = $2",
        )
        .bind(provider)
        .bind(day)
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0.0);
        Ok(Some(used))
    }

    /// Gives back credits claimed for a call the vendor did not bill.
    pub async fn release_provider_credits(
        &self,
        provider: &str,
        day: &str,
        credits: f64,
    ) -> Result<(), StoreError> {
        sqlx::query(sql!("release_provider_credits"))
        .bind(provider)
        .bind(day)
        .bind(credits)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Holds `provider` (`kind` = pause or park) until `until_ms`, keeping a later hold.
    pub async fn hold_provider(
        &self,
        provider: &str,
        kind: &str,
        until_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO provider_holds (provider, kind, until_ms, reason) VALUES ($1, $2, $3, $4)
             ON CONFLICT(provider, kind) DO UPDATE SET until_ms = excluded.until_ms,
               reason = excluded.reason
               WHERE provider_holds.until_ms < excluded.until_ms",
        )
        .bind(provider)
        .bind(kind)
        .bind(until_ms)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The hold on `provider` of `kind`, if any: (until, unix ms; reason). May be past.
    pub async fn provider_hold(
        &self,
        provider: &str,
        kind: &str,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT until_ms, reason FROM provider_holds WHERE provider = $1 AND kind = $2",
        )
        .bind(provider)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))))
    }
}
