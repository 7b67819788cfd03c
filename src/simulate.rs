//! `leadgate simulate FILE`: the current rules over past leads, delivering nothing and
//! changing no rotation state — counts per rule, owner, sequence and grade, the leads only
//! the fallback caught, and rules that never matched.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::batch::Summary;
use crate::route::FALLBACK;

#[derive(Debug, Default)]
pub struct Simulation {
    pub leads: usize,
    pub per_rule: BTreeMap<String, usize>,
    pub per_owner: BTreeMap<String, usize>,
    pub per_sequence: BTreeMap<String, usize>,
    pub per_grade: BTreeMap<String, usize>,
    pub fallback: usize,
    pub dead_rules: Vec<String>,
}

pub fn simulate(summary: &Summary, rule_ids: &[String]) -> Simulation {
    let mut s = Simulation {
        leads: summary.decisions.len(),
        ..Default::default()
    };
    for d in &summary.decisions {
        *s.per_rule.entry(d.route.rule.clone()).or_default() += 1;
        if let Some(o) = &d.route.owner {
            *s.per_owner.entry(o.clone()).or_default() += 1;
        }
        if let Some(q) = &d.route.sequence {
            *s.per_sequence.entry(q.clone()).or_default() += 1;
        }
        *s.per_grade.entry(d.grade.clone()).or_default() += 1;
        if d.route.rule == FALLBACK {
            s.fallback += 1;
        }
    }
    s.dead_rules = rule_ids.iter().filter(|r| !s.per_rule.contains_key(*r)).cloned().collect();
    s
}

pub fn render(s: &Simulation, rule_ids: &[String]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "Simulated {} leads (dry run: nothing delivered, no rotation changed)", s.leads);
    let _ = writeln!(t, "\nPer rule (in order)");
    for r in rule_ids.iter().chain(std::iter::once(&FALLBACK.to_string())) {
        let n = s.per_rule.get(r).copied().unwrap_or(0);
        let mark = if n == 0 && r != FALLBACK { "   ← never matched" } else { "" };
        let _ = writeln!(t, "  {r:<28} {n:>6}{mark}");
    }
    for (title, map) in [("Per owner", &s.per_owner), ("Per sequence", &s.per_sequence), ("Per grade", &s.per_grade)] {
        let _ = writeln!(t, "\n{title}");
        for (k, n) in map {
            let _ = writeln!(t, "  {k:<28} {n:>6}");
        }
    }
    let _ = writeln!(t, "\nCaught only by the fallback: {}", s.fallback);
    if !s.dead_rules.is_empty() {
        let _ = writeln!(t, "Dead rules (never matched): {}", s.dead_rules.join(", "));
    }
    t
}
