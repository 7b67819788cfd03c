//! `leadgate train`: fit the predictive model on past leads with a known outcome.
//!
//! `--model logistic` is the regression below; `--model gbm` boosts trees ([`super::gbm`])
//! on the same columns; `--model auto` cross-validates both on the same stratified k folds
//! of the training rows and keeps the better out-of-fold ROC AUC (a tie keeps the simpler
//! logistic). The same out-of-fold predictions fit the Platt calibration
//! ([`super::calibrate`]); the holdout judges the result before and after it.
//!
//! L2-regularized logistic regression, solved by Newton's method (IRLS) on a dense matrix.
//! Written here rather than taken from linfa-logistic: with categoricals one-hot encoded and
//! rare levels pooled the problem is small (hundreds of columns at most), Newton converges in
//! a handful of steps to the exact optimum of the same objective scikit-learn's
//! `LogisticRegression` minimises (so results can be checked against it), and linfa-logistic
//! brings ndarray + argmin + linfa into the build for ~100 lines of linear algebra (see
//! docs/model-validation.md for the measured compile cost).
//!
//! Objective: Σ logloss(yᵢ, σ(b + w·xᵢ)) + λ/2 ‖w‖², intercept unpenalized, columns
//! standardized with the training mean and (population) standard deviation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use sha2::{Digest, Sha256};

use super::calibrate::Platt;
use super::features::{self, parse_outcome, Features, RawValue};
use super::gbm::{GbmOptions, Trees};
use super::metrics::Evaluation;
use super::model::{
    encode_raw, format_number, sigmoid, transform, Column, Encoding, Feature, Model, ModelKind,
    MISSING_LEVEL, MODEL_FORMAT, MODEL_VERSION, OTHER_LEVEL,
};
use crate::intake::{self, BadRow};
use crate::lead::RawLead;
use crate::pipeline::Pipeline;

/// scikit-learn's default `C = 1.0`, i.e. λ = 1: what `--l2` means when a number is wanted
/// without cross-validation (and what the scikit-learn comparison uses).
pub const DEFAULT_L2: f64 = 1.0;
/// The penalties `--l2 auto` (the default) tries, by cross-validated log loss on the
/// training split: from almost none to strong enough to tame a few hundred sparse columns.
pub const L2_GRID: &[f64] = &[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0];
/// Folds of the stratified cross-validation (`--folds`): λ, `--model auto` and calibration.
pub const DEFAULT_FOLDS: usize = 5;
/// A quarter of the leads held out: enough positives for a stable AUC on a few hundred rows.
pub const DEFAULT_HOLDOUT: f64 = 0.25;
/// The fixed seed: the same file gives the same split and the same model.
pub const DEFAULT_SEED: u64 = 42;
/// A category level seen in fewer leads than this is pooled into `(other)`.
pub const DEFAULT_MIN_LEVEL_COUNT: usize = 10;
/// At most this many levels per categorical (the most frequent), the rest pooled.
pub const MAX_LEVELS: usize = 25;
/// A text column whose distinct values exceed this share of rows is an identifier, not a
/// feature (names, ids, free text), and is left out.
const IDENTIFIER_SHARE: f64 = 0.5;
/// Newton stops when no coefficient moves more than this.
const TOLERANCE: f64 = 1e-9;
const MAX_ITERATIONS: usize = 100;
/// The domain given to a training row with neither email nor domain: a model only needs its
/// columns, not an identity. `example.com` is reserved for examples (RFC 2606), so no
/// provider knows it, and domains are never features.
const ANONYMOUS_DOMAIN: &str = "example.com";

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Intake(#[from] intake::IntakeError),
    #[error("{path}: no outcome column `{column}`; columns are: {columns}")]
    NoOutcome {
        path: String,
        column: String,
        columns: String,
    },
    #[error("{path}: the outcome column `{column}` needs both outcomes to learn from ({positives} converted, {negatives} not)")]
    OneClass {
        path: String,
        column: String,
        positives: usize,
        negatives: usize,
    },
    #[error("{path}: no usable rows — {reason}")]
    NoRows { path: String, reason: String },
    #[error("--{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error("the model could not be fitted: {0}")]
    Numeric(String),
}

/// How numeric columns are prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericPrep {
    /// Long-tailed non-negative columns (max ≥ 1000 and 20× the median) get ln(1 + x); every column is clipped
    /// to its training range at scoring time.
    Auto,
    /// Standardize only — the same preprocessing as scikit-learn's StandardScaler.
    Raw,
}

/// `--model`: which learner to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelChoice {
    /// Both, keeping the better holdout ROC AUC; a tie keeps logistic.
    #[default]
    Auto,
    Logistic,
    Gbm,
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub model: ModelChoice,
    pub outcome: String,
    pub exclude: Vec<String>,
    pub holdout: f64,
    pub seed: u64,
    /// The L2 penalty λ; `None`: chosen from [`L2_GRID`] by cross-validation.
    pub l2: Option<f64>,
    pub min_level_count: usize,
    pub numeric: NumericPrep,
    /// A column saying which rows are `train` and which `test`/`holdout`, instead of the
    /// random stratified split (time-based splits, or matching another tool's split).
    pub split_column: Option<String>,
    /// Stratified k-fold cross-validation folds on the training rows.
    pub folds: usize,
    /// The deepest a gbm tree grows.
    pub max_depth: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            model: ModelChoice::Auto,
            outcome: "converted".into(),
            exclude: Vec::new(),
            holdout: DEFAULT_HOLDOUT,
            seed: DEFAULT_SEED,
            l2: None,
            min_level_count: DEFAULT_MIN_LEVEL_COUNT,
            numeric: NumericPrep::Auto,
            split_column: None,
            folds: DEFAULT_FOLDS,
            max_depth: GbmOptions::default().max_depth,
        }
    }
}

