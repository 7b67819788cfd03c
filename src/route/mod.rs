//! Route stage: ordered rules, first match wins, each with one action — assign (to a pool,
//! an owner, or the account's owner), enroll, review, disqualify — and a fallback, so a
//! lead never ends unrouted. The decision names the rule, the rules before it that did not
//! match (and why), the pool member chosen, and every member passed over with the reason
//! (paused, out of office, off today, outside working hours, at capacity).
//!
//! Routing reads the scored lead; it writes nothing but assignments (through
//! [`Assignments`]), and dry runs hand it in-memory assignments that write nothing at all.
//! Pools, calendars and the strategies are in `pools`; territories in `territory`;
//! account matching in `accounts`; SLA follow-up in [`sla`].

mod accounts;
mod assignments;
pub mod compare;
mod config;
mod pools;
pub mod sla;
mod territory;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use accounts::{
    candidate_hosts, normalize_host, AccountBook, AccountError, AccountMatcher, AccountMatching,
    AccountSource, CachedMatcher, MatchHow, DEFAULT_ACCOUNT_CACHE_TTL,
};
pub use assignments::{
    AssignmentDelta, AssignmentSnapshot, Assignments, LocalAssignments, LocalRotation, Rotation,
};
pub use config::{
    ActionConfig, MemberConfig, PoolConfig, RoutingConfig, Strategy, TerritoryConfig,
};
pub use pools::{choose, AssignRequest, Calendar, Candidate, Choice, Member, Pool};
pub use territory::{Place, Territory};

use crate::lead::{Lead, Route, RouteAction, RuleMiss, ScoredLead, SkippedMember};
use crate::rules::{Condition, Eval, RuleContext, RuleFile, Scope};
use crate::settings::{ConfigErrors, ConfigIssue};
use crate::store::StoreError;

/// The id a decision names when no rule matched.
pub const FALLBACK: &str = "fallback";

/// Who an `assign` goes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Pool(String),
    Owner(String),
    AccountOwner,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Assign {
        target: Target,
        /// How long the owner has to touch the lead.
        sla: Option<Duration>,
        /// A pool id, or `fallback`, for when no pool member can take the lead.
        overflow: Option<String>,
    },
    Enroll {
        sequence: String,
        connector: Option<String>,
    },
    Review {
        queue: Option<String>,
        reason: String,
    },
    Disqualify {
        reason: String,
    },
}

#[derive(Debug)]
pub struct RouteRule {
    pub id: String,
    pub when: Condition,
    pub action: Action,
}

/// A pool's pick for one lead.
#[derive(Debug, Clone)]
pub struct Pick<'p> {
    pub member: Option<&'p Member>,
    pub assigned_today: u32,
    pub skipped: Vec<SkippedMember>,
}

#[derive(Debug)]
pub struct Router {
    rules: Vec<RouteRule>,
    pools: HashMap<String, Pool>,
    territories: Vec<Territory>,
    fallback: Action,
    accounts: Arc<AccountBook>,
    matching: AccountMatching,
    /// `[account_match]` as checked: what a CRM account source is built from.
    match_settings: AccountMatchSettings,
    sla: sla::SlaPolicy,
    /// Some rule may read the lead's list of events (`rules::reads_event_list`): the
    /// pipeline leaves the list out of a lead's context when neither scorer nor router does.
    reads_event_list: bool,
}

/// `[account_match]` beyond the file, checked at load; the CRM side is plugged in with
/// [`Router::set_account_sources`] once the CRM connectors are built.
#[derive(Debug, Clone, Default)]
pub struct AccountMatchSettings {
    pub sources: Vec<AccountSource>,
    pub crm: Option<String>,
    pub domain_field: Option<String>,
    pub fuzzy_threshold: Option<f64>,
    pub cache_ttl: Option<Duration>,
}

impl AccountMatchSettings {
    pub fn wants_crm(&self) -> bool {
        self.sources.contains(&AccountSource::Crm)
    }
}

impl std::fmt::Debug for AccountMatching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.sources.iter().map(|s| s.source()).collect();
        write!(
            f,
            "AccountMatching({names:?}, fuzzy {:?})",
            self.fuzzy_threshold
        )
    }
}

