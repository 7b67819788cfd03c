//! Read-only queries for the model's drift report (`simulate --from-store --drift`).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::dialect::written_once;
use super::StoreError;

written_once! {
    /// Every decision made since `since` (the latest per lead), oldest first, with the
    /// lead's latest posted outcome when there is one.
    pub async fn decided_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(serde_json::Value, Option<bool>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.record,
                    (SELECT o.converted FROM outcomes o WHERE o.lead_id = d.lead_id
                      ORDER BY o.id DESC LIMIT 1) AS converted
               FROM decisions d
              WHERE d.decided_at >= $1
                AND d.id = (SELECT MAX(id) FROM decisions WHERE lead_id = d.lead_id)
              ORDER BY d.decided_at, d.id",
        )
        .bind(since.timestamp_millis())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let record: String = r.get("record");
                // An INTEGER on SQLite, a BOOLEAN on PostgreSQL: sqlx reads both as bool.
                let converted: Option<bool> = r.get("converted");
                serde_json::from_str(&record).ok().map(|v| (v, converted))
            })
            .collect())
    }
}
