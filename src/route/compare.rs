//! `leadgate simulate FILE --compare OTHER_ROUTING.toml`: the same leads routed by the
//! current rules and by another routing file — how many would change route, and where to.
//!
//! A route's destination is what a RevOps admin would call "where the lead went": a pool, a
//! named owner (or the account owner), a sequence, review, or disqualified. Which member of a
//! pool took a lead is rotation, not routing, so it does not count as a change.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::lead::{Decision, RouteAction};

/// What changed between two routings of the same leads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub leads: usize,
    /// Leads whose destination differs.
    pub changed: usize,
    /// Leads matched by a different rule that still end up in the same place.
    pub same_destination_other_rule: usize,
    /// (from destination, to destination) → leads.
    pub moves: BTreeMap<(String, String), usize>,
    /// (from rule, to rule) → leads, for every lead whose rule changed.
    pub rule_moves: BTreeMap<(String, String), usize>,
    /// Leads per rule under the other routing.
    pub other_per_rule: BTreeMap<String, usize>,
    /// Rules of the other routing that no lead matched.
    pub other_dead_rules: Vec<String>,
}

/// Where a decision sent the lead: `pool enterprise-ae`, `owner 41629779`,
/// `sequence mid-funnel`, `review`, `disqualify`.
pub fn destination(d: &Decision) -> String {
    let r = &d.route;
    match r.action {
        RouteAction::Assign => match (&r.pool, &r.owner) {
            (Some(p), _) => format!("pool {p}"),
            (None, Some(o)) => format!("owner {o}"),
            (None, None) => "assign (nobody)".into(),
        },
        RouteAction::Enroll => format!("sequence {}", r.sequence.as_deref().unwrap_or("?")),
        RouteAction::Review => "review".into(),
        RouteAction::Disqualify => "disqualify".into(),
    }
}

/// Compares decisions for the same leads, in the same order.
pub fn compare(current: &[Decision], other: &[Decision], other_rules: &[String]) -> Comparison {
    let mut c = Comparison {
        leads: current.len().min(other.len()),
        ..Comparison::default()
    };
    for (a, b) in current.iter().zip(other) {
        *c.other_per_rule.entry(b.route.rule.clone()).or_default() += 1;
        let (from, to) = (destination(a), destination(b));
        if from != to {
            c.changed += 1;
            *c.moves.entry((from, to)).or_default() += 1;
        } else if a.route.rule != b.route.rule {
            c.same_destination_other_rule += 1;
        }
        if a.route.rule != b.route.rule {
            *c.rule_moves
                .entry((a.route.rule.clone(), b.route.rule.clone()))
                .or_default() += 1;
        }
    }
    c.other_dead_rules = other_rules
        .iter()
        .filter(|r| !c.other_per_rule.contains_key(*r))
        .cloned()
        .collect();
    c
}

/// The comparison as the CLI prints it, largest moves first.
pub fn render(c: &Comparison, other_name: &str) -> String {
    let mut t = String::new();
    let pct = if c.leads == 0 {
        0.0
    } else {
        100.0 * c.changed as f64 / c.leads as f64
    };
    let _ = writeln!(
        t,
        "\nCompared with {other_name}: {} of {} leads would change route ({pct:.1}%)",
        c.changed, c.leads
    );
    if c.same_destination_other_rule > 0 {
        let _ = writeln!(
            t,
            "  {} more would match a different rule but end up in the same place",
            c.same_destination_other_rule
        );
    }
    let mut moves: Vec<_> = c.moves.iter().collect();
    moves.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !moves.is_empty() {
        let width = moves
            .iter()
            .map(|((f, _), _)| f.chars().count())
            .max()
            .unwrap_or(10);
        let _ = writeln!(t, "\nWhere they would go (from → to)");
        for ((from, to), n) in moves {
            let _ = writeln!(t, "  {from:<width$} → {to:<28} {n:>6}");
        }
    }
    let mut rules: Vec<_> = c.rule_moves.iter().collect();
    rules.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if !rules.is_empty() {
        let _ = writeln!(t, "\nMatched rule (current → {other_name})");
        for ((from, to), n) in rules {
            let _ = writeln!(t, "  {from} → {to}: {n}");
        }
    }
    if !c.other_dead_rules.is_empty() {
        let _ = writeln!(
            t,
            "\nDead rules in {other_name} (never matched): {}",
            c.other_dead_rules.join(", ")
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::{Enrichment, LeadStatus, Route};

    fn decision(
        rule: &str,
        action: RouteAction,
        pool: Option<&str>,
        owner: Option<&str>,
        sequence: Option<&str>,
    ) -> Decision {
        let lead = crate::normalize::Normalizer::default()
            .normalize(&crate::lead::RawLead(
                serde_json::json!({"email": "a@acme.io"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ))
            .expect("a valid lead");
        Decision {
            id: String::new(),
            external_id: None,
            email: None,
            status: LeadStatus::Done,
            lead,
            enrichment: Enrichment::default(),
            score: 0,
            grade: "cold".into(),
            factors: Default::default(),
            scores: Default::default(),
            route: Route {
                rule: rule.into(),
                action,
                pool: pool.map(String::from),
                owner: owner.map(String::from),
                sequence: sequence.map(String::from),
                connector: None,
                reason: String::new(),
                not_matched: vec![],
                skipped_members: vec![],
                not_matched_why: vec![],
                sla: None,
                sla_due_at: None,
                territories: vec![],
                account: None,
                previous_owner: None,
                sla_step: None,
            },
            delivery: vec![],
            decided_at: chrono::Utc::now(),
            rescore: None,
        }
    }

    #[test]
    fn counts_moves_between_destinations_but_not_rotation() {
        let current = vec![
            decision("hot", RouteAction::Assign, Some("ae"), Some("1"), None),
            decision("hot", RouteAction::Assign, Some("ae"), Some("2"), None),
            decision("warm", RouteAction::Enroll, None, None, Some("mid")),
            decision(
                "fallback",
                RouteAction::Enroll,
                None,
                None,
                Some("awareness"),
            ),
        ];
        let other = vec![
            decision("hot", RouteAction::Assign, Some("ae"), Some("3"), None),
            decision("west", RouteAction::Assign, Some("west"), Some("9"), None),
            decision("warm-sdr", RouteAction::Enroll, None, None, Some("mid")),
            decision("fallback", RouteAction::Review, None, None, None),
        ];
        let c = compare(
            &current,
            &other,
            &[
                "hot".into(),
                "west".into(),
                "warm-sdr".into(),
                "never".into(),
            ],
        );
        assert_eq!(c.leads, 4);
        assert_eq!(c.changed, 2);
        assert_eq!(c.same_destination_other_rule, 1);
        assert_eq!(
            c.moves[&("pool ae".to_string(), "pool west".to_string())],
            1
        );
        assert_eq!(
            c.moves[&("sequence awareness".to_string(), "review".to_string())],
            1
        );
        assert_eq!(c.other_dead_rules, ["never"]);
        let text = render(&c, "other.toml");
        assert!(
            text.contains("2 of 4 leads would change route (50.0%)"),
            "{text}"
        );
    }
}
