//! `routing.toml` as written.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Ordered: the first rule that matches routes the lead.
    #[serde(default)]
    pub rule: Vec<RouteRuleConfig>,
    #[serde(default)]
    pub pool: Vec<PoolConfig>,
    /// What happens to a lead no rule matched.
    pub fallback: ActionConfig,
    #[serde(default)]
    pub account_match: Option<AccountMatchConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRuleConfig {
    pub id: String,
    /// A CEL condition over lead, company, person, email, account, score, grade.
    pub when: Spanned<String>,
    #[serde(flatten)]
    pub action: ActionConfig,
}

/// Exactly one of these is set (checked at load).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionConfig {
    #[serde(default)]
    pub assign: Option<AssignConfig>,
    #[serde(default)]
    pub enroll: Option<EnrollConfig>,
    #[serde(default)]
    pub review: Option<ReviewConfig>,
    #[serde(default)]
    pub disqualify: Option<DisqualifyConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignConfig {
    /// A pool id.
    #[serde(default)]
    pub pool: Option<String>,
    /// A named CRM owner id.
    #[serde(default)]
    pub owner: Option<String>,
    /// `account_owner`: the owner of the matched account.
    #[serde(default)]
    pub to: Option<String>,
    /// How long the owner has to act before reassignment (`4h`).
    #[serde(default)]
    pub sla: Option<String>,
    /// Where the lead goes when every pool member is unavailable: a pool id or `fallback`.
    #[serde(default)]
    pub overflow: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollConfig {
    pub sequence: String,
    /// The CRM or sequencing connector that runs the sequence.
    #[serde(default)]
    pub connector: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    #[serde(default)]
    pub queue: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisqualifyConfig {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub id: String,
    #[serde(default)]
    pub strategy: Strategy,
    pub members: Vec<MemberConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    RoundRobin,
    Weighted,
    LoadBalanced,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The CRM owner id.
    pub owner: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub capacity_per_day: Option<u32>,
    /// `false` while out of office.
    #[serde(default = "default_true")]
    pub available: bool,
}

fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountMatchConfig {
    /// A local accounts CSV (`account_id,domain,name,owner,...`) for the embedded default.
    #[serde(default)]
    pub file: Option<PathBuf>,
}
