//! Gradient-boosted trees (forust-ml) over the model's encoded columns, with exact
//! per-column TreeSHAP contributions in log-odds.
//!
//! Trees see the same columns as the logistic regression (category levels one-hot, a missing
//! number imputed and flagged by its `missing` column), so one encoding serves both kinds and
//! an explanation names the same features.

use forust_ml::gradientbooster::{ContributionsMethod, GradientBooster};
use forust_ml::metric::Metric;
use forust_ml::Matrix;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::treeshap::Explainer;

/// Boosting settings; fixed so training needs no tuning and stays reproducible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbmOptions {
    pub max_trees: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Rounds without a better validation log loss before boosting stops.
    pub early_stopping_rounds: usize,
    /// Share of the training rows held back (stratified) to decide when to stop.
    pub validation: f64,
    pub seed: u64,
}

impl Default for GbmOptions {
    fn default() -> Self {
        Self {
            max_trees: 400,
            learning_rate: 0.1,
            // Equal ROC AUC to depth 4 on the benchmark's and the comparison's data, with
            // half the nodes to walk per tree when explaining a lead (docs/notes/model.md).
            max_depth: 3,
            early_stopping_rounds: 20,
            validation: 0.2,
            seed: 42,
        }
    }
}

/// A fitted booster. Stored inside the model file as forust's own JSON.
pub struct Trees {
    booster: GradientBooster,
    /// The log-odds every contribution is measured from (TreeSHAP's expected value).
    expected: f64,
    /// The same trees laid out for explaining one row at a time.
    explainer: Explainer,
}

impl Trees {
    /// Fits on row-major `x` (`rows × cols`): boosting with early stopping on a stratified
    /// validation share, then a refit on every row with the number of trees that was best.
    pub fn fit(
        x: &[Vec<f64>],
        y: &[f64],
        weight: &[f64],
        opts: &GbmOptions,
    ) -> Result<(Self, usize), String> {
        let cols = x.first().map_or(0, Vec::len);
        let validation = stratified_share(y, opts.validation, opts.seed);
        let pick = |keep: bool| -> (Vec<f64>, Vec<f64>, Vec<f64>) {
            let idx: Vec<usize> = (0..y.len()).filter(|i| validation[*i] == keep).collect();
            let data = column_major(idx.iter().map(|i| x[*i].as_slice()), cols);
            let yy = idx.iter().map(|i| y[*i]).collect();
            let ww = idx.iter().map(|i| weight[*i]).collect();
            (data, yy, ww)
        };
        let (fit_x, fit_y, fit_w) = pick(false);
        let (val_x, val_y, val_w) = pick(true);
        let mut trees = opts.max_trees;
        if !val_y.is_empty() && !fit_y.is_empty() {
            let mut probe = booster(opts, opts.max_trees)
                .set_evaluation_metric(Some(Metric::LogLoss))
                .set_early_stopping_rounds(Some(opts.early_stopping_rounds));
            let fit_m = Matrix::new(&fit_x, fit_y.len(), cols);
            let val_m = Matrix::new(&val_x, val_y.len(), cols);
            probe
                .fit(&fit_m, &fit_y, &fit_w, Some(vec![(val_m, &val_y, &val_w)]))
                .map_err(|e| e.to_string())?;
            trees = probe
                .best_iteration
                .map_or(probe.trees.len(), |b| b + 1)
                .max(1);
        }
        let all = column_major(x.iter().map(Vec::as_slice), cols);
        let mut booster = booster(opts, trees);
        booster
            .fit(&Matrix::new(&all, y.len(), cols), y, weight, None)
            .map_err(|e| e.to_string())?;
        let fitted = Self::from_booster(booster, cols)?;
        Ok((fitted, trees))
    }

    /// Wraps a trained booster; `cols` is the width of the rows it was trained on.
    pub(crate) fn from_booster(booster: GradientBooster, cols: usize) -> Result<Self, String> {
        let zeros = vec![0.0; cols];
        let c = booster.predict_contributions(
            &Matrix::new(&zeros, 1, cols),
            ContributionsMethod::Shapley,
            false,
        );
        let expected = c.last().copied().unwrap_or(0.0);
        let explainer = Explainer::new(&booster)?;
        Ok(Self {
            booster,
            expected,
            explainer,
        })
    }

    /// The log-odds an explanation starts from.
    pub fn expected(&self) -> f64 {
        self.expected
    }