/// One training row.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub converted: bool,
    /// From the split column: Some(true) for holdout rows.
    pub holdout: Option<bool>,
}

/// What loading a file produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub examples: Vec<Example>,
    pub skipped: Vec<BadRow>,
}

/// Reads a CSV/JSONL file of past leads, runs each through normalize and enrichment, and
/// extracts its features and outcome.
pub async fn load_examples(
    pipeline: &Pipeline,
    path: &Path,
    opts: &TrainOptions,
) -> Result<Loaded, TrainError> {
    let rows = intake::read_file(path)?;
    let name = path.display().to_string();
    let outcome_key = opts.outcome.trim().to_lowercase();
    let split_key = opts.split_column.as_ref().map(|s| s.trim().to_lowercase());
    let mut loaded = Loaded::default();
    let mut columns: BTreeSet<String> = BTreeSet::new();
    let mut saw_outcome = false;
    let now = Utc::now();
    for (line, row) in rows {
        let mut raw = match row {
            Ok(r) => r,
            Err(bad) => {
                loaded.skipped.push(bad);
                continue;
            }
        };
        columns.extend(raw.0.keys().cloned());
        let outcome = take(&mut raw, &outcome_key);
        if outcome.is_some() {
            saw_outcome = true;
        }
        let Some(converted) = outcome.as_ref().and_then(parse_outcome) else {
            let shown = outcome.map_or_else(|| "empty".to_string(), |v| v.to_string());
            loaded.skipped.push(BadRow {
                line,
                reason: format!(
                    "outcome `{}` is {shown}; expected yes/no, true/false or 1/0",
                    opts.outcome
                ),
            });
            continue;
        };
        let holdout = match &split_key {
            None => None,
            Some(k) => match take(&mut raw, k)
                .as_ref()
                .and_then(Value::as_str)
                .map(|s| s.trim().to_lowercase())
            {
                Some(s) if s == "train" => Some(false),
                Some(s) if s == "test" || s == "holdout" => Some(true),
                other => {
                    loaded.skipped.push(BadRow {
                        line,
                        reason: format!(
                            "split column is {other:?}; expected train, test or holdout"
                        ),
                    });
                    continue;
                }
            },
        };
        let has_identity = ["email", "domain", "website"]
            .iter()
            .any(|k| raw.0.get(*k).is_some_and(|v| !v.is_null() && v != ""));
        if !has_identity {
            raw.0.insert("domain".into(), json!(ANONYMOUS_DOMAIN));
        }
        let lead = match pipeline.normalize(&raw) {
            Ok(l) => l,
            Err(e) => {
                loaded.skipped.push(BadRow {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let enriched = pipeline.waterfall.enrich(lead, now).await;
        let mut features = features::extract(&enriched);
        features.retain(|k, _| !excluded(k, &opts.exclude));
        loaded.examples.push(Example {
            features,
            converted,
            holdout,
        });
    }
    if !saw_outcome {
        return Err(TrainError::NoOutcome {
            path: name,
            column: opts.outcome.clone(),
            columns: columns.into_iter().collect::<Vec<_>>().join(", "),
        });
    }
    Ok(loaded)
}

/// Removes a column (case-insensitively: intake lowercases CSV headers) from a raw row,
/// wherever intake put it.
fn take(raw: &mut RawLead, key: &str) -> Option<Value> {
    let found = raw.0.keys().find(|k| k.to_lowercase() == key).cloned();
    if let Some(k) = found {
        return raw.0.remove(&k);
    }
    if let Some(Value::Object(attrs)) = raw.0.get_mut("attributes") {
        let found = attrs.keys().find(|k| k.to_lowercase() == key).cloned();
        return found.and_then(|k| attrs.remove(&k));
    }
    None
}

/// `--exclude budget` leaves out `attributes.budget`; `--exclude company.industry` exactly
/// that field; `--exclude industry` every feature ending in `.industry`.
pub(crate) fn excluded(feature: &str, exclude: &[String]) -> bool {
    exclude.iter().any(|e| {
        let e = e.trim().to_lowercase();
        !e.is_empty() && (feature == e || feature.ends_with(&format!(".{e}")))
    })
}

/// Holdout metrics and the fitted model's top factors.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub kind: ModelKind,
    /// With `--model auto`: each kind's cross-validated (out-of-fold) ROC AUC.
    pub candidates: Vec<(ModelKind, f64)>,
    pub folds: usize,
    /// ROC AUC of the out-of-fold predictions on the training rows.
    pub cv_auc: f64,
    /// How the rows were split (empty: the stratified random holdout).
    pub split: String,
    /// Trees kept by early stopping (gbm).
    pub trees: usize,
    pub rows: usize,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub base_rate: f64,
    /// Holdout figures after calibration.
    pub auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub iterations: usize,
    /// The penalty used, and (when chosen by cross-validation) each candidate's mean
    /// held-out log loss.
    pub l2: f64,
    pub cv: Vec<(f64, f64)>,
    /// Reliability by decile after calibration.
    pub calibration: Vec<Decile>,
    pub platt: Option<Platt>,
    /// The same holdout before calibration.
    pub uncalibrated: Evaluation,
    pub top_positive: Vec<(String, f64)>,
    pub top_negative: Vec<(String, f64)>,
    /// Features left out and why (identifiers, constant columns).
    pub dropped: Vec<(String, String)>,
}

/// One calibration bin of the holdout: mean predicted probability vs observed rate.
#[derive(Debug, Clone, Serialize)]
pub struct Decile {
    pub decile: usize,
    pub leads: usize,
    pub predicted: f64,
    pub observed: f64,
}

/// Fits the model `opts.model` asks for on `examples` and evaluates it on the holdout.
pub fn fit(
    examples: &[Example],
    source: &str,
    opts: &TrainOptions,
) -> Result<(Model, Report), TrainError> {
    match opts.model {
        ModelChoice::Logistic => fit_kind(examples, source, opts, ModelKind::Logistic),
        ModelChoice::Gbm => fit_kind(examples, source, opts, ModelKind::Gbm),
        ModelChoice::Auto => {
            let logistic = fit_kind(examples, source, opts, ModelKind::Logistic)?;
            let gbm = fit_kind(examples, source, opts, ModelKind::Gbm)?;
            let candidates = vec![
                (ModelKind::Logistic, logistic.1.cv_auc),
                (ModelKind::Gbm, gbm.1.cv_auc),
            ];
            let (mut model, mut report) = if gbm.1.cv_auc > logistic.1.cv_auc {
                gbm
            } else {
                logistic
            };
            report.candidates = candidates.clone();
            if let Value::Object(m) = &mut model.metrics {
                m.insert(
                    "chosen_by".into(),
                    json!({
                        "rule": "--model auto: higher out-of-fold ROC AUC under the same stratified k-fold cross-validation, ties to logistic",
                        "auc": candidates.iter().map(|(k, a)| (k.as_str().to_string(), json!(a))).collect::<serde_json::Map<_, _>>(),
                    }),
                );
            }
            Ok((model, report))
        }
    }
}

/// SHA-256 of the rows a model learns from: each row's features (name, JSON value) and
/// outcome, in file order, so the same data gives the same digest.
pub fn data_digest(examples: &[Example]) -> String {
    let mut h = Sha256::new();
    for e in examples {
        for (name, value) in &e.features {
            h.update(name.as_bytes());
            h.update([0x1f]);
            h.update(value.to_json().to_string().as_bytes());
            h.update([0x1e]);
        }
        h.update(if e.converted { b"1\n" } else { b"0\n" });
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn fit_kind(
    examples: &[Example],
    source: &str,
    opts: &TrainOptions,
    kind: ModelKind,
) -> Result<(Model, Report), TrainError> {
    if let Some(l2) = opts.l2 {
        if !(l2 >= 0.0 && l2.is_finite()) {
            return Err(TrainError::Option {
                option: "l2",
                reason: format!("{l2} is not a penalty ≥ 0"),
            });
        }
    }
    if opts.split_column.is_none() && !(opts.holdout > 0.0 && opts.holdout < 1.0) {
        return Err(TrainError::Option {
            option: "holdout",
            reason: format!("{} is not a share between 0 and 1", opts.holdout),
        });
    }
    let positives = examples.iter().filter(|e| e.converted).count();
    let negatives = examples.len() - positives;
    if positives == 0 || negatives == 0 {
        return Err(TrainError::OneClass {
            path: source.into(),
            column: opts.outcome.clone(),
            positives,
            negatives,
        });
    }
    let is_holdout = split(examples, opts);
    let train: Vec<&Example> = examples
        .iter()
        .zip(&is_holdout)
        .filter(|(_, h)| !**h)
        .map(|(e, _)| e)
        .collect();
    let test: Vec<&Example> = examples
        .iter()
        .zip(&is_holdout)
        .filter(|(_, h)| **h)
        .map(|(e, _)| e)
        .collect();
    if train.iter().all(|e| e.converted) || train.iter().all(|e| !e.converted) || test.is_empty() {
        return Err(TrainError::NoRows {
            path: source.into(),
            reason: format!("the split leaves {} training and {} holdout rows; both need converted and unconverted leads", train.len(), test.len()),
        });
    }

    let (mut specs, dropped) = design(&train, opts);
    let x: Vec<Vec<f64>> = train.iter().map(|e| raw_row(&specs, &e.features)).collect();
    standardize(&mut specs, &x);
    let xs: Vec<Vec<f64>> = x.iter().map(|r| scaled(&specs, r)).collect();
    let y: Vec<f64> = train
        .iter()
        .map(|e| f64::from(u8::from(e.converted)))
        .collect();
    let mut model = Model {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        kind,
        trained_at: Utc::now().to_rfc3339(),
        source: source.into(),
        outcome: opts.outcome.clone(),
        l2: 0.0,
        intercept: 0.0,
        features: specs,
        metrics: Value::Null,
        data_digest: Some(data_digest(examples)),
        trees: None,
        calibration: None,
        training_distribution: None,
    };
    let folds = opts.folds;
    let train_pos = train.iter().filter(|e| e.converted).count();
    let train_neg = train.len() - train_pos;
    if folds < 2 || train_pos < folds || train_neg < folds {
        return Err(TrainError::Option {
            option: "folds",
            reason: format!(
                "{folds} folds over {train_pos} converted and {train_neg} unconverted training leads: use at least 2 folds and no more than the smaller of the two"
            ),
        });
    }
    let (l2, cv) = match (kind, opts.l2) {
        (ModelKind::Gbm, _) => (0.0, Vec::new()),
        (ModelKind::Logistic, Some(l2)) => (l2, Vec::new()),
        (ModelKind::Logistic, None) => choose_l2(&xs, &y, folds, opts.seed)?,
    };
    // Out-of-fold log-odds: each training row predicted by a model that did not see it.
    // They judge the kind (`--model auto`) and fit the calibration.
    let fold = stratified_folds(&y, folds, opts.seed ^ 0xCA1B);
    let mut oof = vec![0.0; y.len()];
    for f in 0..folds {
        let (xt, yt): (Vec<Vec<f64>>, Vec<f64>) = (0..y.len())
            .filter(|i| fold[*i] != f)
            .map(|i| (xs[i].clone(), y[i]))
            .unzip();
        let fitted = Fitted::fit(kind, &xt, &yt, l2, opts)?;
        for i in (0..y.len()).filter(|i| fold[*i] == f) {
            oof[i] = fitted.margin(&xs[i]);
        }
    }
    let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
    let cv_auc = auc(&oof, &yb);
    let platt = Platt::fit(&oof, &yb, folds);

    let (iterations, trees) = match Fitted::fit(kind, &xs, &y, l2, opts)? {
        Fitted::Logistic(beta, iterations) => {
            let mut k = 1;
            for f in &mut model.features {
                for c in &mut f.columns {
                    c.coef = beta[k];
                    k += 1;
                }
            }
            model.intercept = beta[0];
            (iterations, 0)
        }
        Fitted::Gbm(trees, n) => {
            model.intercept = trees.expected();
            model.trees = Some(*trees);
            (n, n)
        }
    };
    model.l2 = l2;
    model.calibration = platt.clone();
    let rows: Vec<(&Features, bool)> = train.iter().map(|e| (&e.features, e.converted)).collect();
    model.training_distribution = Some(super::drift::Baseline::of(&model, &rows));

    let yt: Vec<bool> = test.iter().map(|e| e.converted).collect();
    let raw: Vec<f64> = test
        .iter()
        .map(|e| model.predict_raw(&e.features))
        .collect();
    let p: Vec<f64> = test.iter().map(|e| model.predict(&e.features)).collect();
    let uncalibrated = Evaluation::of(&raw, &yt);
    let calibrated = Evaluation::of(&p, &yt);
    let mut coefs = match kind {
        ModelKind::Logistic => model.coefficients(),
        ModelKind::Gbm => mean_contributions(&model, &test),
    };
    coefs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top_positive: Vec<(String, f64)> = coefs
        .iter()
        .filter(|c| c.1 > 0.0)
        .take(10)
        .cloned()
        .collect();
    let top_negative: Vec<(String, f64)> = coefs
        .iter()
        .rev()
        .filter(|c| c.1 < 0.0)
        .take(10)
        .cloned()
        .collect();
    let report = Report {
        kind,
        candidates: Vec::new(),
        folds,
        cv_auc,
        trees,
        rows: examples.len(),
        train_rows: train.len(),
        holdout_rows: test.len(),
        base_rate: positives as f64 / examples.len() as f64,
        auc: calibrated.auc,
        pr_auc: calibrated.pr_auc,
        log_loss: calibrated.log_loss,
        brier: calibrated.brier,
        iterations,
        l2,
        cv,
        calibration: calibrated.deciles.clone(),
        platt,
        uncalibrated: uncalibrated.clone(),
        top_positive,
        top_negative,
        dropped,
        split: String::new(),
    };
    let summary = |e: &Evaluation| json!({"auc": e.auc, "pr_auc": e.pr_auc, "log_loss": e.log_loss, "brier": e.brier});
    model.metrics = json!({
        "kind": kind.as_str(),
        "trees": trees,
        "holdout_rows": report.holdout_rows,
        "train_rows": report.train_rows,
        "auc": report.auc,
        "pr_auc": report.pr_auc,
        "log_loss": report.log_loss,
        "brier": report.brier,
        "uncalibrated": summary(&uncalibrated),
        "cv_auc": cv_auc,
        "folds": folds,
        "base_rate": report.base_rate,
        "seed": opts.seed,
        "l2": l2,
        "l2_chosen_by": if kind == ModelKind::Gbm { "n/a" } else if opts.l2.is_some() { "--l2" } else { "stratified k-fold cross-validation" },
        "holdout": if opts.split_column.is_some() { json!("split column") } else { json!(opts.holdout) },
    });
    Ok((model, report))
}

/// One fit of either kind on standardized rows.
enum Fitted {
    /// [intercept, w...] and Newton steps.
    Logistic(Vec<f64>, usize),
    /// The trees and how many early stopping kept.
    Gbm(Box<Trees>, usize),
}

impl Fitted {
    fn fit(
        kind: ModelKind,
        xs: &[Vec<f64>],
        y: &[f64],
        l2: f64,
        opts: &TrainOptions,
    ) -> Result<Self, TrainError> {
        Ok(match kind {
            ModelKind::Logistic => {
                let (beta, n) = newton(xs, y, l2)?;
                Fitted::Logistic(beta, n)
            }
            ModelKind::Gbm => {
                let weight = vec![1.0; y.len()];
                let gbm = GbmOptions {
                    seed: opts.seed,
                    max_depth: opts.max_depth.max(1),
                    ..GbmOptions::default()
                };
                let (trees, n) = Trees::fit(xs, y, &weight, &gbm).map_err(TrainError::Numeric)?;
                Fitted::Gbm(Box::new(trees), n)
            }
        })
    }

    /// Raw log-odds of a standardized row.
    fn margin(&self, x: &[f64]) -> f64 {
        match self {
            Fitted::Logistic(b, _) => b[0] + x.iter().zip(&b[1..]).map(|(a, w)| a * w).sum::<f64>(),
            Fitted::Gbm(t, _) => t.logit(x),
        }
    }
}

/// Assigns each row a fold in 0..k, each class shuffled with the seed and dealt round
/// robin, so every fold keeps the base rate.
fn stratified_folds(y: &[f64], k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0usize; y.len()];
    let mut rng = SplitMix64(seed);
    for class in [1.0, 0.0] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|i| y[*i] == class).collect();
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        for (n, i) in idx.into_iter().enumerate() {
            fold[i] = n % k;
        }
    }
    fold
}

/// Each feature's mean TreeSHAP contribution over the holdout, signed: which features push
/// leads up or down on average (a tree model has no single coefficient per column).
fn mean_contributions(model: &Model, rows: &[&Example]) -> Vec<(String, f64)> {
    let mut sum: BTreeMap<String, f64> = BTreeMap::new();
    for e in rows {
        for c in model.contributions(&e.features) {
            *sum.entry(c.feature).or_default() += c.logit.abs();
        }
    }
    let n = rows.len().max(1) as f64;
    sum.into_iter().map(|(k, v)| (k, v / n)).collect()
}

/// Picks λ from [`L2_GRID`] by stratified k-fold cross-validation on the training rows:
/// the smallest mean held-out log loss wins. Returns it and every candidate's loss.
fn choose_l2(
    x: &[Vec<f64>],
    y: &[f64],
    folds: usize,
    seed: u64,
) -> Result<(f64, Vec<(f64, f64)>), TrainError> {
    let fold = stratified_folds(y, folds, seed ^ 0x5EED);
    let mut results = Vec::new();
    for &l2 in L2_GRID {
        let mut loss = 0.0;
        let mut n = 0usize;
        for f in 0..folds {
            let (xt, yt): (Vec<Vec<f64>>, Vec<f64>) = (0..y.len())
                .filter(|i| fold[*i] != f)
                .map(|i| (x[i].clone(), y[i]))
                .unzip();
            if yt.iter().all(|v| *v == 1.0) || yt.iter().all(|v| *v == 0.0) {
                continue;
            }
            let (beta, _) = newton(&xt, &yt, l2)?;
            for i in (0..y.len()).filter(|i| fold[*i] == f) {
                let z = beta[0] + x[i].iter().zip(&beta[1..]).map(|(a, b)| a * b).sum::<f64>();
                loss += log_loss(&[sigmoid(z)], &[y[i] == 1.0]);
                n += 1;
            }
        }
        results.push((l2, loss / n.max(1) as f64));
    }
    let best = results
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(DEFAULT_L2, |r| r.0);
    Ok((best, results))
}

/// Which examples are holdout: the split column when given, else a stratified random split
/// (each class shuffled with the fixed seed, the first `holdout` share of each held out).
pub fn split(examples: &[Example], opts: &TrainOptions) -> Vec<bool> {
    if opts.split_column.is_some() {
        return examples
            .iter()
            .map(|e| e.holdout.unwrap_or(false))
            .collect();
    }
    let mut out = vec![false; examples.len()];
    let mut rng = SplitMix64(opts.seed);
    for class in [true, false] {
        let mut idx: Vec<usize> = (0..examples.len())
            .filter(|i| examples[*i].converted == class)
            .collect();
        for i in (1..idx.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        let n = ((idx.len() as f64) * opts.holdout).round() as usize;
        for &i in idx.iter().take(n.min(idx.len().saturating_sub(1))) {
            out[i] = true;
        }
    }
    out
}

/// SplitMix64: a tiny, well-known generator — enough for a reproducible shuffle without a
/// `rand` dependency.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Decides each feature's encoding from the training rows.
fn design(train: &[&Example], opts: &TrainOptions) -> (Vec<Feature>, Vec<(String, String)>) {
    let mut values: BTreeMap<&str, Vec<&RawValue>> = BTreeMap::new();
    for e in train {
        for (k, v) in &e.features {
            values.entry(k.as_str()).or_default().push(v);
        }
    }
    let n = train.len();
    let mut specs = Vec::new();
    let mut dropped = Vec::new();
    for (name, vals) in values {
        let missing = n - vals.len();
        let is_event_count = name.starts_with("events.");
        let all_numeric = vals
            .iter()
            .all(|v| matches!(v, RawValue::Num(_) | RawValue::Bool(_)));
        let any_list = vals.iter().any(|v| matches!(v, RawValue::List(_)));
        if all_numeric {
            let nums: Vec<f64> = vals
                .iter()
                .map(|v| match v {
                    RawValue::Num(x) => *x,
                    RawValue::Bool(b) => f64::from(u8::from(*b)),
                    _ => 0.0,
                })
                .collect();
            let lo = nums.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = nums.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            // Long-tailed: large, and far above the typical value (sizes, revenue, counts)
            // — not merely large (years).
            let mut sorted = nums.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let log = opts.numeric == NumericPrep::Auto
                && lo >= 0.0
                && hi >= 1000.0
                && hi > 20.0 * (median + 1.0);
            let t: Vec<f64> = nums.iter().map(|x| transform(*x, log)).collect();
            let (min, max) = match opts.numeric {
                NumericPrep::Auto => (transform(lo, log), transform(hi, log)),
                NumericPrep::Raw => (f64::NEG_INFINITY, f64::INFINITY),
            };
            // An event type a lead does not have is zero events, not unknown.
            let impute = if is_event_count {
                0.0
            } else {
                t.iter().sum::<f64>() / t.len() as f64
            };
            let missing_column = missing > 0 && !is_event_count;
            let mut columns = vec![column("value")];
            if missing_column {
                columns.push(column("missing"));
            }
            specs.push(Feature {
                name: name.to_string(),
                encoding: Encoding::Numeric {
                    log,
                    min: if min.is_finite() { min } else { f64::MIN },
                    max: if max.is_finite() { max } else { f64::MAX },
                    impute,
                    missing_column,
                },
                columns,
            });
        } else if any_list {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for v in &vals {
                if let RawValue::List(items) = v {
                    for i in items.iter().collect::<BTreeSet<_>>() {
                        *counts.entry(i.clone()).or_default() += 1;
                    }
                }
            }
            let levels = frequent(counts, opts.min_level_count);
            if levels.is_empty() {
                dropped.push((
                    name.to_string(),
                    format!("no item in {} or more leads", opts.min_level_count),
                ));
                continue;
            }
            specs.push(Feature {
                name: name.to_string(),
                encoding: Encoding::Set,
                columns: levels.iter().map(|l| column(l)).collect(),
            });
        } else {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for v in &vals {
                let level = match v {
                    RawValue::Text(t) => t.clone(),
                    RawValue::Num(x) => format_number(*x),
                    RawValue::Bool(b) => b.to_string(),
                    RawValue::List(l) => l.join(","),
                };
                *counts.entry(level).or_default() += 1;
            }
            let distinct = counts.len();
            if distinct as f64 > IDENTIFIER_SHARE * n as f64 && distinct > MAX_LEVELS {
                dropped.push((
                    name.to_string(),
                    format!("{distinct} distinct values in {n} rows: an identifier, not a feature"),
                ));
                continue;
            }
            let total = counts.values().sum::<usize>();
            let mut levels = frequent(counts, opts.min_level_count);
            let kept: usize = levels.len();
            let pooled = total > 0 && kept < distinct;
            if pooled {
                levels.push(OTHER_LEVEL.into());
            }
            if missing > 0 {
                levels.push(MISSING_LEVEL.into());
            }
            if levels.len() < 2 {
                dropped.push((name.to_string(), "one value only".into()));
                continue;
            }
            specs.push(Feature {
                name: name.to_string(),
                encoding: Encoding::Category,
                columns: levels.iter().map(|l| column(l)).collect(),
            });
        }
    }
    (specs, dropped)
}

/// Levels seen in at least `min` rows, most frequent first, at most [`MAX_LEVELS`].
fn frequent(counts: BTreeMap<String, usize>, min: usize) -> Vec<String> {
    let mut v: Vec<(String, usize)> = counts
        .into_iter()
        .filter(|(_, c)| *c >= min.max(1))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.into_iter().take(MAX_LEVELS).map(|(l, _)| l).collect()
}

fn column(label: &str) -> Column {
    Column {
        label: label.into(),
        mean: 0.0,
        std: 1.0,
        coef: 0.0,
    }
}

fn raw_row(specs: &[Feature], features: &Features) -> Vec<f64> {
    specs
        .iter()
        .flat_map(|f| encode_raw(f, features.get(&f.name)))
        .collect()
}

/// Sets each column's mean and (population) standard deviation from the training rows; a
/// constant column gets std 1 (its standardized value is 0 everywhere).
fn standardize(specs: &mut [Feature], x: &[Vec<f64>]) {
    let n = x.len().max(1) as f64;
    let mut k = 0;
    for f in specs.iter_mut() {
        for c in &mut f.columns {
            let mean = x.iter().map(|r| r[k]).sum::<f64>() / n;
            let var = x.iter().map(|r| (r[k] - mean).powi(2)).sum::<f64>() / n;
            c.mean = mean;
            c.std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
            k += 1;
        }
    }
}

fn scaled(specs: &[Feature], raw: &[f64]) -> Vec<f64> {
    specs
        .iter()
        .flat_map(|f| f.columns.iter())
        .zip(raw)
        .map(|(c, r)| (r - c.mean) / c.std)
        .collect()
}

/// Newton–Raphson (IRLS) for L2-penalized logistic regression; returns [intercept, w...]
/// and the iterations taken. Each step solves (XᵀSX + λI)Δ = −g by Cholesky, with
/// step-halving when the objective does not fall.
#[allow(clippy::needless_range_loop)] // index arithmetic mirrors the matrix formulas
pub fn newton(x: &[Vec<f64>], y: &[f64], l2: f64) -> Result<(Vec<f64>, usize), TrainError> {
    let n = x.len();
    let p = x.first().map_or(0, Vec::len) + 1;
    let row = |i: usize, j: usize| if j == 0 { 1.0 } else { x[i][j - 1] };
    let objective = |b: &[f64]| -> f64 {
        let mut loss = 0.0;
        for i in 0..n {
            let z: f64 = (0..p).map(|j| b[j] * row(i, j)).sum();
            // log(1 + e^z) − y z, computed without overflow.
            loss += if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            } - y[i] * z;
        }
        loss + 0.5 * l2 * b[1..].iter().map(|w| w * w).sum::<f64>()
    };
    let mut beta = vec![0.0; p];
    let mut current = objective(&beta);
    for iteration in 1..=MAX_ITERATIONS {
        let mut grad = vec![0.0; p];
        let mut hess = vec![0.0; p * p];
        for i in 0..n {
            let z: f64 = (0..p).map(|j| beta[j] * row(i, j)).sum();
            let mu = sigmoid(z);
            let w = (mu * (1.0 - mu)).max(1e-12);
            for a in 0..p {
                let xa = row(i, a);
                grad[a] += (mu - y[i]) * xa;
                let wa = w * xa;
                for b in 0..=a {
                    hess[a * p + b] += wa * row(i, b);
                }
            }
        }
        for a in 1..p {
            grad[a] += l2 * beta[a];
            hess[a * p + a] += l2.max(1e-10);
        }
        hess[0] += 1e-12;
        for a in 0..p {
            for b in 0..a {
                hess[b * p + a] = hess[a * p + b];
            }
        }
        let step = cholesky_solve(&hess, &grad, p).ok_or_else(|| TrainError::Numeric("the Hessian is not positive definite (a column repeats another exactly?); raise --l2".into()))?;
        let mut t = 1.0;
        let mut next = beta.clone();
        let mut improved = false;
        for _ in 0..30 {
            for j in 0..p {
                next[j] = beta[j] - t * step[j];
            }
            let obj = objective(&next);
            if obj.is_finite() && obj <= current + 1e-12 {
                current = obj;
                improved = true;
                break;
            }
            t *= 0.5;
        }
        let moved = step.iter().map(|s| (s * t).abs()).fold(0.0, f64::max);
        if improved {
            beta.clone_from(&next);
        }
        if !improved || moved < TOLERANCE {
            return Ok((beta, iteration));
        }
    }
    Ok((beta, MAX_ITERATIONS))
}

/// Solves A x = b for a symmetric positive-definite A (row-major p×p).
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * p + k] * l[j * p + k]).sum();
            if i == j {
                let d = a[i * p + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * p + i] = d.sqrt();
            } else {
                l[i * p + j] = (a[i * p + j] - s) / l[j * p + j];
            }
        }
    }
    let mut z = vec![0.0; p];
    for i in 0..p {
        let s: f64 = (0..i).map(|k| l[i * p + k] * z[k]).sum();
        z[i] = (b[i] - s) / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| l[k * p + i] * x[k]).sum();
        x[i] = (z[i] - s) / l[i * p + i];
    }
    Some(x)
}

