//! Human overrides: a person sets a lead's grade and/or route; the override wins over every
//! later automatic decision of that lead until it is cleared (the worker applies it before
//! delivery, [`apply`]).

use crate::lead::{Decision, RouteAction};
use crate::store::console::OverrideRecord;

/// Where an override sends the lead, written `assign:OWNER`, `enroll:SEQUENCE`, `review`
/// or `disqualify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOverride {
    Assign(String),
    Enroll(String),
    Review,
    Disqualify,
}

impl RouteOverride {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("route `{s}` is not one of assign:OWNER, enroll:SEQUENCE, review, disqualify")
        };
        match s.split_once(':') {
            Some(("assign", owner)) if !owner.trim().is_empty() => {
                Ok(Self::Assign(owner.trim().into()))
            }
            Some(("enroll", seq)) if !seq.trim().is_empty() => Ok(Self::Enroll(seq.trim().into())),
            None if s == "review" => Ok(Self::Review),
            None if s == "disqualify" => Ok(Self::Disqualify),
            _ => Err(bad()),
        }
    }
}

/// The rule name an overridden decision carries, so the list and `explain` show it.
pub const OVERRIDE_RULE: &str = "override";

/// Applies an override in force to an automatic decision.
pub fn apply(decision: &mut Decision, o: &OverrideRecord) {
    if let Some(grade) = &o.grade {
        decision.grade = grade.clone();
    }
    if let Some(route) = o
        .route
        .as_deref()
        .and_then(|r| RouteOverride::parse(r).ok())
    {
        let r = &mut decision.route;
        r.pool = None;
        r.owner = None;
        r.sequence = None;
        r.action = match route {
            RouteOverride::Assign(owner) => {
                r.owner = Some(owner);
                RouteAction::Assign
            }
            RouteOverride::Enroll(seq) => {
                r.sequence = Some(seq);
                RouteAction::Enroll
            }
            RouteOverride::Review => RouteAction::Review,
            RouteOverride::Disqualify => RouteAction::Disqualify,
        };
        r.rule = OVERRIDE_RULE.into();
    }
    let by = &o.by;
    decision.route.reason = format!(
        "human override by {by}: {} (automatic: {})",
        o.reason, decision.route.reason
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_bad_ones_say_what_is_allowed() {
        assert_eq!(
            RouteOverride::parse("assign:41629779"),
            Ok(RouteOverride::Assign("41629779".into()))
        );
        assert_eq!(RouteOverride::parse("review"), Ok(RouteOverride::Review));
        assert!(RouteOverride::parse("assign:")
            .unwrap_err()
            .contains("assign:OWNER"));
        assert!(RouteOverride::parse("teleport").is_err());
    }
}
