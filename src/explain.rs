//! Readable explanations of a decision, for `leadgate explain` and sales reps asking "why".

use std::fmt::Write;

use crate::lead::{Decision, ProviderOutcome};

/// A score's factors, largest first, with the values that matched, and their sum.
fn render_factors(t: &mut String, factors: &[crate::lead::Factor], score: i64) {
    if factors.is_empty() {
        let _ = writeln!(t, "  no scoring rule matched");
        return;
    }
    for f in factors {
        let matched: Vec<String> = f
            .matched
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        let matched = if matched.is_empty() {
            String::new()
        } else {
            format!("   ({})", matched.join(", "))
        };
        let _ = writeln!(
            t,
            "  {:>+7.2}  {:<28} [{}]{matched}",
            f.points, f.rule, f.dimension
        );
        if let Some(why) = &f.description {
            let _ = writeln!(t, "           {why}");
        }
    }
    let sum: f64 = factors.iter().map(|f| f.points).sum();
    let _ = writeln!(t, "  {:>7.2}  = {score} after rounding", sum);
}

pub fn render(d: &Decision) -> String {
    let mut t = String::new();
    let who = d
        .email
        .clone()
        .or_else(|| d.lead.domain.clone())
        .unwrap_or_default();
    let _ = writeln!(t, "Lead {who}");
    if let Some(c) = &d.lead.company {
        let _ = writeln!(t, "  company given: {c}");
    }
    let _ = writeln!(
        t,
        "  domain: {}",
        d.lead.domain.as_deref().unwrap_or("(none)")
    );
    if d.lead.email_info.is_free {
        let _ = writeln!(t, "  free-mail address");
    }
    if d.lead.email_info.is_disposable {
        let _ = writeln!(t, "  disposable address");
    }

    let _ = writeln!(t, "\nEnrichment");
    for p in &d.enrichment.providers {
        let outcome = match p.outcome {
            ProviderOutcome::Hit => "hit",
            ProviderOutcome::NotFound => "not found",
            ProviderOutcome::Pending => "pending",
            ProviderOutcome::Skipped => "skipped",
            ProviderOutcome::Error => "error",
        };
        let reason = p
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        let cached = if p.cached { " [cached]" } else { "" };
        let _ = writeln!(t, "  {:<14} {outcome}{reason}{cached}", p.provider);
    }
    for (field, v) in &d.enrichment.fields {
        let conf = v
            .confidence
            .map(|c| format!(", confidence {c:.2}"))
            .unwrap_or_default();
        let _ = writeln!(t, "  {field:<24} {}   ← {}{conf}", v.value, v.provider);
    }

    let _ = writeln!(t, "\nScore {} ({})", d.score, d.grade);
    render_factors(&mut t, &d.factors, d.score);
    // The named scores other than the primary one (whose factors are above).
    for (id, card) in d
        .scores
        .iter()
        .filter(|(_, c)| !(c.score == d.score && c.factors == d.factors))
    {
        let _ = writeln!(t, "\nScore `{id}`: {} ({})", card.score, card.grade);
        render_factors(&mut t, &card.factors, card.score);
    }

    let r = &d.route;
    let _ = writeln!(t, "\nRoute: rule `{}`", r.rule);
    let _ = writeln!(t, "  {}", r.reason);
    if !r.not_matched.is_empty() {
        let _ = writeln!(
            t,
            "  rules before it that did not match: {}",
            r.not_matched.join(", ")
        );
    }
    for s in &r.skipped_members {
        let _ = writeln!(t, "  skipped {}: {}", s.owner, s.reason);
    }
    for m in &r.not_matched_why {
        let _ = writeln!(t, "  rule `{}` did not match: {}", m.rule, m.why);
    }
    if !r.territories.is_empty() {
        let _ = writeln!(t, "  territories: {}", r.territories.join(", "));
    }
    if let Some(a) = &r.account {
        let _ = writeln!(
            t,
            "  account: {} ({})",
            a["name"].as_str().unwrap_or("?"),
            a["id"].as_str().unwrap_or("?")
        );
    }
    if let (Some(sla), Some(due)) = (&r.sla, &r.sla_due_at) {
        let _ = writeln!(
            t,
            "  SLA {sla}: the owner must touch the lead by {}",
            due.to_rfc3339()
        );
    }
    t
}
