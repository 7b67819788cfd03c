//! Drift: how far recent leads have moved from the ones the model learned on.
//!
//! At training the model file records a [`Baseline`]: for every feature the share of
//! training leads in each bin (deciles of a number, the levels of a category, and a
//! `missing` bin), and the same for the model's score (probability × 100 in bands of 10),
//! with the conversion rate per score band. `simulate --from-store --drift` bins the recent
//! window's leads the same way and reports the population stability index,
//! PSI = Σ (aᵢ − eᵢ) ln(aᵢ / eᵢ); the usual reading: < 0.1 stable, 0.1–0.2 watch, > 0.2 moved.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::features::{Features, RawValue};
use super::model::{encode_raw, Encoding, Feature, Model};

/// A share below this counts as this: an empty bin would make PSI infinite.
const FLOOR: f64 = 1e-4;
/// Score bands: 0–10, 10–20, … 90–100 (the `/metrics` histogram's buckets).
pub const SCORE_BANDS: usize = 10;

/// PSI at or above this: the distribution moved.
pub const MOVED: f64 = 0.2;
/// PSI at or above this: worth watching.
pub const WATCH: f64 = 0.1;

/// Population stability index of `actual` shares against `expected` (each normalized).
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    let (se, sa) = (expected.iter().sum::<f64>(), actual.iter().sum::<f64>());
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let e = if se > 0.0 { e / se } else { 0.0 }.max(FLOOR);
            let a = if sa > 0.0 { a / sa } else { 0.0 }.max(FLOOR);
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// `moved`, `watch` or `stable`.
pub fn verdict(psi: f64) -> &'static str {
    if psi >= MOVED {
        "moved"
    } else if psi >= WATCH {
        "watch"
    } else {
        "stable"
    }
}

/// The training distribution a model file carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub rows: usize,
    pub features: Vec<FeatureBins>,
    /// Share of training leads per score band.
    pub score: Vec<f64>,
    /// Conversion rate per score band (NaN-free: a band without leads is 0 with 0 leads).
    pub converted: Vec<f64>,
    pub band_leads: Vec<usize>,
}

/// One feature's bins: numeric `edges` (upper bounds; values above the last fall in the
/// last value bin) or the model's category columns, then a `missing` bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBins {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    pub share: Vec<f64>,
}

impl FeatureBins {
    fn bins(spec: &Feature, edges: &[f64]) -> usize {
        match spec.encoding {
            Encoding::Numeric { .. } => edges.len() + 2,
            // Each column, plus one for a value with no column (unseen, no `(other)`).
            _ => spec.columns.len() + 1,
        }
    }
}

/// The bin of a lead's value of one feature.
fn bin(spec: &Feature, edges: &[f64], features: &Features) -> usize {
    let value = features.get(&spec.name);
    match spec.encoding {
        Encoding::Numeric { .. } => {
            let is_number = match value {
                Some(RawValue::Num(_) | RawValue::Bool(_)) => true,
                Some(RawValue::Text(t)) => t.parse::<f64>().is_ok(),
                _ => false,
            };
            if is_number {
                let v = encode_raw(spec, value)[0];
                edges.iter().filter(|e| v > **e).count()
            } else {
                edges.len() + 1
            }
        }
        _ => {
            let raw = encode_raw(spec, value);
            raw.iter()
                .position(|v| *v == 1.0)
                .unwrap_or(spec.columns.len())
        }
    }
}

/// The score band (0-based) of a probability.
pub fn band(p: f64) -> usize {
    ((p * 100.0 / 10.0).floor() as usize).min(SCORE_BANDS - 1)
}

fn shares(counts: &[usize]) -> Vec<f64> {
    let n = counts.iter().sum::<usize>().max(1) as f64;
    counts.iter().map(|c| *c as f64 / n).collect()
}

impl Baseline {
    /// The distribution of the training rows under `model` (fitted, calibrated).
    pub fn of(model: &Model, rows: &[(&Features, bool)]) -> Self {
        let mut features = Vec::new();
        for spec in &model.features {
            let edges = match spec.encoding {
                Encoding::Numeric { .. } => {
                    let mut v: Vec<f64> = rows
                        .iter()
                        .filter(|(f, _)| f.contains_key(&spec.name))
                        .map(|(f, _)| encode_raw(spec, f.get(&spec.name))[0])
                        .collect();
                    v.sort_by(f64::total_cmp);
                    let mut e: Vec<f64> = (1..10)
                        .filter_map(|d| v.get(d * v.len() / 10).copied())
                        .collect();
                    e.dedup();
                    e
                }
                _ => Vec::new(),
            };
            let mut counts = vec![0usize; FeatureBins::bins(spec, &edges)];
            for (f, _) in rows {
                counts[bin(spec, &edges, f)] += 1;
            }
            features.push(FeatureBins {
                name: spec.name.clone(),
                edges,
                share: shares(&counts),
            });
        }
        let mut leads = vec![0usize; SCORE_BANDS];
        let mut won = vec![0usize; SCORE_BANDS];
        for (f, y) in rows {
            let b = band(model.predict(f));
            leads[b] += 1;
            won[b] += usize::from(*y);
        }
        Self {
            rows: rows.len(),
            features,
            score: shares(&leads),
            converted: leads
                .iter()
                .zip(&won)
                .map(|(n, w)| if *n > 0 { *w as f64 / *n as f64 } else { 0.0 })
                .collect(),
            band_leads: leads,
        }
    }
}

