//! The predictive model: a logistic regression or gradient-boosted trees
//! ([`gbm`](super::gbm)) over encoded [`features`](super::features), stored as versioned
//! JSON (`leadgate train` writes it, `[model] path` loads it).
//!
//! Every column is standardized with the training mean and standard deviation, so a
//! coefficient is the change in log-odds per standard deviation and the intercept is the
//! log-odds of an average lead — which is what the explanation compares each lead against.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::calibrate::Platt;
use super::features::{Features, RawValue};
use super::gbm::Trees;

/// The `format` string every model file carries.
pub const MODEL_FORMAT: &str = "leadgate-model";
/// The model file layout this build writes; bumped on any incompatible change.
pub const MODEL_VERSION: u32 = 2;
/// The oldest layout this build still reads (version 1: logistic only, no digest).
pub const OLDEST_MODEL_VERSION: u32 = 1;
/// The category column for levels pooled as rare (and levels never seen in training).
pub const OTHER_LEVEL: &str = "(other)";
/// The category column for a lead without the field.
pub const MISSING_LEVEL: &str = "(missing)";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} is not a leadgate model file: {reason}")]
    Format { path: String, reason: String },
    #[error("{path} is model format version {found}; this leadgate reads versions {OLDEST_MODEL_VERSION} to {MODEL_VERSION} — retrain with `leadgate train`")]
    Version { path: String, found: u32 },
    #[error("cannot write model file {path}: {reason}")]
    Write { path: String, reason: String },
}

/// Which learner a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Version-1 files carry no kind: they are all logistic.
    #[default]
    Logistic,
    Gbm,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Logistic => "logistic",
            ModelKind::Gbm => "gbm",
        }
    }
}

/// A trained model, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub kind: ModelKind,
    /// Creation time (RFC 3339).
    pub trained_at: String,
    /// The file and outcome column it was trained on.
    pub source: String,
    pub outcome: String,
    /// The L2 penalty λ (scikit-learn's `C` is 1/λ).
    pub l2: f64,
    /// Log-odds an explanation starts from: an average lead (every standardized column at
    /// 0) for `logistic`, the trees' expected value for `gbm`.
    pub intercept: f64,
    pub features: Vec<Feature>,
    /// The holdout evaluation made when it was trained.
    #[serde(default)]
    pub metrics: Value,
    /// SHA-256 (hex) of the training rows (features and outcome, in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_digest: Option<String>,
    /// The boosted trees of a `gbm` model (over the standardized columns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<Trees>,
    /// Platt scaling fitted on out-of-fold predictions; absent in files written before
    /// calibration (their raw probability is used as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Platt>,
    /// The training leads' feature and score distribution, for the drift report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_distribution: Option<super::drift::Baseline>,
}

/// One source feature and the columns it is encoded into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub encoding: Encoding,
    pub columns: Vec<Column>,
}

/// How a raw value becomes columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    /// One column: the number (`log`: ln(1 + x), for long-tailed counts and sizes),
    /// clipped to the training range; a missing value takes `impute`. With
    /// `missing_column`, a second column flags a missing value.
    Numeric {
        log: bool,
        min: f64,
        max: f64,
        impute: f64,
        missing_column: bool,
    },
    /// One column per level (the column's `label` is the level); a value not among them
    /// goes to the `(other)` column, a missing one to `(missing)`, when those exist.
    Category,
    /// One column per level, several may be set (a list such as `company.tech`).
    Set,
}

/// One model column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// `value`, `missing`, or the category level.
    pub label: String,
    pub mean: f64,
    pub std: f64,
    pub coef: f64,
}

/// One feature's share of a lead's log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: String,
    /// The lead's value (`null` when missing).
    pub value: Value,
    /// Log-odds added to the intercept.
    pub logit: f64,
}

