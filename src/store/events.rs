//! Reading and pruning the per-person event history (migration 0016, issue 25). Keeping
//! events stays in each backend's file: SQLite writes them in the group commit's batches.

use super::dialect::written_once;
use super::StoreError;
use crate::lead::Event;

written_once! {
    /// Lead `lead_id`'s stored events, oldest first.
    pub async fn person_events(&self, lead_id: &str) -> Result<Vec<Event>, StoreError> {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM person_events WHERE lead_id = $1 ORDER BY at_ms, event_key",
        )
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|x| StoreError::Corrupt(x.to_string())))
            .collect()
    }

    /// Deletes lead `lead_id`'s events with these keys (past their retention).
    pub async fn drop_events(&self, lead_id: &str, keys: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut dropped = 0;
        for key in keys {
            dropped +=
                sqlx::query("DELETE FROM person_events WHERE lead_id = $1 AND event_key = $2")
                    .bind(lead_id)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
        }
        tx.commit().await?;
        Ok(dropped)
    }
}
