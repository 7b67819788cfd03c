//! Route stage: ordered rules, first match wins, each with one action — assign (to a pool,
//! an owner, or the account's owner), enroll, review, disqualify — and a fallback, so a
//! lead never ends unrouted. The decision names the rule, the rules before it that did not
//! match, and the pool member chosen.
//!
//! Routing reads the scored lead; it writes nothing but the pool rotation (through
//! [`Rotation`]), and dry runs hand it a rotation that writes nothing at all.

mod accounts;
mod config;
mod rotation;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

pub use accounts::AccountBook;
pub use config::{ActionConfig, MemberConfig, PoolConfig, RoutingConfig, Strategy};
pub use rotation::{LocalRotation, Rotation};

use crate::lead::{Route, RouteAction, ScoredLead, SkippedMember};
use crate::rules::{Condition, RuleContext, RuleFile, Scope};
use crate::settings::{ConfigErrors, ConfigIssue};
use crate::store::StoreError;

/// The id a decision names when no rule matched.
pub const FALLBACK: &str = "fallback";

#[derive(Debug, Clone, PartialEq)]
pub enum Assign {
    Pool {
        pool: String,
        sla: Option<Duration>,
        overflow: Option<String>,
    },
    Owner(String),
    AccountOwner,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Assign(Assign),
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

#[derive(Debug, Clone)]
pub struct Member {
    pub owner: String,
    pub name: Option<String>,
    pub weight: u32,
    pub available: bool,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub strategy: Strategy,
    pub members: Vec<Member>,
}

#[derive(Debug)]
pub struct Router {
    rules: Vec<RouteRule>,
    pools: HashMap<String, Pool>,
    fallback: Action,
    accounts: AccountBook,
}

impl Router {
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = RuleFile::read(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_file(&file, dir)
    }

    /// Compiles `routing.toml`; relative files in it resolve against `dir`.
    pub fn from_file(file: &RuleFile, dir: &Path) -> Result<Self, ConfigErrors> {
        let raw: RoutingConfig = file.parse()?;
        let mut issues: Vec<ConfigIssue> = Vec::new();

        let mut pools = HashMap::new();
        for p in &raw.pool {
            if p.members.is_empty() {
                issues.push(file.issue(None, format!("pool \"{}\"", p.id), "has no members"));
            }
            if p.strategy == Strategy::LoadBalanced {
                issues.push(file.issue(None, format!("pool \"{}\" strategy", p.id), "load_balanced is not available yet; use round_robin or weighted"));
            }
            let pool = Pool {
                id: p.id.clone(),
                strategy: p.strategy,
                members: p
                    .members
                    .iter()
                    .map(|m| Member {
                        owner: m.owner.clone(),
                        name: m.name.clone(),
                        weight: m.weight.max(1),
                        available: m.available,
                    })
                    .collect(),
            };
            if pools.insert(p.id.clone(), pool).is_some() {
                issues.push(file.issue(None, format!("pool \"{}\"", p.id), "duplicate pool id"));
            }
        }

        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        let mut always_true: Option<String> = None;
        for r in &raw.rule {
            let key = format!("rule \"{}\"", r.id);
            let span = Some(r.when.span());
            if !seen.insert(r.id.clone()) {
                issues.push(file.issue(span.clone(), &key, "duplicate rule id"));
            }
            if let Some(first) = &always_true {
                issues.push(file.issue(span.clone(), &key, format!("unreachable: rule \"{first}\" before it always matches")));
            }
            let action = build_action(&r.action, &pools).map_err(|reason| issues.push(file.issue(span.clone(), &key, reason)));
            match Condition::compile(r.when.get_ref(), &Scope::routing()) {
                Ok(when) => {
                    if when.is_always_true() && always_true.is_none() {
                        always_true = Some(r.id.clone());
                    }
                    if let Ok(action) = action {
                        rules.push(RouteRule { id: r.id.clone(), when, action });
                    }
                }
                Err(e) => issues.push(file.issue(span, format!("{key} when"), e.to_string())),
            }
        }
        let fallback = build_action(&raw.fallback, &pools)
            .map_err(|reason| issues.push(file.issue(None, "fallback", reason)));

        let accounts = match raw.account_match.as_ref().and_then(|a| a.file.as_ref()) {
            None => AccountBook::default(),
            Some(f) => {
                let path = if f.is_absolute() { f.clone() } else { dir.join(f) };
                AccountBook::from_csv(&path).unwrap_or_else(|reason| {
                    issues.push(file.issue(None, "account_match.file", reason));
                    AccountBook::default()
                })
            }
        };
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        Ok(Self {
            rules,
            pools,
            // Checked just above: no issues means the fallback built.
            fallback: fallback.unwrap_or(Action::Review { queue: None, reason: "no fallback".into() }),
            accounts,
        })
    }

