//! What the re-scoring sweep (src/rescore, issue 25) asks of a scorer: whether a stored
//! score can move with time alone.

use super::Scorer;
use crate::lead::Event;

impl Scorer {
    /// Whether any event rule fades (has a `half_life`): without one, time alone moves no
    /// score and only new events or a rules change need a re-score.
    pub fn any_decay(&self) -> bool {
        self.events.iter().any(|e| e.half_life.is_some())
    }

    /// Whether any event rule exists: a person's new events can then move their score.
    pub fn has_event_rules(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether `events` hold one that a fading rule scores: such a person's score moves with
    /// time and is looked at every pass; others wait for an event or a rules change.
    pub fn fades(&self, events: &[Event]) -> bool {
        events.iter().any(|ev| {
            self.events_of_type(&ev.kind)
                .is_some_and(|rules| rules.iter().any(|r| self.events[*r].half_life.is_some()))
        })
    }
}
