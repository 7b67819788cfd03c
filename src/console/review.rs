//! Resolving a review item: the person's choice becomes the lead's decision, delivered by
//! the worker through the outbox as any routed lead is (see `Store::resolve_review`).

use chrono::{DateTime, Utc};

use crate::lead::{Decision, LeadStatus, RouteAction};
use crate::store::{Job, Store};

/// What the reviewer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveAction {
    Assign { owner: String },
    Enroll { sequence: String },
    Disqualify,
}

impl ResolveAction {
    pub fn name(&self) -> &'static str {
        match self {
            ResolveAction::Assign { .. } => "assign",
            ResolveAction::Enroll { .. } => "enroll",
            ResolveAction::Disqualify => "disqualify",
        }
    }

    /// From the request's `action` with its `owner` or `sequence`.
    pub fn parse(
        action: &str,
        owner: Option<&str>,
        sequence: Option<&str>,
    ) -> Result<Self, (&'static str, String)> {
        fn given(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        match action {
            "assign" => given(owner)
                .map(|o| ResolveAction::Assign { owner: o.into() })
                .ok_or((
                    "owner",
                    "action `assign` needs an `owner` (the CRM owner id)".into(),
                )),
            "enroll" => given(sequence)
                .map(|s| ResolveAction::Enroll { sequence: s.into() })
                .ok_or(("sequence", "action `enroll` needs a `sequence`".into())),
            "disqualify" => Ok(ResolveAction::Disqualify),
            other => Err((
                "action",
                format!("action `{other}` is not one of assign, enroll, disqualify"),
            )),
        }
    }
}

/// The decision a resolution delivers: the reviewed decision with the reviewer's route.
pub fn resolved_decision(
    reviewed: &str,
    action: &ResolveAction,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Decision, String> {
    let mut d: Decision = serde_json::from_str(reviewed)
        .map_err(|e| format!("the reviewed decision is unreadable: {e}"))?;
    d.status = LeadStatus::Done;
    d.decided_at = now;
    d.delivery.clear();
    let r = &mut d.route;
    r.pool = None;
    r.owner = None;
    r.sequence = None;
    r.action = match action {
        ResolveAction::Assign { owner } => {
            r.owner = Some(owner.clone());
            RouteAction::Assign
        }
        ResolveAction::Enroll { sequence } => {
            r.sequence = Some(sequence.clone());
            RouteAction::Enroll
        }
        ResolveAction::Disqualify => RouteAction::Disqualify,
    };
    r.reason = format!(
        "review resolved by {by}: {reason} (was: {})",
        std::mem::take(&mut r.reason)
    );
    Ok(d)
}

/// The decision a resolution stored for this job, which the worker delivers instead of
/// deciding again. The CRM delivery resumes such rows itself ([`crate::crm::Crm::resume`]);
/// this is the same read for a daemon without `[delivery]`.
pub async fn preset_decision(store: &Store, job: &Job) -> Option<Decision> {
    let entry = store
        .outbox_get(&format!("job:{}:decision", job.id))
        .await
        .ok()??;
    serde_json::from_str(entry.decision.as_deref()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_needs_its_target_and_unknown_actions_are_named() {
        assert_eq!(
            ResolveAction::parse("assign", Some("77"), None),
            Ok(ResolveAction::Assign { owner: "77".into() })
        );
        assert_eq!(
            ResolveAction::parse("assign", None, None).unwrap_err().0,
            "owner"
        );
        assert_eq!(
            ResolveAction::parse("enroll", Some("x"), None)
                .unwrap_err()
                .0,
            "sequence"
        );
        assert_eq!(
            ResolveAction::parse("archive", None, None).unwrap_err().0,
            "action"
        );
    }
}