    pub fn accounts(&self) -> &AccountBook {
        &self.accounts
    }

    pub fn rule_ids(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.id.clone()).collect()
    }

    pub fn pool(&self, id: &str) -> Option<&Pool> {
        self.pools.get(id)
    }

    /// Routes a scored lead. `ctx` already holds `score` and `grade`.
    pub async fn route(&self, scored: &ScoredLead, ctx: &RuleContext, rotation: &dyn Rotation) -> Result<Route, StoreError> {
        let mut not_matched = Vec::new();
        for rule in &self.rules {
            if rule.when.eval(ctx).matched() {
                let why = format!("matched rule `{}` ({})", rule.id, rule.when.source());
                return self.act(&rule.id, &rule.action, why, not_matched, scored, ctx, rotation).await;
            }
            not_matched.push(rule.id.clone());
        }
        self.act(FALLBACK, &self.fallback, "no rule matched".into(), not_matched, scored, ctx, rotation)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn act(
        &self,
        rule: &str,
        action: &Action,
        why: String,
        not_matched: Vec<String>,
        scored: &ScoredLead,
        ctx: &RuleContext,
        rotation: &dyn Rotation,
    ) -> Result<Route, StoreError> {
        let mut route = Route {
            rule: rule.to_string(),
            action: RouteAction::Assign,
            pool: None,
            owner: None,
            sequence: None,
            connector: None,
            reason: why,
            not_matched,
            skipped_members: Vec::new(),
        };
        match action {
            Action::Assign(Assign::Owner(owner)) => {
                route.owner = Some(owner.clone());
                route.reason += &format!("; assigned to owner {owner}");
            }
            Action::Assign(Assign::AccountOwner) => {
                match ctx.lookup("account.owner").and_then(|v| v.as_str()).filter(|o| !o.is_empty()) {
                    Some(owner) => {
                        route.owner = Some(owner.to_string());
                        let account = ctx.lookup("account.id").and_then(|v| v.as_str()).unwrap_or("?");
                        route.reason += &format!("; assigned to {owner}, owner of account {account}");
                    }
                    None if rule != FALLBACK => {
                        let why = format!("{}; the lead has no account owner, so the fallback applies", route.reason);
                        return Box::pin(self.act(FALLBACK, &self.fallback, why, route.not_matched, scored, ctx, rotation)).await;
                    }
                    None => {
                        route.action = RouteAction::Review;
                        route.reason += "; the fallback assigns to the account owner, but there is none";
                    }
                }
            }
            Action::Assign(Assign::Pool { pool, overflow, .. }) => {
                let Some(p) = self.pools.get(pool) else {
                    return Ok(route);
                };
                match pick_member(p, rotation, &mut route.skipped_members).await? {
                    Some(member) => {
                        route.pool = Some(pool.clone());
                        route.owner = Some(member.owner.clone());
                        let who = member.name.as_deref().unwrap_or(&member.owner);
                        route.reason += &format!("; {} in pool `{pool}` picked {who} ({})", strategy_name(p.strategy), member.owner);
                    }
                    None => {
                        let why = format!("{}; every member of pool `{pool}` is unavailable", route.reason);
                        let skipped = std::mem::take(&mut route.skipped_members);
                        let mut next = match overflow.as_deref() {
                            Some(o) if o != FALLBACK && self.pools.contains_key(o) => {
                                let action = Action::Assign(Assign::Pool { pool: o.to_string(), sla: None, overflow: Some(FALLBACK.into()) });
                                Box::pin(self.act(rule, &action, format!("{why}; overflow to pool `{o}`"), route.not_matched, scored, ctx, rotation)).await?
                            }
                            _ if rule != FALLBACK => {
                                Box::pin(self.act(FALLBACK, &self.fallback, format!("{why}; overflow to the fallback"), route.not_matched, scored, ctx, rotation)).await?
                            }
                            _ => {
                                route.action = RouteAction::Review;
                                route.reason = format!("{why}; sent to review");
                                route
                            }
                        };
                        next.skipped_members.splice(0..0, skipped);
                        return Ok(next);
                    }
                }
            }
            Action::Enroll { sequence, connector } => {
                route.action = RouteAction::Enroll;
                route.sequence = Some(sequence.clone());
                route.connector = connector.clone();
                route.reason += &format!("; enrolled in sequence `{sequence}`");
            }
            Action::Review { queue, reason } => {
                route.action = RouteAction::Review;
                route.reason += &format!("; sent to review{}: {reason}", queue.as_deref().map(|q| format!(" queue `{q}`")).unwrap_or_default());
            }
            Action::Disqualify { reason } => {
                route.action = RouteAction::Disqualify;
                route.reason += &format!("; disqualified: {reason}");
            }
        }
        let _ = scored;
        Ok(route)
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::RoundRobin => "round robin",
        Strategy::Weighted => "weighted rotation",
        Strategy::LoadBalanced => "load balancing",
    }
}

/// Picks the member for the next slot among available members; records who was skipped.
async fn pick_member<'p>(pool: &'p Pool, rotation: &dyn Rotation, skipped: &mut Vec<SkippedMember>) -> Result<Option<&'p Member>, StoreError> {
    let mut eligible = Vec::new();
    for m in &pool.members {
        if m.available {
            eligible.push(m);
        } else {
            skipped.push(SkippedMember { owner: m.owner.clone(), reason: "unavailable".into() });
        }
    }
    if eligible.is_empty() {
        return Ok(None);
    }
    let slot = rotation.next_slot(&pool.id).await?;
    let member = match pool.strategy {
        // Weighted: each member holds `weight` consecutive slots of the cycle.
        Strategy::Weighted => {
            let total: u64 = eligible.iter().map(|m| u64::from(m.weight)).sum();
            let mut at = slot % total;
            let mut chosen = eligible[0];
            for m in &eligible {
                if at < u64::from(m.weight) {
                    chosen = m;
                    break;
                }
                at -= u64::from(m.weight);
            }
            chosen
        }
        Strategy::RoundRobin | Strategy::LoadBalanced => eligible[(slot % eligible.len() as u64) as usize],
    };
    Ok(Some(member))
}

