//! Picks tied to jobs: a job routed a second time (its worker died between the pick and the
//! decision, and the lease brought the job back) gets the member it got the first time, and
//! the rotation and the owner's daily count move once per job. Both backends keep the picks
//! in `job_picks`; this file holds what they share.

use crate::lead::SkipKind;
use crate::route::{AssignRequest, Choice};

/// The `pool` key of an assignment made without a pool (a named owner, the account owner).
/// A pool with this very id would share the row with those assignments, for its own job
/// only: the worst case is one uncounted assignment.
pub const OWNER_PICK: &str = "(owner)";

/// A stored pick, as written by the first attempt.
pub struct StoredPick {
    pub owner: String,
    pub position: i64,
    pub assigned_today: i64,
    pub skipped: String,
}

/// The members a pick passed over, as stored: `[[index, kind, reason], ...]`.
pub fn skipped_json(choice: &Choice) -> String {
    serde_json::to_string(&choice.skipped).unwrap_or_else(|_| "[]".into())
}

/// The stored pick as a [`Choice`] for `req`, or `None` when its member is no longer in the
/// pool (the config changed between the attempts): then the job picks anew.
pub fn job_pick(req: &AssignRequest, stored: StoredPick) -> Option<Choice> {
    let chosen = req.members.iter().position(|m| m.owner == stored.owner)?;
    let skipped: Vec<(usize, SkipKind, String)> =
        serde_json::from_str(&stored.skipped).unwrap_or_default();
    Some(Choice {
        chosen: Some(chosen),
        position: stored.position.max(0) as u64,
        assigned_today: u32::try_from(stored.assigned_today.max(0)).unwrap_or(u32::MAX),
        skipped: skipped
            .into_iter()
            .filter(|(i, _, _)| *i < req.members.len())
            .collect(),
    })
}