    /// Number of trees.
    pub fn len(&self) -> usize {
        self.booster.trees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.booster.trees.is_empty()
    }

    /// How many columns a row needs: one past the highest column any tree splits on.
    pub fn columns_needed(&self) -> usize {
        self.booster
            .trees
            .iter()
            .flat_map(|t| t.nodes.iter())
            .filter(|n| !n.is_leaf)
            .map(|n| n.split_feature + 1)
            .max()
            .unwrap_or(0)
    }

    /// Log-odds for one encoded row: the expected value plus the row's contributions, so the
    /// score and its factors are one sum (forust's own `predict` differs in the 8th digit).
    pub fn logit(&self, row: &[f64]) -> f64 {
        self.expected + self.contributions(row).iter().sum::<f64>()
    }

    /// forust's own prediction, for checking the contributions against.
    pub fn predict_direct(&self, row: &[f64]) -> f64 {
        self.booster.predict(&Matrix::new(row, 1, row.len()), false)[0]
    }

    /// Each column's exact Shapley contribution to the row's log-odds.
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; row.len()];
        self.explainer.contributions(row, &mut c);
        c
    }

    /// forust's own `predict_contributions` (Shapley) for one row, which
    /// [`Trees::contributions`] equals: the reference its tests and benchmark compare with.
    pub fn library_contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut c = self.booster.predict_contributions(
            &Matrix::new(row, 1, row.len()),
            ContributionsMethod::Shapley,
            false,
        );
        c.truncate(row.len());
        c
    }

    fn json(&self) -> String {
        self.booster.json_dump().unwrap_or_default()
    }
}

fn booster(opts: &GbmOptions, trees: usize) -> GradientBooster {
    // Single-threaded and without row or column sampling: the same rows give the same trees.
    GradientBooster::default()
        .set_iterations(trees)
        .set_learning_rate(opts.learning_rate)
        .set_max_depth(opts.max_depth)
        .set_l2(1.0)
        .set_min_leaf_weight(1.0)
        .set_parallel(false)
        .set_subsample(1.0)
        .set_colsample_bytree(1.0)
        .set_seed(opts.seed)
        .set_initialize_base_score(true)
}

/// forust's `Matrix` is column-major.
fn column_major<'a>(rows: impl Iterator<Item = &'a [f64]> + Clone, cols: usize) -> Vec<f64> {
    let rows: Vec<&[f64]> = rows.collect();
    let mut out = Vec::with_capacity(rows.len() * cols);
    for c in 0..cols {
        out.extend(rows.iter().map(|r| r[c]));
    }
    out
}

/// Marks a `share` of each class (shuffled with `seed`) as validation rows.
fn stratified_share(y: &[f64], share: f64, seed: u64) -> Vec<bool> {
    let mut out = vec![false; y.len()];
    let mut rng = super::train::SplitMix64(seed ^ 0x7EE5);
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|i| (y[*i] > 0.5) == class).collect();
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let n = ((idx.len() as f64) * share).round() as usize;
        for &i in idx.iter().take(n.min(idx.len().saturating_sub(1))) {
            out[i] = true;
        }
    }
    out
}

impl std::fmt::Debug for Trees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trees")
            .field("trees", &self.len())
            .field("expected", &self.expected)
            .finish()
    }
}

impl Clone for Trees {
    fn clone(&self) -> Self {
        // forust's booster is not Clone; its JSON round-trips exactly (float_roundtrip).
        let booster = GradientBooster::from_json(&self.json()).expect("a dumped booster loads");
        Self {
            booster,
            expected: self.expected,
            explainer: self.explainer.clone(),
        }
    }
}

impl PartialEq for Trees {
    fn eq(&self, other: &Self) -> bool {
        self.expected == other.expected && self.json() == other.json()
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    expected: f64,
    booster: serde_json::Value,
}

impl Serialize for Trees {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let booster = serde_json::to_value(&self.booster).map_err(serde::ser::Error::custom)?;
        Stored {
            expected: self.expected,
            booster,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Trees {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = Stored::deserialize(d)?;
        let booster: GradientBooster =
            serde_json::from_value(stored.booster).map_err(serde::de::Error::custom)?;
        let explainer = Explainer::new(&booster).map_err(serde::de::Error::custom)?;
        Ok(Self {
            booster,
            expected: stored.expected,
            explainer,
        })
    }
}
