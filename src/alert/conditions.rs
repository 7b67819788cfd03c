//! When an alert's condition holds: a lead's grade becoming the hot grade, a `when` on the
//! lead, delivery failures passing a rate within a window, a provider's circuit or budget
//! turning from fine to open or spent. Also the key each alert is deduplicated on.
//!
//! Must not: send, or touch the store (the dispatcher does).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio::time::Instant;

use super::config::{AlertKind, AlertRule};
use super::GradeChange;
use crate::enrich::report::ConnectorReport;
use crate::lead::{Decision, EnrichedLead};
use crate::resilience::breaker::CircuitState;
use crate::rules::RuleContext;

/// Whether `change` makes `rule` (a `lead_hot` alert) hold, its `when` aside: the lead's
/// grade becomes the hot grade from a different grade or none.
pub fn becomes_hot(rule: &AlertRule, change: &GradeChange) -> bool {
    rule.kind == AlertKind::LeadHot
        && change.grade == rule.hot_grade
        && change.previous_grade.as_deref() != Some(rule.hot_grade.as_str())
}

/// Whether the alert's `when` holds for the lead: no `when` always does; a field the lead
/// lacks, or an evaluation error, does not.
pub fn when_holds(rule: &AlertRule, ctx: Option<&RuleContext>) -> bool {
    match (&rule.when, ctx) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(cond), Some(ctx)) => cond.eval(ctx).matched(),
    }
}

/// The variables a lead alert's `when` sees: the decision's lead, enrichment and account as
/// routing rules do, plus `score`, `grade`, `previous.grade` and `route`. Without a decision
/// (a sweep's grade change) only the last four are set.
pub fn lead_context(change: &GradeChange, decision: Option<&Decision>) -> RuleContext {
    let mut ctx = match decision {
        Some(d) => {
            let enriched = EnrichedLead {
                lead: d.lead.clone(),
                enrichment: d.enrichment.clone(),
            };
            let account = d.route.account.clone().unwrap_or_else(|| json!({}));
            let mut c = RuleContext::for_lead(&enriched, &account, Utc::now());
            c.set_json(
                "route",
                serde_json::to_value(&d.route).unwrap_or_else(|_| json!({})),
            );
            c
        }
        None => RuleContext::empty(),
    };
    ctx.set_json("score", json!(change.score));
    ctx.set_json("grade", json!(change.grade));
    ctx.set_json("previous", json!({ "grade": change.previous_grade }));
    ctx
}

/// Delivery failures seen within one alert's window, in this process.
#[derive(Debug, Default)]
pub struct FailureWindow {
    at: VecDeque<Instant>,
}

impl FailureWindow {
    /// Counts a failure at `now`; true when more than `rate` fell within `window`.
    pub fn record(&mut self, now: Instant, rate: u32, window: Duration) -> bool {
        self.at.push_back(now);
        while self
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            self.at.pop_front();
        }
        self.at.len() > rate as usize
    }
}

/// Something wrong with a provider that an alert watches.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTrouble {
    pub kind: AlertKind,
    pub provider: String,
    /// For people: what ran out, or that the circuit opened.
    pub detail: String,
}

/// What each provider looked like at the last look, to alert on the turn from fine to
/// troubled only (the dedupe window then keeps a flapping circuit to one message).
#[derive(Debug, Default)]
pub struct ProviderWatch {
    open: HashMap<String, bool>,
    spent: HashMap<String, bool>,
}

impl ProviderWatch {
    /// The troubles that began since the last look.
    pub fn observe(&mut self, reports: &[ConnectorReport]) -> Vec<ProviderTrouble> {
        let mut out = Vec::new();
        for r in reports.iter().filter(|r| r.status.configured) {
            let open = r.status.circuit == Some(CircuitState::Open);
            if open && !self.open.insert(r.id.clone(), true).unwrap_or(false) {
                out.push(ProviderTrouble {
                    kind: AlertKind::ProviderCircuitOpen,
                    provider: r.id.clone(),
                    detail: format!(
                        "the circuit breaker of {} opened after repeated failures: it is skipped until a trial call succeeds",
                        r.id
                    ),
                });
            } else if !open {
                self.open.insert(r.id.clone(), false);
            }
            let spent = spent(r);
            match spent {
                Some(detail) if !self.spent.insert(r.id.clone(), true).unwrap_or(false) => {
                    out.push(ProviderTrouble {
                        kind: AlertKind::ProviderBudgetExhausted,
                        provider: r.id.clone(),
                        detail,
                    });
                }
                Some(_) => {}
                None => {
                    self.spent.insert(r.id.clone(), false);
                }
            }
        }
        out
    }
}

