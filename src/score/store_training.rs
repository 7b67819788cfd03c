//! `leadgate train --from-store`: the decided leads whose outcomes were posted to
//! `/v1/outcomes`, plus human overrides as labels, read from the configured store.
//!
//! Features come from the latest decision's recorded lead and enrichment — what leadgate
//! knew when it scored the lead — so training needs no provider calls and learns from the
//! same inputs scoring will see.
//!
//! Overrides: an override to the primary score's highest grade is a positive label, to its
//! lowest a negative one, each counted with weight [`OVERRIDE_WEIGHT`]; a middle grade says
//! "not sure" and is not a label. A lead with a posted outcome ignores its override (the
//! outcome is what happened; the override what someone expected).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::features;
use super::train::{Example, SplitMix64, TrainError};
use crate::lead::{EnrichedLead, Enrichment, Lead};
use crate::store::{Store, StoreError};

/// A human override counts as two outcomes: a person looked at this lead on purpose, but
/// judged it before the outcome was known. The weight is applied as the row counted twice
/// (both learners then see exactly a weight of 2), and both copies always land on the same
/// side of the split.
pub const OVERRIDE_WEIGHT: usize = 2;

/// `--split` for store training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreSplit {
    /// Earlier leads train, the latest `holdout` share judge.
    #[default]
    Time,
    /// A stratified random share, by lead.
    Random,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreTrainingError {
    #[error("reading training rows from the store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Train(#[from] TrainError),
}

/// One labelled lead from the store.
#[derive(Debug, Clone)]
pub struct StoredExample {
    pub lead_id: String,
    pub decided_at: DateTime<Utc>,
    pub converted: bool,
    /// `outcome` or `override`.
    pub label: &'static str,
}

/// What the store gave: examples ready for [`super::train::fit`] (holdout flags set), and
/// what each row is, in the same order.
#[derive(Debug, Default)]
pub struct FromStore {
    pub examples: Vec<Example>,
    pub rows: Vec<StoredExample>,
    pub outcomes: usize,
    pub overrides: usize,
    /// Decided leads with an outcome but no readable decision (never decided, or erased).
    pub skipped: usize,
    /// With `--split time`: the first holdout lead's decision time.
    pub cut: Option<DateTime<Utc>>,
}

/// Reads the labelled leads, oldest decision first, and marks the holdout.
pub async fn load(
    store: &Store,
    grades_high_first: &[String],
    exclude: &[String],
    holdout: f64,
    split: StoreSplit,
    seed: u64,
) -> Result<FromStore, StoreTrainingError> {
    let mut out = FromStore::default();
    let mut labelled: Vec<(Example, StoredExample, usize)> = Vec::new();
    let mut with_outcome = BTreeSet::new();
    for o in store.outcome_leads().await? {
        with_outcome.insert(o.lead_id.clone());
        match o.decision.as_ref().and_then(decided) {
            Some((lead, at)) => {
                labelled.push(row(
                    lead,
                    at,
                    &o.lead_id,
                    o.converted,
                    "outcome",
                    1,
                    exclude,
                ));
                out.outcomes += 1;
            }
            None => out.skipped += 1,
        }
    }
    let (top, bottom) = (grades_high_first.first(), grades_high_first.last());
    for ov in store.override_labels().await? {
        if with_outcome.contains(&ov.lead_id) {
            continue;
        }
        let converted = match ov.grade.as_ref() {
            Some(g) if Some(g) == top && top != bottom => true,
            Some(g) if Some(g) == bottom && top != bottom => false,
            _ => continue,
        };
        if let Some((lead, at)) = ov.decision.as_ref().and_then(decided) {
            labelled.push(row(
                lead,
                at,
                &ov.lead_id,
                converted,
                "override",
                OVERRIDE_WEIGHT,
                exclude,
            ));
            out.overrides += 1;
        }
    }
    labelled.sort_by(|a, b| {
        a.1.decided_at
            .cmp(&b.1.decided_at)
            .then_with(|| a.1.lead_id.cmp(&b.1.lead_id))
    });
    let held = mark_holdout(&labelled, holdout, split, seed);
    if split == StoreSplit::Time {
        out.cut = labelled
            .iter()
            .zip(&held)
            .find(|(_, h)| **h)
            .map(|(l, _)| l.1.decided_at);
    }
    for ((mut example, stored, copies), h) in labelled.into_iter().zip(held) {
        example.holdout = Some(h);
        for _ in 0..copies {
            out.examples.push(example.clone());
            out.rows.push(stored.clone());
        }
    }
    Ok(out)
}

fn row(
    enriched: EnrichedLead,
    decided_at: DateTime<Utc>,
    lead_id: &str,
    converted: bool,
    label: &'static str,
    copies: usize,
    exclude: &[String],
) -> (Example, StoredExample, usize) {
    let mut f = features::extract(&enriched);
    f.retain(|k, _| !super::train::excluded(k, exclude));
    (
        Example {
            features: f,
            converted,
            holdout: None,
        },
        StoredExample {
            lead_id: lead_id.into(),
            decided_at,
            converted,
            label,
        },
        copies,
    )
}

/// The lead as it was scored and when, from a stored decision record.
fn decided(record: &Value) -> Option<(EnrichedLead, DateTime<Utc>)> {
    let lead: Lead = serde_json::from_value(record.get("lead")?.clone()).ok()?;
    let enrichment: Enrichment = record
        .get("enrichment")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let at = record
        .get("decided_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())?
        .with_timezone(&Utc);
    Some((EnrichedLead { lead, enrichment }, at))
}

/// Holdout by lead (rows are already oldest first): the latest share for `time`, a
/// per-class shuffled share for `random`.
fn mark_holdout(
    rows: &[(Example, StoredExample, usize)],
    holdout: f64,
    split: StoreSplit,
    seed: u64,
) -> Vec<bool> {
    let n = rows.len();
    let take = |k: usize| ((k as f64) * holdout).round() as usize;
    match split {
        StoreSplit::Time => {
            let first = n - take(n).min(n);
            (0..n).map(|i| i >= first).collect()
        }
        StoreSplit::Random => {
            let mut out = vec![false; n];
            let mut rng = SplitMix64(seed);
            for class in [true, false] {
                let mut idx: Vec<usize> =
                    (0..n).filter(|i| rows[*i].0.converted == class).collect();
                for i in (1..idx.len()).rev() {
                    let j = (rng.next() % (i as u64 + 1)) as usize;
                    idx.swap(i, j);
                }
                let k = take(idx.len()).min(idx.len().saturating_sub(1));
                for &i in idx.iter().take(k) {
                    out[i] = true;
                }
            }
            out
        }
    }
}

/// The leads decided since `since` (latest decision each), as the drift report reads them.
pub async fn recent(
    store: &Store,
    since: DateTime<Utc>,
) -> Result<Vec<super::drift::Recent>, StoreError> {
    Ok(store
        .decided_since(since)
        .await?
        .into_iter()
        .filter_map(|(record, converted)| {
            let (lead, at) = decided(&record)?;
            Some(super::drift::Recent {
                features: features::extract(&lead),
                at,
                converted,
            })
        })
        .collect())
}