impl std::fmt::Debug for dyn AccountMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountMatcher({})", self.source())
    }
}

impl Router {
    /// Whether some routing rule may read the lead's list of events (`lead.events`,
    /// `events`); see [`crate::score::Scorer::reads_event_list`].
    pub fn reads_event_list(&self) -> bool {
        self.reads_event_list
    }

    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = RuleFile::read(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_file(&file, dir)
    }

    /// Compiles `routing.toml`, reporting every issue at once; relative files in it resolve
    /// against `dir`.
    pub fn from_file(file: &RuleFile, dir: &Path) -> Result<Self, ConfigErrors> {
        let raw: RoutingConfig = file.parse()?;
        let mut issues: Vec<ConfigIssue> = Vec::new();

        let mut territories: Vec<Territory> = Vec::new();
        for t in &raw.territory {
            let key = format!("territory \"{}\"", t.id.get_ref());
            if territories.iter().any(|x| x.id == *t.id.get_ref()) {
                issues.push(file.issue(Some(t.id.span()), &key, "duplicate territory id"));
            }
            match Territory::build(t) {
                Ok(built) => territories.push(built),
                Err(reason) => issues.push(file.issue(Some(t.id.span()), &key, reason)),
            }
        }
        let territory_ids: HashSet<&str> = raw
            .territory
            .iter()
            .map(|t| t.id.get_ref().as_str())
            .collect();

        let mut pools = HashMap::new();
        for p in &raw.pool {
            let span = Some(p.id.span());
            if p.members.is_empty() {
                issues.push(file.issue(
                    span.clone(),
                    format!("pool \"{}\"", p.id.get_ref()),
                    "has no members: add members = [{ owner = \"...\" }]",
                ));
            }
            let mut problems = Vec::new();
            let pool = pools::build_pool(p, &mut problems);
            for (key, reason) in problems {
                issues.push(file.issue(span.clone(), key, reason));
            }
            if pools.insert(pool.id.clone(), pool).is_some() {
                issues.push(file.issue(
                    span,
                    format!("pool \"{}\"", p.id.get_ref()),
                    "duplicate pool id",
                ));
            }
        }

        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        let mut always_true: Option<String> = None;
        for r in &raw.rule {
            let id = r.id.get_ref();
            let key = format!("rule \"{id}\"");
            let span = Some(r.id.span());
            if !seen.insert(id.clone()) {
                issues.push(file.issue(span.clone(), &key, "duplicate rule id"));
            }
            if id == FALLBACK {
                issues.push(file.issue(
                    span.clone(),
                    &key,
                    "`fallback` is reserved for the [fallback] section; pick another id",
                ));
            }
            if let Some(first) = &always_true {
                issues.push(file.issue(
                    span.clone(),
                    &key,
                    format!("unreachable: rule \"{first}\" before it always matches"),
                ));
            }
            let action = build_action(&r.action, &pools)
                .map_err(|reason| issues.push(file.issue(span.clone(), &key, reason)));
            match Condition::compile(r.when.get_ref(), &routing_scope()) {
                Ok(when) => {
                    for t in territory::referenced(when.expression()) {
                        if !territory_ids.contains(t.as_str()) {
                            let mut known: Vec<&str> = Vec::new();
                            raw.territory
                                .iter()
                                .map(|t| t.id.get_ref().as_str())
                                .for_each(|t| {
                                    if !known.contains(&t) {
                                        known.push(t)
                                    }
                                });
                            issues.push(file.issue(
                                Some(r.when.span()),
                                format!("{key} when"),
                                format!(
                                    "territory \"{t}\" does not exist (territories: {})",
                                    list_or_none(&known)
                                ),
                            ));
                        }
                    }
                    if when.is_always_true() && always_true.is_none() {
                        always_true = Some(id.clone());
                    }
                    if let Ok(action) = action {
                        rules.push(RouteRule {
                            id: id.clone(),
                            when,
                            action,
                        });
                    }
                }
                Err(e) => issues.push(file.issue(
                    Some(r.when.span()),
                    format!("{key} when"),
                    e.to_string(),
                )),
            }
        }
        let fallback = build_action(&raw.fallback, &pools)
            .map_err(|reason| issues.push(file.issue(None, "fallback", reason)));
        if let Ok(Action::Assign {
            overflow: Some(o), ..
        }) = &fallback
        {
            if o == FALLBACK {
                issues.push(file.issue(None, "fallback.assign.overflow", "the fallback cannot overflow to itself; name another pool or leave overflow out (leads then go to review)"));
            }
        }

        let sla = sla::SlaPolicy::build(raw.sla.as_ref(), &pools).unwrap_or_else(|problems| {
            for (key, reason) in problems {
                issues.push(file.issue(None, key, reason));
            }
            sla::SlaPolicy::default()
        });

        let match_config = raw.account_match.as_ref();
        let accounts = match match_config.and_then(|a| a.file.as_ref()) {
            None => AccountBook::default(),
            Some(f) => {
                let path = if f.is_absolute() {
                    f.clone()
                } else {
                    dir.join(f)
                };
                AccountBook::from_csv(&path).unwrap_or_else(|reason| {
                    issues.push(file.issue(None, "account_match.file", reason));
                    AccountBook::default()
                })
            }
        };
        let mut match_settings = AccountMatchSettings::default();
        if let Some(ttl) = match_config.and_then(|a| a.cache_ttl.as_ref()) {
            match humantime::parse_duration(ttl) {
                Ok(d) => match_settings.cache_ttl = Some(d),
                Err(e) => issues.push(file.issue(
                    None,
                    "account_match.cache_ttl",
                    format!("`{ttl}` is not a duration: {e}"),
                )),
            }
        }
        if let Some(m) = match_config {
            match accounts::check_match_config(m) {
                Ok((sources, fuzzy)) => {
                    match_settings.sources = sources;
                    match_settings.fuzzy_threshold = fuzzy;
                }
                Err(problems) => {
                    for (key, reason) in problems {
                        issues.push(file.issue(None, key, reason));
                    }
                }
            }
            match_settings.crm = m.crm.clone();
            match_settings.domain_field = m.domain_field.clone();
        }
        if match_settings.sources.is_empty() {
            match_settings.sources = vec![AccountSource::File];
        }
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        let accounts = Arc::new(accounts);
        let reads_event_list = rules
            .iter()
            .any(|r| crate::rules::reads_event_list(&r.when));
        Ok(Self {
            reads_event_list,
            rules,
            pools,
            territories,
            // Checked just above: no issues means the fallback built.
            fallback: fallback.unwrap_or(Action::Review {
                queue: None,
                reason: "no fallback".into(),
            }),
            matching: AccountMatching {
                sources: vec![accounts.clone()],
                fuzzy_threshold: match_settings.fuzzy_threshold,
            },
            match_settings,
            accounts,
            sla,
        })
    }

