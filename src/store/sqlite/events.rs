//! Per-person event history on SQLite (migration 0016, issue 25).

use super::group_commit::{EventRow, Person};
use super::{LeadRef, Store};
use crate::events::{key_and_body, Kept};
use crate::lead::Event;
use crate::store::StoreError;

fn rows(events: &[Event]) -> Result<Vec<EventRow>, StoreError> {
    events
        .iter()
        .map(|e| {
            let (key, body) = key_and_body(e).map_err(|x| StoreError::Corrupt(x.to_string()))?;
            Ok(EventRow {
                key,
                kind: e.kind.clone(),
                at_ms: e.at.timestamp_millis(),
                body,
            })
        })
        .collect()
}

impl Store {
    /// Keeps `events` in the history of lead `lead_id`; a replayed event (same id, or same
    /// type, time and keys) is kept once. Returns how many were new. Written in the group
    /// commit's next batch, with the arrivals and appends beside it.
    pub async fn append_events(&self, lead_id: &str, events: &[Event]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let kept = self
            .group_commit
            .append_events(Person::Known(lead_id.to_string()), rows(events)?, None)
            .await?;
        Ok(kept.map_or(0, |k| k.added))
    }

    /// Keeps `events` in the history of the lead `who` names (`POST /v1/events`,
    /// `POST /v1/leads/{id}/events`): found, refused if erased, and written in one group
    /// commit batch, answered once on disk. `None` when no lead is known as `who`;
    /// `StoreError::Suppressed` when `who` is an erased person's email.
    pub async fn keep_events(
        &self,
        who: &LeadRef,
        events: &[Event],
    ) -> Result<Option<Kept>, StoreError> {
        let rows = rows(events)?;
        let (person, suppression) = match who {
            LeadRef::Id(id) => (Person::Id(id.clone()), None),
            LeadRef::Email(email) => (
                Person::Email(email.clone()),
                Some(self.suppression_key().await?.digests(email)),
            ),
            // Not a route's: looked up first, as before.
            LeadRef::ExternalId(_) => match self.find_lead(who).await? {
                Some(id) => (Person::Known(id), None),
                None => return Ok(None),
            },
        };
        self.group_commit
            .append_events(person, rows, suppression)
            .await
    }
}
