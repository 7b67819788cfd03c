//! Alert claims (`alert_claims`): see `crate::alert::dispatcher`. A claim is one atomic
//! upsert, so two replicas never both send the same alert about the same lead or provider
//! within its dedupe window.

use super::dialect::written_once;
use super::StoreError;

written_once! {
    /// Claims the send of `alert` about `key` at `now_ms` unless one was sent after
    /// `now_ms - window_ms`; `true` when this caller may send.
    pub async fn claim_alert(
        &self,
        alert: &str,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO alert_claims (alert, key, sent_ms) VALUES ($1, $2, $3)
             ON CONFLICT(alert, key) DO UPDATE SET sent_ms = excluded.sent_ms
               WHERE alert_claims.sent_ms <= $3 - $4",
        )
        .bind(alert)
        .bind(key)
        .bind(now_ms)
        .bind(window_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a claim back (the alert could not be delivered), so the next occurrence is sent.
    /// Only the claim made at `sent_ms` is removed: a later one by another replica stays.
    pub async fn release_alert(
        &self,
        alert: &str,
        key: &str,
        sent_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM alert_claims WHERE alert = $1 AND key = $2 AND sent_ms = $3")
            .bind(alert)
            .bind(key)
            .bind(sent_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
