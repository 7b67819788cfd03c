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
    s.dead_rules = rule_ids
        .iter()
        .filter(|r| !s.per_rule.contains_key(*r))
        .cloned()
        .collect();
    s
}

pub fn render(s: &Simulation, rule_ids: &[String]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Simulated {} leads (dry run: nothing delivered, no rotation changed)",
        s.leads
    );
    let _ = writeln!(t, "\nPer rule (in order)");
    for r in rule_ids
        .iter()
        .chain(std::iter::once(&FALLBACK.to_string()))
    {
        let n = s.per_rule.get(r).copied().unwrap_or(0);
        let mark = if n == 0 && r != FALLBACK {
            "   ← never matched"
        } else {
            ""
        };
        let _ = writeln!(t, "  {r:<28} {n:>6}{mark}");
    }
    for (title, map) in [
        ("Per owner", &s.per_owner),
        ("Per sequence", &s.per_sequence),
        ("Per grade", &s.per_grade),
    ] {
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

// ---------------------------------------------------------------------------------------
// Conversion by score band and grade (the scoring half of simulate): does a higher score
// mean a likelier sale? Flags a band or grade that converts worse than a lower one.
// ---------------------------------------------------------------------------------------

/// A band or grade with fewer leads than this is shown but never flagged: a handful of
/// leads converting by chance says nothing about the score.
pub const MIN_LEADS_TO_FLAG: usize = 10;

/// One row of the conversion table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConversionRow {
    pub label: String,
    pub leads: usize,
    pub converted: usize,
}

impl ConversionRow {
    pub fn rate(&self) -> f64 {
        if self.leads == 0 {
            0.0
        } else {
            self.converted as f64 / self.leads as f64
        }
    }
}

/// Conversion per score band and per grade, for the primary score and each named score.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConversionReport {
    pub outcome: String,
    pub leads: usize,
    pub converted: usize,
    /// Leads without a readable outcome (left out).
    pub unknown: usize,
    /// ROC AUC of the primary score against the outcome (0.5 = no better than chance).
    pub auc: f64,
    pub by_band: Vec<ConversionRow>,
    pub by_grade: Vec<ConversionRow>,
    /// Named score id → conversion per grade of that score.
    pub named: Vec<(String, Vec<ConversionRow>)>,
    /// Sentences naming each band or grade that converts worse than a lower one.
    pub inversions: Vec<String>,
}

/// The outcome of a decided lead from its `column` attribute (yes/no, true/false, 1/0).
pub fn outcome_of(d: &crate::lead::Decision, column: &str) -> Option<bool> {
    let key = column.trim().to_lowercase();
    d.lead
        .attributes
        .iter()
        .find(|(k, _)| k.to_lowercase() == key)
        .and_then(|(_, v)| crate::score::features::parse_outcome(v))
}

/// Builds the report from decisions and their outcomes. `band` is the band width in points;
/// `grades` the primary grade names highest first; `named` each other score with its grades.
pub fn conversion_report(
    decided: &[(&crate::lead::Decision, Option<bool>)],
    outcome: &str,
    band: u32,
    grades: &[String],
    named: &[(String, Vec<String>)],
) -> ConversionReport {
    let band = i64::from(band.clamp(1, 100));
    let known: Vec<(&crate::lead::Decision, bool)> = decided
        .iter()
        .filter_map(|(d, o)| o.map(|o| (*d, o)))
        .collect();
    let mut r = ConversionReport {
        outcome: outcome.to_string(),
        leads: known.len(),
        converted: known.iter().filter(|(_, o)| *o).count(),
        unknown: decided.len() - known.len(),
        ..Default::default()
    };
    let scores: Vec<f64> = known.iter().map(|(d, _)| d.score as f64).collect();
    let outcomes: Vec<bool> = known.iter().map(|(_, o)| *o).collect();
    r.auc = crate::score::train::auc(&scores, &outcomes);
    let mut lo = 0;
    while lo <= 100 {
        // The last band takes 100 too: 90–100, not 90–99 and a band of its own.
        let hi = if lo + band > 99 { 100 } else { lo + band - 1 };
        let rows: Vec<&(&crate::lead::Decision, bool)> = known
            .iter()
            .filter(|(d, _)| d.score >= lo && d.score <= hi)
            .collect();
        r.by_band.push(ConversionRow {
            label: if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo}–{hi}")
            },
            leads: rows.len(),
            converted: rows.iter().filter(|(_, o)| *o).count(),
        });
        lo = hi + 1;
    }
    r.by_grade = grade_rows(known.iter().map(|(d, o)| (d.grade.as_str(), *o)), grades);
    for (id, names) in named {
        let rows = grade_rows(
            known
                .iter()
                .filter_map(|(d, o)| d.scores.get(id).map(|c| (c.grade.as_str(), *o))),
            names,
        );
        r.named.push((id.clone(), rows));
    }
    let mut inversions = flag("score band", r.by_band.iter().collect());
    // Grades are listed highest first; compare from the lowest up.
    inversions.extend(flag("grade", r.by_grade.iter().rev().collect()));
    for (id, rows) in &r.named {
        inversions.extend(flag(&format!("{id} grade"), rows.iter().rev().collect()));
    }
    r.inversions = inversions;
    r
}