    /// The local accounts file (empty without `[account_match] file`).
    pub fn accounts(&self) -> &AccountBook {
        &self.accounts
    }

    /// Plugs in another account source (a CRM connector's account search), cached for `ttl`.
    pub fn set_account_matcher(&mut self, matcher: Arc<dyn AccountMatcher>, ttl: Duration) {
        self.matching.sources = vec![Arc::new(CachedMatcher::new(matcher, ttl))];
    }

    /// The local accounts file as an account source.
    pub fn account_book(&self) -> Arc<dyn AccountMatcher> {
        self.accounts.clone()
    }

    /// `[account_match]` as checked at load.
    pub fn account_match_settings(&self) -> &AccountMatchSettings {
        &self.match_settings
    }

    /// Replaces the account sources with `sources`, asked in order (`[account_match] source`).
    pub fn set_account_sources(&mut self, sources: Vec<Arc<dyn AccountMatcher>>) {
        self.matching.sources = sources;
    }

    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.get(id)
    }

    /// Every pool, by id.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        let mut v: Vec<&Pool> = self.pools.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter()
    }

    pub fn territories(&self) -> &[Territory] {
        &self.territories
    }

    pub fn sla_policy(&self) -> &sla::SlaPolicy {
        &self.sla
    }

    /// The account a lead belongs to (an empty object when none): every source in
    /// `[account_match] source` order, the most specific host first, then the optional
    /// fuzzy name fallback. A failing account source is logged and skipped — the lead is
    /// still routed. The account carries `match` (source, how, host or confidence).
    pub async fn match_account(&self, lead: &Lead) -> Value {
        self.matching.match_lead(lead).await
    }

    /// The territories a lead is in, in file order.
    pub fn territories_of(&self, ctx: &RuleContext) -> Vec<String> {
        territory::territories_of(&self.territories, &Place::of(ctx))
    }

    /// Routes a scored lead. `ctx` already holds `score` and `grade`; routing adds
    /// `territory`, `territories` and `in_territory()`.
    pub async fn route(
        &self,
        scored: &ScoredLead,
        ctx: &mut RuleContext,
        assignments: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<Route, StoreError> {
        let _ = scored;
        let territories = self.territories_of(ctx);
        territory::bind(ctx, &territories);
        let mut misses = Vec::new();
        let mut matched = None;
        for rule in &self.rules {
            match rule.when.eval(ctx) {
                Eval::Matched => {
                    matched = Some(rule);
                    break;
                }
                other => misses.push(RuleMiss {
                    rule: rule.id.clone(),
                    why: miss_reason(&other),
                }),
            }
        }
        let (rule_id, action, why) = match matched {
            Some(rule) => (
                rule.id.as_str(),
                &rule.action,
                format!("matched rule `{}` ({})", rule.id, rule.when.source()),
            ),
            None => (FALLBACK, &self.fallback, "no rule matched".to_string()),
        };
        let mut route = Route {
            rule: rule_id.to_string(),
            action: RouteAction::Assign,
            pool: None,
            owner: None,
            sequence: None,
            connector: None,
            reason: why,
            not_matched: misses.iter().map(|m| m.rule.clone()).collect(),
            not_matched_why: misses,
            skipped_members: Vec::new(),
            sla: None,
            sla_due_at: None,
            territories,
            account: account_summary(ctx),
            previous_owner: None,
            sla_step: None,
        };
        self.act(&mut route, action, ctx, assignments, now).await?;
        Ok(route)
    }

    async fn act(
        &self,
        route: &mut Route,
        action: &Action,
        ctx: &RuleContext,
        assignments: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match action {
            Action::Assign {
                target,
                sla,
                overflow,
            } => {
                let assigned = match target {
                    Target::Owner(owner) => {
                        route.reason += &format!("; assigned to owner {owner}");
                        self.assign_owner(route, owner, assignments, now).await?;
                        true
                    }
                    Target::AccountOwner => match ctx
                        .lookup("account.owner")
                        .and_then(Value::as_str)
                        .filter(|o| !o.is_empty())
                    {
                        Some(owner) => {
                            let account = ctx
                                .lookup("account.id")
                                .and_then(Value::as_str)
                                .unwrap_or("?");
                            route.reason +=
                                &format!("; assigned to {owner}, owner of account {account}");
                            self.assign_owner(route, owner, assignments, now).await?;
                            true
                        }
                        None => {
                            route.reason += "; the lead has no account owner";
                            false
                        }
                    },
                    Target::Pool(pool) => {
                        self.assign_pool(route, pool, overflow.as_deref(), assignments, now)
                            .await?
                    }
                };
                if assigned {
                    if let Some(sla) = sla {
                        route.sla = Some(humantime::format_duration(*sla).to_string());
                        route.sla_due_at = chrono::Duration::from_std(*sla).ok().map(|d| now + d);
                    }
                    return Ok(());
                }
                // Nobody could take it: the fallback, or review when the fallback is what failed.
                if route.rule != FALLBACK {
                    route.reason += "; the fallback applies";
                    let fallback = self.fallback.clone();
                    route.rule = FALLBACK.to_string();
                    return Box::pin(self.act(route, &fallback, ctx, assignments, now)).await;
                }
                route.action = RouteAction::Review;
                route.pool = None;
                route.owner = None;
                route.reason += "; sent to review so it is not lost";
            }
            Action::Enroll {
                sequence,
                connector,
            } => {
                route.action = RouteAction::Enroll;
                route.sequence = Some(sequence.clone());
                route.connector = connector.clone();
                route.reason += &format!("; enrolled in sequence `{sequence}`");
            }
            Action::Review { queue, reason } => {
                route.action = RouteAction::Review;
                route.reason += &format!(
                    "; sent to review{}: {reason}",
                    queue
                        .as_deref()
                        .map(|q| format!(" queue `{q}`"))
                        .unwrap_or_default()
                );
            }
            Action::Disqualify { reason } => {
                route.action = RouteAction::Disqualify;
                route.reason += &format!("; disqualified: {reason}");
            }
        }
        Ok(())
    }

    /// Tries `pool`, then its overflow pool; true when someone took the lead.
    async fn assign_pool(
        &self,
        route: &mut Route,
        pool: &str,
        overflow: Option<&str>,
        assignments: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tried = Vec::new();
        let mut next = Some(pool.to_string());
        while let Some(id) = next.take() {
            let Some(p) = self.pools.get(&id) else { break };
            tried.push(id.clone());
            let pick = self.pick(p, now, assignments, &[]).await?;
            route.skipped_members.extend(pick.skipped);
            if let Some(m) = pick.member {
                route.action = RouteAction::Assign;
                route.pool = Some(id.clone());
                route.owner = Some(m.owner.clone());
                let cap = m.capacity.map(|c| format!(" of {c}")).unwrap_or_default();
                route.reason += &format!(
                    "; {} in pool `{id}` picked {} ({}{cap} today)",
                    strategy_name(p.strategy),
                    m.label(),
                    pick.assigned_today
                );
                return Ok(true);
            }
            route.reason += &format!("; no member of pool `{id}` can take the lead now");
            if let Some(o) = overflow.filter(|o| *o != FALLBACK && !tried.iter().any(|t| t == o)) {
                route.reason += &format!("; overflow to pool `{o}`");
                next = Some(o.to_string());
            }
        }
        Ok(false)
    }

    async fn assign_owner(
        &self,
        route: &mut Route,
        owner: &str,
        assignments: &dyn Assignments,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        route.action = RouteAction::Assign;
        route.owner = Some(owner.to_string());
        let day = self.owner_day(owner, now);
        assignments.count(owner, &day).await
    }

    /// An owner's local date: from their calendar in the first pool that has them, else UTC.
    pub fn owner_day(&self, owner: &str, now: DateTime<Utc>) -> String {
        self.pools()
            .find_map(|p| p.member(owner))
            .map_or_else(|| now.date_naive(), |m| m.calendar.local_day(now))
            .to_string()
    }

    /// Picks a member of `pool` for one lead, skipping `exclude` (owners who already had the
    /// lead), and records the pick through `assignments`.
    pub async fn pick<'p>(
        &self,
        pool: &'p Pool,
        now: DateTime<Utc>,
        assignments: &dyn Assignments,
        exclude: &[String],
    ) -> Result<Pick<'p>, StoreError> {
        let calendar = assignments.applies_calendar();
        let req = AssignRequest {
            pool: pool.id.clone(),
            strategy: pool.strategy,
            cycle: pool.cycle.clone(),
            members: pool
                .members
                .iter()
                .map(|m| Candidate {
                    owner: m.owner.clone(),
                    day: m.calendar.local_day(now).to_string(),
                    capacity: m.capacity,
                    blocked: if exclude.contains(&m.owner) {
                        Some((
                            crate::lead::SkipKind::PreviousOwner,
                            "already had this lead".into(),
                        ))
                    } else {
                        m.blocked(now, calendar)
                    },
                })
                .collect(),
        };
        let choice = assignments.assign(&req).await?;
        Ok(Pick {
            member: choice.chosen.and_then(|i| pool.members.get(i)),
            assigned_today: choice.assigned_today,
            skipped: choice
                .skipped
                .into_iter()
                .filter_map(|(i, kind, reason)| {
                    pool.members.get(i).map(|m| SkippedMember {
                        owner: m.owner.clone(),
                        reason,
                        kind: Some(kind),
                        pool: Some(pool.id.clone()),
                    })
                })
                .collect(),
        })
    }
}