/// One recent lead: its features (as decided), when, and its outcome if posted.
pub struct Recent {
    pub features: Features,
    pub at: DateTime<Utc>,
    pub converted: Option<bool>,
}

/// What the drift report found.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub leads: usize,
    pub score_psi: f64,
    /// (feature, PSI), largest first.
    pub features: Vec<(String, f64)>,
    /// (week starting, band, leads, converted of those with an outcome, with an outcome).
    pub weekly: Vec<(String, usize, usize, usize, usize)>,
}

/// Compares recent leads with the model's training baseline.
pub fn compare(model: &Model, baseline: &Baseline, recent: &[Recent]) -> Drift {
    let mut features = Vec::new();
    for fb in &baseline.features {
        let Some(spec) = model.features.iter().find(|f| f.name == fb.name) else {
            continue;
        };
        let mut counts = vec![0usize; fb.share.len()];
        for r in recent {
            let b = bin(spec, &fb.edges, &r.features).min(counts.len() - 1);
            counts[b] += 1;
        }
        features.push((fb.name.clone(), psi(&fb.share, &shares(&counts))));
    }
    features.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut score = vec![0usize; SCORE_BANDS];
    let mut weekly: std::collections::BTreeMap<(String, usize), (usize, usize, usize)> =
        Default::default();
    for r in recent {
        let b = band(model.predict(&r.features));
        score[b] += 1;
        let week =
            r.at.date_naive()
                .week(chrono::Weekday::Mon)
                .first_day()
                .to_string();
        let e = weekly.entry((week, b)).or_default();
        e.0 += 1;
        if let Some(c) = r.converted {
            e.2 += 1;
            e.1 += usize::from(c);
        }
    }
    Drift {
        leads: recent.len(),
        score_psi: psi(&baseline.score, &shares(&score)),
        features,
        weekly: weekly
            .into_iter()
            .map(|((w, b), (n, c, o))| (w, b, n, c, o))
            .collect(),
    }
}

/// The report `simulate --from-store --drift` prints.
pub fn render(d: &Drift, baseline: &Baseline, window: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Drift: {} leads decided in the last {window} against {} training leads",
        d.leads, baseline.rows
    );
    let _ = writeln!(
        t,
        "\nPSI (≥ {WATCH} watch, ≥ {MOVED} moved)\n  {:<8.4} {:<7} model score",
        d.score_psi,
        verdict(d.score_psi)
    );
    for (name, p) in &d.features {
        let _ = writeln!(t, "  {p:<8.4} {:<7} {name}", verdict(*p));
    }
    let _ = writeln!(t, "\nConversion by score band");
    let _ = writeln!(t, "  week        band     leads  with outcome  converted");
    for (b, (n, rate)) in baseline
        .band_leads
        .iter()
        .zip(&baseline.converted)
        .enumerate()
    {
        if *n > 0 {
            let _ = writeln!(
                t,
                "  training    {:>3}–{:<3}  {n:>5}  {n:>12}  {:>8.1}%",
                b * 10,
                b * 10 + 10,
                100.0 * rate
            );
        }
    }
    for (week, b, n, c, o) in &d.weekly {
        let rate = if *o > 0 {
            format!("{:>8.1}%", 100.0 * *c as f64 / *o as f64)
        } else {
            "       –".into()
        };
        let _ = writeln!(
            t,
            "  {week}  {:>3}–{:<3}  {n:>5}  {o:>12}  {rate}",
            b * 10,
            b * 10 + 10
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_matches_hand_computed_values() {
        assert_eq!(psi(&[0.25, 0.25, 0.5], &[0.25, 0.25, 0.5]), 0.0);
        // (0.6 − 0.5) ln(0.6/0.5) + (0.4 − 0.5) ln(0.4/0.5) = 0.0405465…
        let p = psi(&[0.5, 0.5], &[0.6, 0.4]);
        assert!((p - 0.040_546_510_810_816).abs() < 1e-12, "{p}");
        // Counts are normalized first; symmetric in the two arguments.
        assert!((psi(&[50.0, 50.0], &[60.0, 40.0]) - p).abs() < 1e-12);
        assert!((psi(&[0.6, 0.4], &[0.5, 0.5]) - p).abs() < 1e-12);
        // A bin that empties is floored, not infinite: (1e-4 − 0.5) ln(1e-4 / 0.5) + …
        let moved = psi(&[0.5, 0.5], &[0.0, 1.0]);
        let want = (FLOOR - 0.5) * (FLOOR / 0.5).ln() + 0.5 * 2f64.ln();
        assert!((moved - want).abs() < 1e-12, "{moved} vs {want}");
        assert_eq!(verdict(moved), "moved");
        assert_eq!(verdict(0.15), "watch");
        assert_eq!(verdict(p), "stable");
    }

    #[test]
    fn bands_are_tens() {
        assert_eq!(band(0.0), 0);
        assert_eq!(band(0.099), 0);
        assert_eq!(band(0.1), 1);
        assert_eq!(band(1.0), 9);
    }
}
