//! `scoring.toml` as written.
//!
//! The top-level `[grades]`, `[caps]`, `[[rule]]` and `[[event]]` make the default score,
//! named `lead` (a flat file of rules is still a complete scoring config). `[[score]]`
//! sections add named scores — `fit`, `engagement`, one per product line, or a weighted
//! combination of others — each with its own rules, caps and grades.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// The score that becomes the decision's `score` and `grade` (and routing's `score`,
    /// `grade`); default: the top-level rules' score, `lead`.
    #[serde(default)]
    pub primary: Option<String>,
    /// Grade name → lowest score (0–100) of that grade, for the default score.
    #[serde(default)]
    pub grades: BTreeMap<String, i64>,
    /// Dimension → most points that dimension may add to the default score (a negative
    /// cap bounds how much a negative dimension may take away).
    #[serde(default)]
    pub caps: BTreeMap<String, f64>,
    /// Named lists rules can read as `lists.NAME`: inline, or a file (one value a line).
    #[serde(default)]
    pub lists: BTreeMap<String, ListConfig>,
    #[serde(default)]
    pub rule: Vec<ScoreRuleConfig>,
    #[serde(default)]
    pub event: Vec<EventRuleConfig>,
    #[serde(default)]
    pub score: Vec<NamedScoreConfig>,
    /// The predictive model blended into a score.
    #[serde(default)]
    pub model: Option<ModelConfig>,
    /// How engagement rolls up to the account (`account.score`).
    #[serde(default)]
    pub account: Option<AccountConfig>,
}

/// A named list: `competitors = ["rival.com"]` or `competitors = "competitors.txt"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ListConfig {
    Inline(Vec<String>),
    File(String),
}

/// Which named scores a rule counts towards: `score = "analytics"` or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ScoreRefs {
    One(String),
    Many(Vec<String>),
}

impl ScoreRefs {
    pub fn ids(&self) -> Vec<String> {
        match self {
            ScoreRefs::One(s) => vec![s.clone()],
            ScoreRefs::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRuleConfig {
    pub id: String,
    /// demographic, firmographic, behavioral, engagement, intent, fit, negative ...
    pub dimension: String,
    /// A CEL condition.
    pub when: Spanned<String>,
    /// Points added when it matches (negative to subtract).
    pub points: f64,
    /// Free text for admins; shown by `leadgate explain`.
    #[serde(default)]
    pub description: Option<String>,
    /// The named score(s) this rule counts towards *instead of* the default one (list
    /// `lead` to count in both). Absent: the default score, and every named score that
    /// takes this rule's dimension.
    #[serde(default)]
    pub score: Option<ScoreRefs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRuleConfig {
    pub id: String,
    /// The event type it scores (`page_view`, `form_submit` ...).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "default_event_dimension")]
    pub dimension: String,
    /// Optional CEL condition on `event` (and the lead).
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    /// Points per matching event, at age zero.
    pub points: f64,
    /// Points halve every `half_life` (`14d`); none means no decay.
    #[serde(default)]
    pub half_life: Option<String>,
    /// Most points this rule may give one lead (for a negative rule: most it may take).
    #[serde(default)]
    pub max: Option<f64>,
    /// How long an event of this type is kept in the person's history (`180d`); older
    /// events are dropped (issue 25). None keeps them.
    #[serde(default)]
    pub retention: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// As for `[[rule]]`.
    #[serde(default)]
    pub score: Option<ScoreRefs>,
}

fn default_event_dimension() -> String {
    "behavioral".into()
}

/// A `[[score]]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedScoreConfig {
    /// Visible to routing as `scores.ID` and `grades.ID`.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Untagged rules of these dimensions count towards this score.
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// A weighted sum of other scores (`{ fit = 0.5, engagement = 0.5 }`) instead of rules.
    #[serde(default)]
    pub combine: BTreeMap<String, f64>,
    /// As the top-level `[caps]`, for this score.
    #[serde(default)]
    pub caps: BTreeMap<String, f64>,
    /// As the top-level `[grades]`, for this score (default: the top-level grades).
    #[serde(default)]
    pub grades: BTreeMap<String, i64>,
}

/// `[model]`: blend a trained model (`leadgate train`) into a score.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model file written by `leadgate train`, relative to this file.
    pub path: String,
    /// 0–1: the model's share of the score. 1.0 = the model alone (probability × 100).
    #[serde(default = "default_model_weight")]
    pub weight: f64,
    /// The score it blends into; default: the primary score.
    #[serde(default)]
    pub score: Option<String>,
    /// How many of the model's features the explanation names per lead; the rest are
    /// summed into one factor.
    #[serde(default = "default_model_factors")]
    pub explain_top: usize,
}

/// Half the score from the model, half from the rules: a cautious start for a new model.
fn default_model_weight() -> f64 {
    0.5
}

/// Einstein shows a handful of reasons per lead; five keeps the explanation readable.
fn default_model_factors() -> usize {
    5
}

/// `[account]`: how the engagement of all leads of an account (same domain) rolls up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The score summed across the account's leads; default `engagement` when such a
    /// score exists, else the primary score.
    #[serde(default)]
    pub score: Option<String>,
    /// Each lead's stored score fades by half every `half_life` since it was decided.
    #[serde(default)]
    pub half_life: Option<String>,
    /// Set false to leave `account.score` unset.
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}