fn grade_rows<'a>(
    items: impl Iterator<Item = (&'a str, bool)>,
    order: &[String],
) -> Vec<ConversionRow> {
    let mut rows: Vec<ConversionRow> = order
        .iter()
        .map(|g| ConversionRow {
            label: g.clone(),
            leads: 0,
            converted: 0,
        })
        .collect();
    for (grade, converted) in items {
        let i = match rows.iter().position(|r| r.label == grade) {
            Some(i) => i,
            None => {
                rows.push(ConversionRow {
                    label: grade.to_string(),
                    leads: 0,
                    converted: 0,
                });
                rows.len() - 1
            }
        };
        rows[i].leads += 1;
        rows[i].converted += usize::from(converted);
    }
    rows
}

/// `ascending`: lowest band first. A row (with enough leads) converting below the best
/// lower row (with enough leads) is flagged.
fn flag(what: &str, ascending: Vec<&ConversionRow>) -> Vec<String> {
    let mut out = Vec::new();
    let mut best: Option<&ConversionRow> = None;
    for row in ascending
        .into_iter()
        .filter(|r| r.leads >= MIN_LEADS_TO_FLAG)
    {
        if let Some(b) = best {
            if row.rate() < b.rate() {
                out.push(format!(
                    "{what} {} converts at {:.1}% ({} of {}), below the lower {what} {} at {:.1}% ({} of {})",
                    row.label,
                    100.0 * row.rate(),
                    row.converted,
                    row.leads,
                    b.label,
                    100.0 * b.rate(),
                    b.converted,
                    b.leads
                ));
            }
        }
        if best.is_none_or(|b| row.rate() > b.rate()) {
            best = Some(row);
        }
    }
    out
}

/// The conversion section of the simulate report.
pub fn render_conversion(r: &ConversionReport) -> String {
    let mut t = String::new();
    if r.leads == 0 {
        let _ = writeln!(t, "\nConversion: no lead has an outcome in `{}` (yes/no, true/false, 1/0); nothing to compare the scores with", r.outcome);
        return t;
    }
    let _ = writeln!(
        t,
        "\nConversion (`{}`): {} of {} leads converted ({:.1}%){}",
        r.outcome,
        r.converted,
        r.leads,
        100.0 * r.converted as f64 / r.leads as f64,
        if r.unknown > 0 {
            format!("; {} without an outcome left out", r.unknown)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        t,
        "Score AUC {:.3} (0.5 = chance, 1.0 = every converted lead above every other)",
        r.auc
    );
    let table = |t: &mut String, title: &str, rows: &[ConversionRow]| {
        let _ = writeln!(t, "\n{title}");
        let _ = writeln!(
            t,
            "  {:<12} {:>6} {:>10} {:>8}",
            "", "leads", "converted", "rate"
        );
        for row in rows.iter().filter(|r| r.leads > 0) {
            let thin = if row.leads < MIN_LEADS_TO_FLAG {
                "  (few leads)"
            } else {
                ""
            };
            let _ = writeln!(
                t,
                "  {:<12} {:>6} {:>10} {:>7.1}%{thin}",
                row.label,
                row.leads,
                row.converted,
                100.0 * row.rate()
            );
        }
    };
    table(&mut t, "By score band", &r.by_band);
    table(&mut t, "By grade", &r.by_grade);
    for (id, rows) in &r.named {
        table(&mut t, &format!("By {id} grade"), rows);
    }
    if r.inversions.is_empty() {
        let _ = writeln!(
            t,
            "\nHigher bands and grades convert at least as well as lower ones."
        );
    } else {
        let _ = writeln!(t, "\nWarning: the score is out of order with conversion —");
        for i in &r.inversions {
            let _ = writeln!(t, "  ! {i}");
        }
        let _ = writeln!(
            t,
            "  Review the rules that lift those leads (leadgate explain), or retrain the model."
        );
    }
    t
}
