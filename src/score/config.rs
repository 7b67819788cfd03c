//! `scoring.toml` as written.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// Grade name → lowest score (0–100) of that grade.
    #[serde(default)]
    pub grades: BTreeMap<String, i64>,
    /// Dimension → most points that dimension may add.
    #[serde(default)]
    pub caps: BTreeMap<String, f64>,
    #[serde(default)]
    pub rule: Vec<ScoreRuleConfig>,
    #[serde(default)]
    pub event: Vec<EventRuleConfig>,
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
    /// Most points this rule may give one lead.
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
}

fn default_event_dimension() -> String {
    "behavioral".into()
}