/// ROC AUC: the chance a random converted lead scores above a random unconverted one
/// (ties count half) — the Mann–Whitney statistic, with average ranks for ties.
pub fn auc(scores: &[f64], converted: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            ranks[*k] = r;
        }
        i = j + 1;
    }
    let pos = converted.iter().filter(|c| **c).count() as f64;
    let neg = converted.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(converted)
        .filter(|(_, c)| **c)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Mean log loss, probabilities clipped to [1e-15, 1 − 1e-15] as scikit-learn does.
pub fn log_loss(p: &[f64], y: &[bool]) -> f64 {
    let n = p.len().max(1) as f64;
    p.iter()
        .zip(y)
        .map(|(p, y)| {
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            if *y {
                -p.ln()
            } else {
                -(1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / n
}

/// Holdout leads sorted by predicted probability, cut into `bins` near-equal groups.
pub fn calibration(p: &[f64], y: &[bool], bins: usize) -> Vec<Decile> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let n = idx.len();
    (0..bins.min(n))
        .map(|b| {
            let chunk = &idx[b * n / bins.min(n)..(b + 1) * n / bins.min(n)];
            let m = chunk.len().max(1) as f64;
            Decile {
                decile: b + 1,
                leads: chunk.len(),
                predicted: chunk.iter().map(|i| p[*i]).sum::<f64>() / m,
                observed: chunk.iter().filter(|i| y[**i]).count() as f64 / m,
            }
        })
        .collect()
}

/// The report `leadgate train` prints.
pub fn render(report: &Report, out: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Trained a {} model on {} leads ({} train, {} holdout), {:.1}% converted",
        report.kind.as_str(),
        report.rows,
        report.train_rows,
        report.holdout_rows,
        100.0 * report.base_rate,
    );
    if !report.split.is_empty() {
        let _ = writeln!(t, "Split: {}", report.split);
    }
    for (kind, auc) in &report.candidates {
        let _ = writeln!(
            t,
            "  --model auto: {} {}-fold cross-validated ROC AUC {auc:.4}",
            kind.as_str(),
            report.folds
        );
    }
    if report.kind == ModelKind::Gbm {
        let _ = writeln!(
            t,
            "{} trees (early stopping on a validation share of the training rows)",
            report.trees
        );
    } else {
        let _ = writeln!(t, "Converged in {} Newton steps", report.iterations);
    }
    let logistic = report.kind == ModelKind::Logistic;
    if logistic && report.cv.is_empty() {
        let _ = writeln!(t, "L2 penalty λ = {} (set with --l2)", report.l2);
    } else if logistic {
        let tried: Vec<String> = report
            .cv
            .iter()
            .map(|(l, loss)| format!("{l}: {loss:.4}"))
            .collect();
        let _ = writeln!(
            t,
            "L2 penalty λ = {} chosen by {}-fold cross-validation (log loss by λ — {})",
            report.l2,
            report.folds,
            tried.join(", ")
        );
    }
    match &report.platt {
        Some(c) => {
            let _ = writeln!(
                t,
                "Calibration: Platt, σ({:.4} · log-odds {:+.4}), fitted on {} out-of-fold predictions",
                c.slope, c.offset, c.rows
            );
        }
        None => {
            let _ = writeln!(
                t,
                "Calibration: none (the out-of-fold predictions do not rank upward)"
            );
        }
    }
    let u = &report.uncalibrated;
    let _ = writeln!(t, "\nHoldout            before     after calibration");
    let _ = writeln!(t, "  ROC AUC         {:.4}    {:.4}", u.auc, report.auc);
    let _ = writeln!(
        t,
        "  PR AUC          {:.4}    {:.4}",
        u.pr_auc, report.pr_auc
    );
    let _ = writeln!(
        t,
        "  log loss        {:.4}    {:.4}",
        u.log_loss, report.log_loss
    );
    let _ = writeln!(t, "  Brier           {:.4}    {:.4}", u.brier, report.brier);
    let _ = writeln!(
        t,
        "  ({}-fold cross-validated ROC AUC on the training rows: {:.4})",
        report.folds, report.cv_auc
    );
    let _ = writeln!(
        t,
        "\nReliability by decile (holdout, lowest predicted first)"
    );
    let _ = writeln!(
        t,
        "  decile  leads  observed  predicted before  predicted after"
    );
    for (i, d) in report.calibration.iter().enumerate() {
        let before = u.deciles.get(i).map_or(f64::NAN, |b| b.predicted);
        let _ = writeln!(
            t,
            "  {:>6}  {:>5}  {:>7.1}%  {:>15.1}%  {:>14.1}%",
            d.decile,
            d.leads,
            100.0 * d.observed,
            100.0 * before,
            100.0 * d.predicted
        );
    }
    if report.kind == ModelKind::Gbm {
        let _ = writeln!(
            t,
            "\nMost influential features (mean |log-odds| contribution on the holdout)"
        );
        for (name, c) in &report.top_positive {
            let _ = writeln!(t, "  {c:>7.3}  {name}");
        }
    } else {
        let _ = writeln!(
            t,
            "\nTop positive factors (log-odds per standard deviation)"
        );
        for (name, c) in &report.top_positive {
            let _ = writeln!(t, "  {c:>+7.3}  {name}");
        }
        let _ = writeln!(t, "\nTop negative factors");
        for (name, c) in &report.top_negative {
            let _ = writeln!(t, "  {c:>+7.3}  {name}");
        }
    }
    if !report.dropped.is_empty() {
        let _ = writeln!(t, "\nLeft out");
        for (name, why) in &report.dropped {
            let _ = writeln!(t, "  {name}: {why}");
        }
    }
    let _ = writeln!(t, "\nModel written to {}", out.display());
    let _ = writeln!(
        t,
        "Use it in scoring.toml:\n  [model]\n  path = \"{}\"\n  weight = 0.5",
        out.display()
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        assert_eq!(auc(&[0.1, 0.9], &[false, true]), 1.0);
        assert_eq!(auc(&[0.9, 0.1], &[false, true]), 0.0);
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), 0.5);
        // 3 positives, 2 negatives: pairs won 5 of 6.
        let s = [0.2, 0.4, 0.6, 0.8, 0.3];
        let y = [false, true, true, true, false];
        assert!((auc(&s, &y) - 1.0).abs() < 1e-12);
        let y = [true, false, true, true, false];
        assert!((auc(&s, &y) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn newton_matches_the_closed_form_for_an_intercept_only_model() {
        // No columns: the optimum is the log-odds of the base rate.
        let x = vec![vec![]; 10];
        let y = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let (b, _) = newton(&x, &y, 1.0).unwrap();
        assert!((b[0] - (0.3f64 / 0.7).ln()).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn the_stratified_split_keeps_the_base_rate_and_is_reproducible() {
        let examples: Vec<Example> = (0..200)
            .map(|i| Example {
                features: Features::new(),
                converted: i % 5 == 0,
                holdout: None,
            })
            .collect();
        let opts = TrainOptions::default();
        let a = split(&examples, &opts);
        assert_eq!(a, split(&examples, &opts));
        let held: Vec<&Example> = examples
            .iter()
            .zip(&a)
            .filter(|(_, h)| **h)
            .map(|(e, _)| e)
            .collect();
        assert_eq!(held.len(), 50);
        assert_eq!(held.iter().filter(|e| e.converted).count(), 10);
    }

    #[test]
    fn rare_levels_are_pooled_and_identifiers_left_out() {
        let examples: Vec<Example> = (0..100)
            .map(|i| {
                let mut f = Features::new();
                let industry = if i < 50 {
                    "Software"
                } else if i < 95 {
                    "Retail"
                } else {
                    "Mining"
                };
                f.insert(
                    "attributes.industry".into(),
                    RawValue::Text(industry.into()),
                );
                f.insert("attributes.ref".into(), RawValue::Text(format!("id-{i}")));
                Example {
                    features: f,
                    converted: i % 2 == 0,
                    holdout: None,
                }
            })
            .collect();
        let refs: Vec<&Example> = examples.iter().collect();
        let (specs, dropped) = design(&refs, &TrainOptions::default());
        assert_eq!(specs.len(), 1);
        let labels: Vec<&str> = specs[0].columns.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["Software", "Retail", OTHER_LEVEL]);
        assert_eq!(dropped[0].0, "attributes.ref");
    }
}
