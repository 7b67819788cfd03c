//! Where routing state lives: each pool's rotation position, each owner's assignments per
//! day, and members paused at run time. In the store for live routing (atomic, shared by
//! concurrent workers, kept across restarts); in memory for dry runs and simulations, which
//! start from a snapshot of the store and never write it back.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::pools::{choose, AssignRequest, Choice};
use crate::store::StoreError;

/// Hands out pool members and counts assignments. Every call of [`Assignments::assign`] is
/// one atomic step: read the position, the counts and the pauses, [`choose`], record the
/// pick — so two leads never get the same slot and counts stay exact.
pub trait Assignments: Send + Sync {
    /// Chooses a member for one lead and records the pick (when there is one).
    fn assign<'a>(&'a self, req: &'a AssignRequest) -> BoxFuture<'a, Result<Choice, StoreError>>;

    /// Counts an assignment made without a pool (a named owner, the account owner) toward
    /// the owner's day, so `load_balanced` and capacities see it.
    fn count<'a>(&'a self, owner: &'a str, day: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether working hours and dates off apply (a simulation over past leads turns them
    /// off: those leads arrived at many different times).
    fn applies_calendar(&self) -> bool {
        true
    }
}

/// A bare rotation counter: each call hands out the pool's next slot. Kept for stores that
/// have not yet implemented [`Assignments`]; routing itself goes through [`Assignments`],
/// which also enforces capacities and keeps the daily counts.
pub trait Rotation: Send + Sync {
    fn next_slot<'a>(&'a self, pool: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;
}

/// Read from the store, which owns it (issue 27: the store imports no stage).
pub use crate::store::AssignmentSnapshot;

/// Live routing: each slot is one atomic upsert in the store, exact across replicas.
impl Rotation for crate::store::Store {
    fn next_slot<'a>(&'a self, pool: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.next_rotation_slot(pool))
    }
}

/// What an in-memory run changed, for `leadgate run` to save with its decisions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignmentDelta {
    /// The pools' positions after the run.
    pub positions: HashMap<String, u64>,
    /// (owner, day) → assignments added by the run.
    pub counts: HashMap<(String, String), u32>,
}

#[derive(Debug, Default)]
struct LocalState {
    snapshot: AssignmentSnapshot,
    delta: AssignmentDelta,
}

/// Assignments in memory: dry runs, simulations, and `leadgate run` (which saves the
/// [`AssignmentDelta`] with each chunk of decisions).
#[derive(Debug)]
pub struct LocalAssignments {
    state: Mutex<LocalState>,
    /// Enforce `capacity_per_day` (off in a simulation over past leads).
    capacity: bool,
    calendar: bool,
}

impl Default for LocalAssignments {
    fn default() -> Self {
        Self::from_snapshot(AssignmentSnapshot::default())
    }
}

/// The former name of [`LocalAssignments`].
pub type LocalRotation = LocalAssignments;

impl LocalAssignments {
    /// Starts from the store's state as it is now: what a dry run of one lead sees.
    pub fn from_snapshot(snapshot: AssignmentSnapshot) -> Self {
        Self {
            state: Mutex::new(LocalState {
                snapshot,
                delta: AssignmentDelta::default(),
            }),
            capacity: true,
            calendar: true,
        }
    }

    /// Starts from rotation positions only.
    pub fn starting_at(positions: HashMap<String, u64>) -> Self {
        Self::from_snapshot(AssignmentSnapshot {
            positions,
            ..AssignmentSnapshot::default()
        })
    }

    /// A simulation over past leads: rotations start at the beginning, and capacities,
    /// working hours and dates off do not apply (the leads arrived over many days and hours);
    /// `available = false` and `paused = true` in the config still do.
    pub fn simulation() -> Self {
        Self {
            capacity: false,
            calendar: false,
            ..Self::default()
        }
    }

    /// Same as [`LocalAssignments::simulation`] but with the calendar and capacities
    /// applied, as if every lead arrived at one moment.
    pub fn simulation_at_one_moment() -> Self {
        Self::default()
    }

    pub fn positions(&self) -> HashMap<String, u64> {
        self.state
            .lock()
            .map(|s| s.snapshot.positions.clone())
            .unwrap_or_default()
    }

    /// An owner's count for a day, as this run sees it.
    pub fn count_of(&self, owner: &str, day: &str) -> u32 {
        self.state
            .lock()
            .map(|s| {
                s.snapshot
                    .counts
                    .get(&(owner.to_string(), day.to_string()))
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Takes what changed since the last call (positions are absolute, counts are added).
    pub fn take_delta(&self) -> AssignmentDelta {
        self.state
            .lock()
            .map(|mut s| std::mem::take(&mut s.delta))
            .unwrap_or_default()
    }
}

impl Assignments for LocalAssignments {
    fn assign<'a>(&'a self, req: &'a AssignRequest) -> BoxFuture<'a, Result<Choice, StoreError>> {
        let result = match self.state.lock() {
            Ok(mut s) => {
                let position = s.snapshot.positions.get(&req.pool).copied().unwrap_or(0);
                let counts: Vec<u32> = req
                    .members
                    .iter()
                    .map(|m| {
                        s.snapshot
                            .counts
                            .get(&(m.owner.clone(), m.day.clone()))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect();
                let paused: Vec<bool> = req
                    .members
                    .iter()
                    .map(|m| {
                        s.snapshot
                            .paused
                            .contains(&(req.pool.clone(), m.owner.clone()))
                            || s.snapshot
                                .paused
                                .contains(&("*".to_string(), m.owner.clone()))
                    })
                    .collect();
                let mut req_view;
                let req = if self.capacity {
                    req
                } else {
                    req_view = req.clone();
                    req_view.members.iter_mut().for_each(|m| m.capacity = None);
                    &req_view
                };
                let choice = choose(req, position, &counts, &paused);
                if let Some(i) = choice.chosen {
                    let key = (req.members[i].owner.clone(), req.members[i].day.clone());
                    s.snapshot
                        .positions
                        .insert(req.pool.clone(), choice.position);
                    s.delta.positions.insert(req.pool.clone(), choice.position);
                    *s.snapshot.counts.entry(key.clone()).or_default() += 1;
                    *s.delta.counts.entry(key).or_default() += 1;
                }
                Ok(choice)
            }
            Err(_) => Err(StoreError::Corrupt(
                "the in-memory routing state was poisoned by an earlier panic".into(),
            )),
        };
        Box::pin(std::future::ready(result))
    }

    fn count<'a>(&'a self, owner: &'a str, day: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Ok(mut s) = self.state.lock() {
            let key = (owner.to_string(), day.to_string());
            *s.snapshot.counts.entry(key.clone()).or_default() += 1;
            *s.delta.counts.entry(key).or_default() += 1;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn applies_calendar(&self) -> bool {
        self.calendar
    }
}
