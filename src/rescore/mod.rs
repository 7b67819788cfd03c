//! Scores that live at rest (issue 25): a sweep in `leadgate serve` scores stored people
//! again when their score can have moved — events fading (decay), events that arrived since
//! their last decision, or a change of the scoring rules — and records each change as a
//! decision in the lead's history with its [`Cause`].
//!
//! Which people are due is kept by the store (migration 0021, `rescore_state`): a decision
//! makes its person due, a new event makes them due now, and the sweep claims a batch of
//! due people and moves them to its next pass in one statement, so replicas sharing a
//! PostgreSQL store never score the same person twice in one pass. Re-scoring reads the
//! stored enriched lead and the whole event history: no enrichment call is made.

pub mod config;
mod sweep;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::Digest;

pub use crate::lead::{Cause, Rescored};
pub use config::RescoreConfig;
pub use sweep::{mark_all, preview, render, run, sweep_once, SweepReport};

/// How often the sweep looks when `[rescore] every` is not set.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(15 * 60);
/// People scored per claim (and per write transaction) when `[rescore] batch` is not set.
pub const DEFAULT_BATCH: usize = 2000;
/// `due_at` of a person whose score cannot move with time: only an event or a rules change
/// makes them due again.
pub const NEVER: i64 = i64::MAX;

/// A grade that moved at rest: what "lead becomes hot" alerts and `[[trigger]]`s act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeChange {
    pub lead_id: String,
    pub previous_grade: String,
    pub grade: String,
    pub previous_score: i64,
    pub score: i64,
    pub cause: Cause,
}

#[derive(Debug, thiserror::Error)]
pub enum RescoreError {
    #[error("[rescore] every: `{0}` is not a duration such as 15m or 1h: {1}")]
    Every(String, String),
    #[error("[rescore] every must be at least 1s")]
    TooOften,
    #[error("[rescore] batch must be between 1 and 50000")]
    Batch,
    #[error("cannot read the scoring rules {path} for their digest: {reason}")]
    Rules { path: String, reason: String },
    #[error("{0}")]
    Triggers(crate::settings::ConfigErrors),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The sweep's settings, checked.
#[derive(Debug, Clone)]
pub struct RescorePolicy {
    pub enabled: bool,
    pub every: Duration,
    pub batch: usize,
    /// The digest of the scoring rules in force (see [`rules_digest`]).
    pub rules: String,
    /// routing.toml's `[[trigger]]`s.
    pub triggers: Arc<trigger::Triggers>,
}

impl RescorePolicy {
    /// From `[rescore]`, for `scorer` loaded from rules whose text digests to `rules`.
    pub fn build(
        c: &RescoreConfig,
        scorer: &crate::score::Scorer,
        rules: String,
    ) -> Result<Self, RescoreError> {
        let every = match &c.every {
            None => DEFAULT_EVERY,
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| RescoreError::Every(text.clone(), e.to_string()))?,
        };
        if every < Duration::from_secs(1) {
            return Err(RescoreError::TooOften);
        }
        let batch = c.batch.unwrap_or(DEFAULT_BATCH);
        if !(1..=50_000).contains(&batch) {
            return Err(RescoreError::Batch);
        }
        Ok(Self {
            enabled: c.enabled.unwrap_or(scorer.has_event_rules()),
            every,
            batch,
            rules,
            triggers: Arc::default(),
        })
    }

    /// From the settings: `[rescore]` and the digest of the scoring file they name.
    pub fn from_settings(
        settings: &crate::settings::Settings,
        scorer: &crate::score::Scorer,
    ) -> Result<Self, RescoreError> {
        let path = settings.resolve(&settings.config.scoring);
        let text = std::fs::read(&path).map_err(|e| RescoreError::Rules {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut policy = Self::build(&settings.config.rescore, scorer, rules_digest(&text))?;
        let sequences: Vec<String> = settings
            .config
            .delivery
            .sequence
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let triggers =
            trigger::Triggers::load(&settings.resolve(&settings.config.routing), &sequences)
                .map_err(RescoreError::Triggers)?;
        policy.triggers = Arc::new(triggers);
        Ok(policy)
    }
}

/// The digest of the scoring rules' text: a decision made with other rules is due again.
pub fn rules_digest(text: &[u8]) -> String {
    let digest = sha2::Sha256::digest(text);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A person the sweep claimed, as the store holds them.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub lead_id: String,
    /// The decision the person was last scored with (the latest one).
    pub decision_id: i64,
    /// The store's `pending` (see [`Cause::from_pending`]).
    pub pending: Option<String>,
    /// That decision's record, JSON; None when it is gone (erased meanwhile).
    pub record: Option<String>,
    /// The person's whole event history, oldest first.
    pub events: Vec<crate::lead::Event>,
}

/// What the sweep writes back for one claimed person.
#[derive(Debug, Clone)]
pub struct Settle {
    pub lead_id: String,
    /// The decision it re-scored: a newer one recorded meanwhile wins and nothing is written.
    pub decision_id: i64,
    /// When to look again (unix ms; [`NEVER`]).
    pub due_at: i64,
    /// The decision to record when the score or grade moved.
    pub decision: Option<crate::lead::Decision>,
    /// A trigger routed the lead again: its new assignment is recorded too (SLA, audit).
    pub rerouted: bool,
}

/// A trigger that fired for a person, once per (trigger, lead, decision).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fired {
    pub trigger: String,
    pub lead_id: String,
    /// The outbox key of the firing.
    pub effect: String,
}

/// The stored decisions made at rest, as `leadgate explain` lists them under the
/// evaluation: when, why, and from what to what. Empty when the score never moved at rest.
pub fn history_lines(history: &[serde_json::Value]) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    for d in history.iter().filter(|d| d.get("rescore").is_some()) {
        let r = &d["rescore"];
        if t.is_empty() {
            t.push_str("\nStored score moved at rest (re-scoring sweep):\n");
        }
        let _ = writeln!(
            t,
            "  {}  {}: {} ({}) → {} ({})",
            d["decided_at"].as_str().unwrap_or("-"),
            r["cause"].as_str().unwrap_or("-"),
            r["previous_score"],
            r["previous_grade"].as_str().unwrap_or("-"),
            d["score"],
            d["grade"].as_str().unwrap_or("-"),
        );
    }
    t
}