fn build_action(a: &ActionConfig, pools: &HashMap<String, Pool>) -> Result<Action, String> {
    let set = [a.assign.is_some(), a.enroll.is_some(), a.review.is_some(), a.disqualify.is_some()]
        .iter()
        .filter(|s| **s)
        .count();
    if set != 1 {
        return Err(format!("needs exactly one action (assign, enroll, review or disqualify); found {set}"));
    }
    if let Some(e) = &a.enroll {
        return Ok(Action::Enroll { sequence: e.sequence.clone(), connector: e.connector.clone() });
    }
    if let Some(r) = &a.review {
        return Ok(Action::Review { queue: r.queue.clone(), reason: r.reason.clone() });
    }
    if let Some(d) = &a.disqualify {
        return Ok(Action::Disqualify { reason: d.reason.clone() });
    }
    let Some(assign) = &a.assign else {
        return Err("needs an action".into());
    };
    let targets = [assign.pool.is_some(), assign.owner.is_some(), assign.to.is_some()].iter().filter(|s| **s).count();
    if targets != 1 {
        return Err("assign needs exactly one of pool, owner, or to = \"account_owner\"".into());
    }
    if let Some(to) = &assign.to {
        return if to == "account_owner" {
            Ok(Action::Assign(Assign::AccountOwner))
        } else {
            Err(format!("assign to = \"{to}\": the only target is \"account_owner\""))
        };
    }
    if let Some(owner) = &assign.owner {
        return Ok(Action::Assign(Assign::Owner(owner.clone())));
    }
    let pool = assign.pool.clone().unwrap_or_default();
    if !pools.contains_key(&pool) {
        let known: Vec<_> = pools.keys().cloned().collect();
        return Err(format!("pool \"{pool}\" does not exist (pools: {})", known.join(", ")));
    }
    if let Some(o) = &assign.overflow {
        if o != FALLBACK && !pools.contains_key(o) {
            return Err(format!("overflow pool \"{o}\" does not exist"));
        }
    }
    let sla = match &assign.sla {
        None => None,
        Some(s) => Some(humantime::parse_duration(s).map_err(|e| format!("sla `{s}` is not a duration: {e}"))?),
    };
    Ok(Action::Assign(Assign::Pool { pool, sla, overflow: assign.overflow.clone() }))
}

#[cfg(test)]
mod tests;
