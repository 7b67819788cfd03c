//! `routing.toml` as written: serde types only. [`super::Router::from_file`] checks them
//! (every issue at once, with file, line and rule) and builds the live router.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Ordered: the first rule that matches routes the lead.
    #[serde(default)]
    pub rule: Vec<RouteRuleConfig>,
    /// Owner pools that `assign = { pool = ... }` picks from.
    #[serde(default)]
    pub pool: Vec<PoolConfig>,
    /// Named territories, defined once; rules test them with `in_territory('west')`.
    #[serde(default)]
    pub territory: Vec<TerritoryConfig>,
    /// What happens to a lead no rule matched.
    pub fallback: ActionConfig,
    /// Where leads are matched to existing CRM accounts.
    #[serde(default)]
    pub account_match: Option<AccountMatchConfig>,
    /// What happens when an owner does not act on an assignment within its `sla`.
    #[serde(default)]
    pub sla: Option<SlaConfig>,
    /// `[[trigger]]`: read and checked by the re-scoring sweep (src/rescore/trigger.rs).
    #[serde(default)]
    pub trigger: Vec<toml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRuleConfig {
    pub id: Spanned<String>,
    /// A CEL condition over lead, company, person, email, account, score, grade,
    /// territory and territories.
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
    /// How long the owner has to touch the lead before it is reassigned or escalated (`4h`).
    #[serde(default)]
    pub sla: Option<String>,
    /// Where the lead goes when no pool member can take it: a pool id or `fallback`
    /// (the default).
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
    /// The review queue's name (`ops`, `data-quality` ...); one default queue without it.
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
    pub id: Spanned<String>,
    /// `round_robin` (in turn), `weighted` (in turn, `weight` turns each) or
    /// `load_balanced` (whoever has the fewest assignments today).
    #[serde(default)]
    pub strategy: Strategy,
    /// The members' time zone unless a member sets its own (IANA name, `America/New_York`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The members' working hours unless a member sets its own (`"09:00-17:30"`).
    #[serde(default)]
    pub hours: Option<String>,
    /// The members' working days unless a member sets its own (`["mon", "tue", ...]`).
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// Dates off for every member (holidays): `"2026-12-25"` or a range
    /// `"2026-12-24..2026-12-31"`.
    #[serde(default)]
    pub dates_off: Vec<String>,
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
    /// Turns per cycle in a `weighted` pool.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Most leads this owner takes per day (in their time zone), counted across pools.
    #[serde(default)]
    pub capacity_per_day: Option<u32>,
    /// `false` while out of office.
    #[serde(default = "default_true")]
    pub available: bool,
    /// Paused: in the pool but taking no leads (also settable at run time through
    /// `POST /v1/pools/{pool}/members/{owner}/pause`).
    #[serde(default)]
    pub paused: bool,
    /// Overrides the pool's time zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Overrides the pool's working hours.
    #[serde(default)]
    pub hours: Option<String>,
    /// Overrides the pool's working days.
    #[serde(default)]
    pub days: Option<Vec<String>>,
    /// This member's dates off, on top of the pool's.
    #[serde(default)]
    pub dates_off: Vec<String>,
}

/// A member weighs one turn unless it says otherwise.
fn default_weight() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerritoryConfig {
    pub id: Spanned<String>,
    /// ISO country codes (`US`, `GB`) or names; any of them matches.
    #[serde(default)]
    pub countries: Vec<String>,
    /// States or regions (`CA` or `California`); any of them matches.
    #[serde(default)]
    pub states: Vec<String>,
    /// Postal code prefixes (`"94"`, `"SW1"`); any of them matches.
    #[serde(default)]
    pub postal_prefixes: Vec<String>,
    /// The smallest company (employees) in the territory.
    #[serde(default)]
    pub employees_min: Option<i64>,
    /// The largest company (employees) in the territory.
    #[serde(default)]
    pub employees_max: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountMatchConfig {
    /// A local accounts CSV (`account_id,domain,name,owner,...`) for the embedded default.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// How long an account lookup is remembered (`"10m"`), for CRM account searches.
    #[serde(default)]
    pub cache_ttl: Option<String>,
    /// Where accounts are looked up, in order: `"crm"`, `"file"`, or both
    /// (`["crm", "file"]`). Default: `file` (the accounts CSV).
    #[serde(default)]
    pub source: Option<AccountSources>,
    /// The CRM connector searched with `source = "crm"` (default: `[delivery] target`).
    #[serde(default)]
    pub crm: Option<String>,
    /// Salesforce: the Account field holding the website or domain (`Website`, or a
    /// custom indexed `Domain__c`).
    #[serde(default)]
    pub domain_field: Option<String>,
    /// Fall back to the lead's company name when no domain matched: the lowest similarity
    /// (0–1) of the normalized names that counts as a match. Off without it.
    #[serde(default)]
    pub fuzzy_threshold: Option<f64>,
}

/// `source = "crm"` or `source = ["crm", "file"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AccountSources {
    One(String),
    Many(Vec<String>),
}

impl AccountSources {
    pub fn names(&self) -> Vec<&str> {
        match self {
            AccountSources::One(s) => vec![s.as_str()],
            AccountSources::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// How often `leadgate serve` looks for overdue assignments (`"1m"`).
    #[serde(default)]
    pub check_every: Option<String>,
    /// How many times an untouched lead moves to the next member of its pool before it is
    /// escalated.
    #[serde(default = "default_reassignments")]
    pub max_reassignments: u32,
    /// Where an untouched lead goes once reassignments are used up (or nobody else in the
    /// pool can take it): `{ owner = "..." }`, `{ pool = "..." }` or `{ review = "reason" }`.
    /// Without it, the lead goes to review.
    #[serde(default)]
    pub escalate_to: Option<EscalateConfig>,
}

/// One reassignment before escalating: a second rep gets a chance, then a manager.
fn default_reassignments() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalateConfig {
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
    #[serde(default)]
    pub review: Option<String>,
}