/// Routing rules see the lead, its score, and its territories.
pub fn routing_scope() -> Scope {
    Scope::routing().with("territory").with("territories")
}

fn miss_reason(e: &Eval) -> String {
    match e {
        Eval::Matched => "matched".into(),
        Eval::NotMatched => "condition was false".into(),
        Eval::Missing(field) => format!("`{field}` is missing on this lead"),
        Eval::Error(e) => format!("could not be evaluated: {e}"),
    }
}

/// The matched account as the decision records it.
fn account_summary(ctx: &RuleContext) -> Option<Value> {
    let id = ctx.lookup("account.id")?;
    let mut s = serde_json::Map::new();
    s.insert("id".into(), id.clone());
    for k in ["name", "domain", "owner", "owner_name", "tier", "match"] {
        if let Some(v) = ctx.lookup(&format!("account.{k}")) {
            s.insert(k.into(), v.clone());
        }
    }
    Some(Value::Object(s))
}

fn list_or_none(v: &[&str]) -> String {
    if v.is_empty() {
        "none defined".into()
    } else {
        v.join(", ")
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::RoundRobin => "round robin",
        Strategy::Weighted => "weighted rotation",
        Strategy::LoadBalanced => "load balancing",
    }
}

fn build_action(a: &ActionConfig, pools: &HashMap<String, Pool>) -> Result<Action, String> {
    let set = [
        a.assign.is_some(),
        a.enroll.is_some(),
        a.review.is_some(),
        a.disqualify.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        return Err(format!(
            "needs exactly one action (assign, enroll, review or disqualify); found {set}"
        ));
    }
    if let Some(e) = &a.enroll {
        if e.sequence.trim().is_empty() {
            return Err("enroll needs a sequence".into());
        }
        return Ok(Action::Enroll {
            sequence: e.sequence.clone(),
            connector: e.connector.clone(),
        });
    }
    if let Some(r) = &a.review {
        return Ok(Action::Review {
            queue: r.queue.clone(),
            reason: r.reason.clone(),
        });
    }
    if let Some(d) = &a.disqualify {
        return Ok(Action::Disqualify {
            reason: d.reason.clone(),
        });
    }
    let Some(assign) = &a.assign else {
        return Err("needs an action".into());
    };
    let targets = [
        assign.pool.is_some(),
        assign.owner.is_some(),
        assign.to.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if targets != 1 {
        return Err("assign needs exactly one of pool, owner, or to = \"account_owner\"".into());
    }
    let known = || {
        let mut k: Vec<&str> = pools.keys().map(String::as_str).collect();
        k.sort_unstable();
        list_or_none(&k)
    };
    let target = if let Some(to) = &assign.to {
        if to != "account_owner" {
            return Err(format!(
                "assign to = \"{to}\": the only target is \"account_owner\""
            ));
        }
        Target::AccountOwner
    } else if let Some(owner) = &assign.owner {
        if owner.trim().is_empty() {
            return Err("assign owner is empty".into());
        }
        Target::Owner(owner.clone())
    } else {
        let pool = assign.pool.clone().unwrap_or_default();
        if !pools.contains_key(&pool) {
            return Err(format!(
                "pool \"{pool}\" does not exist (pools: {})",
                known()
            ));
        }
        Target::Pool(pool)
    };
    if let Some(o) = &assign.overflow {
        if !matches!(target, Target::Pool(_)) {
            return Err("overflow only applies to assign = { pool = ... }".into());
        }
        if o != FALLBACK && !pools.contains_key(o) {
            return Err(format!(
                "overflow pool \"{o}\" does not exist (pools: {}; or \"fallback\")",
                known()
            ));
        }
        if Target::Pool(o.clone()) == target {
            return Err(format!("pool \"{o}\" overflows to itself"));
        }
    }
    let sla = match &assign.sla {
        None => None,
        Some(s) => Some(
            humantime::parse_duration(s)
                .map_err(|e| format!("sla `{s}` is not a duration like \"4h\" or \"30m\": {e}"))?,
        ),
    };
    Ok(Action::Assign {
        target,
        sla,
        overflow: assign.overflow.clone(),
    })
}

#[cfg(test)]
mod tests;