impl Model {
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Read {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let head: Value = serde_json::from_str(&text).map_err(|e| ModelError::Format {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        if head.get("format").and_then(Value::as_str) != Some(MODEL_FORMAT) {
            return Err(ModelError::Format {
                path: p,
                reason: format!("no \"format\": \"{MODEL_FORMAT}\" key"),
            });
        }
        let found = head.get("version").and_then(Value::as_u64).unwrap_or(0) as u32;
        if !(OLDEST_MODEL_VERSION..=MODEL_VERSION).contains(&found) {
            return Err(ModelError::Version { path: p, found });
        }
        let model: Model = serde_json::from_value(head).map_err(|e| ModelError::Format {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        model
            .validate()
            .map_err(|reason| ModelError::Format { path: p, reason })?;
        Ok(model)
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let err = |reason: String| ModelError::Write {
            path: path.display().to_string(),
            reason,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        std::fs::write(path, text + "\n").map_err(|e| err(e.to_string()))
    }

    fn validate(&self) -> Result<(), String> {
        if !self.intercept.is_finite() {
            return Err("the intercept is not a finite number".into());
        }
        if let Some(c) = &self.calibration {
            c.validate()?;
        }
        match (self.kind, &self.trees) {
            (ModelKind::Gbm, None) => return Err("a gbm model without `trees`".into()),
            (ModelKind::Gbm, Some(t)) if t.columns_needed() > self.width() => {
                return Err(format!(
                    "the trees split on column {} but the features encode only {}",
                    t.columns_needed(),
                    self.width()
                ))
            }
            (ModelKind::Logistic, Some(_)) => {
                return Err("a logistic model with `trees` (is `kind` missing?)".into())
            }
            _ => {}
        }
        for f in &self.features {
            if f.columns.is_empty() {
                return Err(format!("feature `{}` has no columns", f.name));
            }
            for c in &f.columns {
                if !(c.mean.is_finite() && c.coef.is_finite() && c.std.is_finite() && c.std > 0.0) {
                    return Err(format!(
                        "feature `{}` column `{}` has a non-finite or zero-width scale",
                        f.name, c.label
                    ));
                }
            }
        }
        Ok(())
    }

    /// Number of model columns (the length of [`Model::encode`]'s vector).
    pub fn width(&self) -> usize {
        self.features.iter().map(|f| f.columns.len()).sum()
    }

    /// The lead's standardized column values, in model order.
    pub fn encode(&self, features: &Features) -> Vec<f64> {
        self.encode_by(|_, f| features.get(&f.name))
    }

    /// [`Model::encode`] from the values of the model's features by place (what
    /// [`Extractor`](super::features::Extractor) gives for its features).
    pub fn encode_values(&self, values: &[Option<RawValue>]) -> Vec<f64> {
        self.encode_by(|i, _| values.get(i).and_then(Option::as_ref))
    }

    fn encode_by<'a>(&self, value: impl Fn(usize, &Feature) -> Option<&'a RawValue>) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.width());
        for (i, f) in self.features.iter().enumerate() {
            let mut columns = f.columns.iter();
            raw_columns(f, value(i, f), |r| {
                if let Some(c) = columns.next() {
                    x.push((r - c.mean) / c.std);
                }
            });
        }
        x
    }

    /// Calibrated log-odds for a lead (what the score is made of).
    pub fn logit(&self, features: &Features) -> f64 {
        self.calibrate(self.raw_logit(features))
    }

    /// The calibrated log-odds an explanation starts from: the intercept, calibrated.
    pub fn baseline(&self) -> f64 {
        self.calibrate(self.intercept)
    }

    /// Applies the model's calibration (if any) to raw log-odds.
    pub fn calibrate(&self, z: f64) -> f64 {
        self.calibration.as_ref().map_or(z, |c| c.apply(z))
    }

    /// Probability before calibration (the training report compares both).
    pub fn predict_raw(&self, features: &Features) -> f64 {
        sigmoid(self.raw_logit(features))
    }

    /// Log-odds before calibration, straight from the regression or the trees.
    pub fn raw_logit(&self, features: &Features) -> f64 {
        let x = self.encode(features);
        match &self.trees {
            Some(t) => t.logit(&x),
            None => self.intercept + self.columns().zip(x).map(|(c, v)| c.coef * v).sum::<f64>(),
        }
    }

    /// Probability of the outcome for a lead.
    pub fn predict(&self, features: &Features) -> f64 {
        sigmoid(self.logit(features))
    }

    /// Each feature's contribution to the lead's calibrated log-odds (they sum to
    /// logit − baseline; for `gbm` exact TreeSHAP values, a feature's columns added
    /// together). Platt scaling is linear, so calibration multiplies each by its slope.
    pub fn contributions(&self, features: &Features) -> Vec<Contribution> {
        let mut c = self.raw_contributions(features);
        if let Some(p) = &self.calibration {
            for c in &mut c {
                c.logit *= p.slope;
            }
        }
        c
    }

    /// The calibrated probability and the contributions it is made of, from one pass over
    /// the model (what scoring does): σ(baseline + Σ contributions), which is
    /// [`Model::predict`] up to rounding.
    pub fn explain(&self, features: &Features) -> (f64, Vec<Contribution>) {
        let c = self.contributions(features);
        let z = self.baseline() + c.iter().map(|c| c.logit).sum::<f64>();
        (sigmoid(z), c)
    }

    /// Contributions to the raw (uncalibrated) log-odds: they sum to raw_logit − intercept.
    pub fn raw_contributions(&self, features: &Features) -> Vec<Contribution> {
        let logits = self.raw_logits_by(|_, f| features.get(&f.name));
        self.features
            .iter()
            .zip(logits)
            .map(|(f, logit)| Contribution {
                feature: f.name.clone(),
                value: features.get(&f.name).map_or(Value::Null, RawValue::to_json),
                logit,
            })
            .collect()
    }

    /// [`Model::contributions`]' log-odds alone, by feature place, from the values of the
    /// model's features by place: what scoring needs of a lead, without naming the features.
    pub fn feature_logits(&self, values: &[Option<RawValue>]) -> Vec<f64> {
        let mut logits = self.raw_logits_by(|i, _| values.get(i).and_then(Option::as_ref));
        if let Some(p) = &self.calibration {
            for l in &mut logits {
                *l *= p.slope;
            }
        }
        logits
    }

    /// The encoding of this model's features made ready for one lead at a time (what
    /// scoring keeps beside a loaded model).
    pub fn encoder(&self) -> Encoder {
        Encoder::new(self)
    }

    /// [`Model::feature_logits`] with `encoder` (made by [`Model::encoder`] of this model):
    /// the same values, without looking category levels up by comparing strings.
    pub fn feature_logits_with(&self, encoder: &Encoder, values: &[Option<RawValue>]) -> Vec<f64> {
        let Some(t) = &self.trees else {
            return self.feature_logits(values);
        };
        let mut row = Vec::new();
        encoder.encode(self, values, &mut row);
        let per_column = t.contributions(&row);
        let slope = self.calibration.as_ref().map(|p| p.slope);
        let mut at = 0;
        self.features
            .iter()
            .map(|f| {
                let n = f.columns.len();
                let logit: f64 = per_column.get(at..at + n).map_or(0.0, |s| s.iter().sum());
                at += n;
                slope.map_or(logit, |s| logit * s)
            })
            .collect()
    }

    /// Each feature's share of the raw log-odds, in model order.
    fn raw_logits_by<'a>(
        &self,
        value: impl Fn(usize, &Feature) -> Option<&'a RawValue>,
    ) -> Vec<f64> {
        if let Some(t) = &self.trees {
            let per_column = t.contributions(&self.encode_by(&value));
            let mut at = 0;
            return self
                .features
                .iter()
                .map(|f| {
                    let n = f.columns.len();
                    let logit = per_column.get(at..at + n).map_or(0.0, |s| s.iter().sum());
                    at += n;
                    logit
                })
                .collect();
        }
        self.features
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut columns = f.columns.iter();
                let mut logit = 0.0;
                raw_columns(f, value(i, f), |r| {
                    if let Some(c) = columns.next() {
                        logit += c.coef * (r - c.mean) / c.std;
                    }
                });
                logit
            })
            .collect()
    }

    pub fn columns(&self) -> impl Iterator<Item = &Column> {
        self.features.iter().flat_map(|f| f.columns.iter())
    }

    /// Readable column names (`company.employees`, `attributes.budget = 50k+`) with their
    /// coefficients, in model order.
    pub fn coefficients(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for f in &self.features {
            for c in &f.columns {
                let name = match (&f.encoding, c.label.as_str()) {
                    (Encoding::Numeric { log: true, .. }, "value") => format!("{} (log)", f.name),
                    (Encoding::Numeric { .. }, "value") => f.name.clone(),
                    (Encoding::Numeric { .. }, _) => format!("{} missing", f.name),
                    (Encoding::Set, l) => format!("{} has {l}", f.name),
                    (Encoding::Category, l) => format!("{} = {l}", f.name),
                };
                out.push((name, c.coef));
            }
        }
        out
    }

    /// What `leadgate model show` prints: kind, creation time, source, digest, metrics and
    /// features (with their encoding and column count).
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(t, "kind         {}", self.kind.as_str());
        let _ = writeln!(t, "format       {} version {}", self.format, self.version);
        let _ = writeln!(t, "created      {}", self.trained_at);
        let _ = writeln!(
            t,
            "trained on   {} (outcome `{}`)",
            self.source, self.outcome
        );
        let _ = writeln!(
            t,
            "data digest  {}",
            self.data_digest
                .as_deref()
                .unwrap_or("(none: written before model files carried one)")
        );
        match &self.calibration {
            Some(c) => {
                let _ = writeln!(
                    t,
                    "calibration  Platt: σ({:.4} · log-odds {:+.4}), fitted on {} out-of-fold predictions ({} folds)",
                    c.slope, c.offset, c.rows, c.folds
                );
            }
            None => {
                let _ = writeln!(t, "calibration  none");
            }
        }
        if let Some(trees) = &self.trees {
            let _ = writeln!(t, "trees        {}", trees.len());
        } else {
            let _ = writeln!(t, "l2 penalty   {}", self.l2);
        }
        let _ = writeln!(t, "metrics");
        match &self.metrics {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    let _ = writeln!(t, "  {k:<14} {v}");
                }
            }
            _ => {
                let _ = writeln!(t, "  (none recorded)");
            }
        }
        let _ = writeln!(t, "features     {}", self.features.len());
        for f in &self.features {
            let enc = match &f.encoding {
                Encoding::Numeric { log: true, .. } => "numeric, log",
                Encoding::Numeric { .. } => "numeric",
                Encoding::Category => "category",
                Encoding::Set => "set",
            };
            let _ = writeln!(t, "  {:<28} {enc}, {} columns", f.name, f.columns.len());
        }
        t
    }

    /// A per-feature summary for readers: name → coefficient map.
    pub fn coefficient_map(&self) -> BTreeMap<String, f64> {
        self.coefficients().into_iter().collect()
    }
}

