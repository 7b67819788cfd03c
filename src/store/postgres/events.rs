//! Per-person event history on PostgreSQL (migration 0016, issue 25).

use super::{now_ms, PgStore as Store};
use crate::lead::Event;
use crate::store::StoreError;

impl Store {
    /// Keeps `events` in the history of lead `lead_id`; a replayed event (same id, or same
    /// type, time and keys) is kept once. Returns how many were new.
    pub async fn append_events(&self, lead_id: &str, events: &[Event]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        let now = now_ms();
        for e in events {
            let (key, body) =
                crate::events::key_and_body(e).map_err(|x| StoreError::Corrupt(x.to_string()))?;
            added += sqlx::query(
                "INSERT INTO person_events (lead_id, event_key, kind, at_ms, body, stored_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(lead_id)
            .bind(key)
            .bind(&e.kind)
            .bind(e.at.timestamp_millis())
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Keeps `events` in the history of the lead `who` names, as the SQLite store does:
    /// `None` when no lead is known as `who`, `StoreError::Suppressed` for an erased
    /// person's email. A request's own transaction: PostgreSQL commits concurrent
    /// transactions together already (one WAL flush for the commits waiting on it).
    pub async fn keep_events(
        &self,
        who: &crate::store::LeadRef,
        events: &[Event],
    ) -> Result<Option<crate::events::Kept>, StoreError> {
        if let crate::store::LeadRef::Email(email) = who {
            if self.is_suppressed(email).await? {
                return Err(StoreError::Suppressed);
            }
        }
        let Some(lead_id) = self.find_lead(who).await? else {
            return Ok(None);
        };
        let added = self.append_events(&lead_id, events).await?;
        Ok(Some(crate::events::Kept { lead_id, added }))
    }
}