/// Why a provider can make no more calls today, if it cannot.
fn spent(r: &ConnectorReport) -> Option<String> {
    let s = &r.status;
    if let Some(budget) = s.daily_budget {
        // The next call could not be paid for: what `Budget::reserve` refuses.
        let next = if r.cost_per_call > 0.0 {
            r.cost_per_call
        } else {
            f64::EPSILON
        };
        if s.credits_used_today + next > budget + f64::EPSILON {
            return Some(format!(
                "{} spent its daily credit budget ({} of {budget} credits); it is skipped until midnight UTC",
                r.id, s.credits_used_today
            ));
        }
    }
    if let Some(cap) = s.daily_cap {
        if s.requests_today >= u64::from(cap) {
            return Some(format!(
                "{} made its {cap} requests allowed today; it is skipped until midnight UTC",
                r.id
            ));
        }
    }
    s.parked_until.map(|until| {
        format!(
            "{} is out of quota: {} (until {})",
            r.id,
            s.parked_reason
                .as_deref()
                .unwrap_or("the vendor's quota is used up"),
            until.format("%Y-%m-%d %H:%M UTC")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::ProviderStatus;

    fn report(id: &str, status: ProviderStatus, cost: f64) -> ConnectorReport {
        ConnectorReport {
            id: id.into(),
            name: id.into(),
            kind: "enrichment".into(),
            manifest: None,
            waterfall_position: Some(1),
            cost_per_call: cost,
            status: ProviderStatus {
                id: id.into(),
                configured: true,
                ..status
            },
        }
    }

    #[test]
    fn more_than_rate_failures_within_the_window_hold_and_old_ones_fall_out() {
        let mut w = FailureWindow::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(60);
        assert!(!w.record(t0, 2, window));
        assert!(!w.record(t0 + Duration::from_secs(10), 2, window));
        assert!(w.record(t0 + Duration::from_secs(20), 2, window), "3 > 2");
        // Two minutes on, the earlier failures are outside the window.
        assert!(!w.record(t0 + Duration::from_secs(140), 2, window));
    }

    #[test]
    fn a_circuit_alerts_when_it_opens_not_while_it_stays_open() {
        let mut watch = ProviderWatch::default();
        let open = ProviderStatus {
            circuit: Some(CircuitState::Open),
            ..ProviderStatus::default()
        };
        let closed = ProviderStatus {
            circuit: Some(CircuitState::Closed),
            ..ProviderStatus::default()
        };
        assert!(watch
            .observe(&[report("clearbit", closed.clone(), 1.0)])
            .is_empty());
        let t = watch.observe(&[report("clearbit", open.clone(), 1.0)]);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].kind, AlertKind::ProviderCircuitOpen);
        assert_eq!(t[0].provider, "clearbit");
        assert!(watch
            .observe(&[report("clearbit", open.clone(), 1.0)])
            .is_empty());
        assert!(watch.observe(&[report("clearbit", closed, 1.0)]).is_empty());
        assert_eq!(
            watch.observe(&[report("clearbit", open, 1.0)]).len(),
            1,
            "opened again"
        );
    }

    #[test]
    fn a_spent_budget_or_daily_cap_alerts_once() {
        let mut watch = ProviderWatch::default();
        let budget = |used: f64| ProviderStatus {
            daily_budget: Some(10.0),
            credits_used_today: used,
            ..ProviderStatus::default()
        };
        assert!(watch.observe(&[report("pdl", budget(9.0), 1.0)]).is_empty());
        let t = watch.observe(&[report("pdl", budget(9.5), 1.0)]);
        assert_eq!(t.len(), 1, "the next call cannot be paid for");
        assert_eq!(t[0].kind, AlertKind::ProviderBudgetExhausted);
        assert!(
            t[0].detail.contains("daily credit budget"),
            "{}",
            t[0].detail
        );
        assert!(watch
            .observe(&[report("pdl", budget(10.0), 1.0)])
            .is_empty());
        let capped = ProviderStatus {
            daily_cap: Some(100),
            requests_today: 100,
            ..ProviderStatus::default()
        };
        let t = watch.observe(&[report("apollo", capped, 0.0)]);
        assert_eq!(t.len(), 1);
        assert!(t[0].detail.contains("100 requests"), "{}", t[0].detail);
        // Not configured providers are never reported.
        let mut off = report("hunter", ProviderStatus::default(), 1.0);
        off.status.configured = false;
        off.status.circuit = Some(CircuitState::Open);
        assert!(watch.observe(&[off]).is_empty());
    }

    #[test]
    fn hot_means_a_change_into_the_hot_grade() {
        let set = crate::alert::AlertSet::from_text(
            "alerts.toml",
            "[[alert]]\nname = \"a\"\non = \"lead_hot\"\ngrade = \"A\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
            &Default::default(),
        )
        .unwrap();
        let rule = &set.rules[0];
        let change = |prev: Option<&str>, grade: &str| GradeChange {
            lead_id: "l".into(),
            previous_grade: prev.map(str::to_string),
            grade: grade.into(),
            score: 90,
            factors: vec![],
        };
        assert!(becomes_hot(rule, &change(None, "A")));
        assert!(becomes_hot(rule, &change(Some("B"), "A")));
        assert!(!becomes_hot(rule, &change(Some("A"), "A")));
        assert!(
            !becomes_hot(rule, &change(None, "hot")),
            "the configured grade counts"
        );
    }

    #[test]
    fn a_when_reads_score_grade_and_previous_grade_without_a_decision() {
        let set = crate::alert::AlertSet::from_text(
            "alerts.toml",
            "[[alert]]\nname = \"a\"\non = \"lead_hot\"\nwhen = \"score >= 90 && previous.grade == 'warm'\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
            &Default::default(),
        )
        .unwrap();
        let rule = &set.rules[0];
        let change = GradeChange {
            lead_id: "l".into(),
            previous_grade: Some("warm".into()),
            grade: "hot".into(),
            score: 92,
            factors: vec![],
        };
        assert!(when_holds(rule, Some(&lead_context(&change, None))));
        let lower = GradeChange {
            score: 85,
            ..change.clone()
        };
        assert!(!when_holds(rule, Some(&lead_context(&lower, None))));
        let from_cold = GradeChange {
            previous_grade: Some("cold".into()),
            ..change
        };
        assert!(!when_holds(rule, Some(&lead_context(&from_cold, None))));
    }
}