/// A model's encoding, prepared at load: every column's standardized 0 and 1, and each
/// category's level → column map, so encoding a lead is a copy of the all-zero row and a
/// look-up per category instead of a string comparison per column.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// (0 − mean) / std and (1 − mean) / std per column: the values `raw_columns` gives a
    /// category's columns, standardized with the same operations.
    zero: Vec<f64>,
    one: Vec<f64>,
    /// Per feature: its first column, and for a category its levels.
    features: Vec<(usize, Option<Levels>)>,
}

#[derive(Debug, Clone)]
struct Levels {
    /// (label, its first column within the feature), sorted by label: a feature has a few
    /// dozen levels at most, and a binary search of them costs less than hashing the value.
    by_label: Vec<(Box<str>, usize)>,
    other: Option<usize>,
    missing: Option<usize>,
}

impl Levels {
    fn get(&self, label: &str) -> Option<usize> {
        self.by_label
            .binary_search_by(|(l, _)| (**l).cmp(label))
            .ok()
            .map(|at| self.by_label[at].1)
    }
}

impl Encoder {
    fn new(model: &Model) -> Self {
        let mut zero = Vec::with_capacity(model.width());
        let mut one = Vec::with_capacity(model.width());
        let mut features = Vec::with_capacity(model.features.len());
        for f in &model.features {
            features.push((
                zero.len(),
                matches!(f.encoding, Encoding::Category).then(|| {
                    let mut by_label: Vec<(Box<str>, usize)> = f
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.label.as_str().into(), i))
                        .collect();
                    // Stable: of equal labels the first column stays, as `raw_columns` picks.
                    by_label.sort_by(|a, b| a.0.cmp(&b.0));
                    by_label.dedup_by(|later, first| later.0 == first.0);
                    let mut levels = Levels {
                        by_label,
                        other: None,
                        missing: None,
                    };
                    levels.other = levels.get(OTHER_LEVEL);
                    levels.missing = levels.get(MISSING_LEVEL);
                    levels
                }),
            ));
            for c in &f.columns {
                zero.push((0.0 - c.mean) / c.std);
                one.push((1.0 - c.mean) / c.std);
            }
        }
        Self {
            zero,
            one,
            features,
        }
    }

    /// The lead's standardized columns into `out`, equal to [`Model::encode_values`].
    pub fn encode(&self, model: &Model, values: &[Option<RawValue>], out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.zero);
        for (i, (f, (start, levels))) in model.features.iter().zip(&self.features).enumerate() {
            let value = values.get(i).and_then(Option::as_ref);
            match levels {
                Some(levels) => {
                    let hit = match value {
                        None => levels.missing,
                        Some(RawValue::Text(t)) => levels.get(t),
                        Some(RawValue::Num(n)) => levels.get(&format_number(*n)),
                        Some(RawValue::Bool(b)) => levels.get(if *b { "true" } else { "false" }),
                        Some(RawValue::List(l)) => levels.get(&l.join(",")),
                    };
                    let hit = match (value, hit) {
                        (Some(_), None) => levels.other,
                        (_, hit) => hit,
                    };
                    if let Some(c) = hit {
                        out[start + c] = self.one[start + c];
                    }
                }
                None => {
                    let mut at = *start;
                    let mut columns = f.columns.iter();
                    raw_columns(f, value, |r| {
                        if let Some(c) = columns.next() {
                            out[at] = (r - c.mean) / c.std;
                            at += 1;
                        }
                    });
                }
            }
        }
    }
}

/// The unstandardized column values of one feature for one lead.
pub(crate) fn encode_raw(f: &Feature, value: Option<&RawValue>) -> Vec<f64> {
    let mut out = Vec::with_capacity(f.columns.len());
    raw_columns(f, value, |v| out.push(v));
    out
}

/// Hands each of a feature's unstandardized column values to `put`, in column order, without
/// building a vector per feature (scoring encodes every lead).
fn raw_columns(f: &Feature, value: Option<&RawValue>, mut put: impl FnMut(f64)) {
    match &f.encoding {
        Encoding::Numeric {
            log,
            min,
            max,
            impute,
            missing_column,
        } => {
            let number = match value {
                Some(RawValue::Num(n)) => Some(*n),
                Some(RawValue::Bool(b)) => Some(f64::from(u8::from(*b))),
                Some(RawValue::Text(t)) => t.parse::<f64>().ok(),
                _ => None,
            };
            match number {
                Some(n) => {
                    put(transform(n, *log).clamp(*min, *max));
                    if *missing_column {
                        put(0.0);
                    }
                }
                None => {
                    put(*impute);
                    if *missing_column {
                        put(1.0);
                    }
                }
            }
        }
        Encoding::Category => {
            let level: Option<std::borrow::Cow<'_, str>> = match value {
                None => None,
                Some(RawValue::Text(t)) => Some(t.as_str().into()),
                Some(RawValue::Num(n)) => Some(format_number(*n).into()),
                Some(RawValue::Bool(b)) => Some(if *b { "true" } else { "false" }.into()),
                Some(RawValue::List(l)) => Some(l.join(",").into()),
            };
            let target = match &level {
                None => MISSING_LEVEL,
                Some(l) if f.columns.iter().any(|c| c.label == **l) => l.as_ref(),
                Some(_) => OTHER_LEVEL,
            };
            // The first column with the level (labels are unique within a feature).
            let mut hit = false;
            for c in &f.columns {
                let on = !hit && c.label == target;
                hit |= on;
                put(if on { 1.0 } else { 0.0 });
            }
        }
        Encoding::Set => {
            let lowered;
            let items: &[String] = match value {
                Some(RawValue::List(l)) => l,
                Some(RawValue::Text(t)) => {
                    lowered = [t.to_lowercase()];
                    &lowered
                }
                _ => &[],
            };
            for c in &f.columns {
                put(if items.iter().any(|i| i == &c.label) {
                    1.0
                } else {
                    0.0
                });
            }
        }
    }
}

/// `ln(1 + x)` for non-negative long-tailed values, `x` otherwise.
pub(crate) fn transform(x: f64, log: bool) -> f64 {
    if log {
        x.max(0.0).ln_1p()
    } else {
        x
    }
}

/// Integers without a trailing `.0`, so `3` and `3.0` are one category level.
pub(crate) fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}
