//! SLA follow-up: an `assign` with `sla = "4h"` gives the owner that long to touch the lead.
//! A sweep (started by `leadgate serve`) looks at assignments past their deadline and asks an
//! [`OwnerActivity`] whether the owner touched the lead since it was assigned. If not, the
//! lead moves to the next eligible member of its pool (up to `[sla] max_reassignments`
//! times), then escalates per `[sla] escalate_to` (an owner, a pool, or review). Each step is
//! appended to the lead's decision history and to the routing audit trail — so no lead sits
//! unworked with an absent rep (a routing "black hole").
//!
//! The embedded default learns of touches through `POST /v1/leads/{id}/touched`; a CRM
//! connector implements [`OwnerActivity`] by reading the record's last activity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;

use super::config::SlaConfig;
use super::{Pool, Router};
use crate::store::{Store, StoreError};

/// How often the sweep runs when `[sla] check_every` is not set: a minute is well inside
/// any SLA a sales team sets, and cheap (one indexed query when nothing is due).
pub const DEFAULT_CHECK_EVERY: Duration = Duration::from_secs(60);
/// Most overdue assignments handled per sweep; the rest wait for the next one.
const SWEEP_BATCH: i64 = 500;

/// Where a lead goes when reassignments are used up.
#[derive(Debug, Clone, PartialEq)]
pub enum Escalation {
    Owner(String),
    Pool(String),
    Review(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    pub check_every: Duration,
    pub max_reassignments: u32,
    pub escalate_to: Escalation,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        Self {
            check_every: DEFAULT_CHECK_EVERY,
            max_reassignments: 1,
            escalate_to: Escalation::Review(
                "SLA breached and nobody else could take the lead".into(),
            ),
        }
    }
}

impl SlaPolicy {
    /// Checks `[sla]`; problems come back as `(key, reason)`.
    pub fn build(
        c: Option<&SlaConfig>,
        pools: &HashMap<String, Pool>,
    ) -> Result<Self, Vec<(String, String)>> {
        let mut policy = Self::default();
        let Some(c) = c else { return Ok(policy) };
        let mut problems = Vec::new();
        if let Some(every) = &c.check_every {
            match humantime::parse_duration(every) {
                Ok(d) if d >= Duration::from_secs(1) => policy.check_every = d,
                Ok(_) => problems.push(("sla.check_every".into(), "must be at least 1s".into())),
                Err(e) => problems.push((
                    "sla.check_every".into(),
                    format!("`{every}` is not a duration: {e}"),
                )),
            }
        }
        policy.max_reassignments = c.max_reassignments;
        if let Some(e) = &c.escalate_to {
            let set = [e.owner.is_some(), e.pool.is_some(), e.review.is_some()]
                .iter()
                .filter(|s| **s)
                .count();
            if set != 1 {
                problems.push((
                    "sla.escalate_to".into(),
                    "needs exactly one of owner, pool or review".into(),
                ));
            } else if let Some(o) = &e.owner {
                policy.escalate_to = Escalation::Owner(o.clone());
            } else if let Some(p) = &e.pool {
                if pools.contains_key(p) {
                    policy.escalate_to = Escalation::Pool(p.clone());
                } else {
                    problems.push((
                        "sla.escalate_to.pool".into(),
                        format!("pool \"{p}\" does not exist"),
                    ));
                }
            } else if let Some(r) = &e.review {
                policy.escalate_to = Escalation::Review(r.clone());
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(problems)
        }
    }
}

/// "Has the owner touched the lead since it was assigned?" — the embedded store answers from
/// recorded touches; a CRM connector from the record's activity.
pub trait OwnerActivity: Send + Sync {
    fn touched<'a>(
        &'a self,
        lead_id: &'a str,
        owner: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// Persisted by the store, which owns them (issue 27: the store imports no stage).
pub use crate::store::{OpenAssignment, SlaOutcome};

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub checked: usize,
    pub met: usize,
    pub reassigned: usize,
    pub escalated: usize,
}

/// Handles every assignment overdue at `now`.
pub async fn sweep_once(
    router: &Router,
    store: &Store,
    activity: &dyn OwnerActivity,
    now: DateTime<Utc>,
) -> Result<SweepReport, StoreError> {
    sweep_once_with_crm(router, store, activity, None, now).await
}

/// As [`sweep_once`], and writes each new owner to the lead's CRM record through `crm`
/// (issue 25 item 3).
pub async fn sweep_once_with_crm(
    router: &Router,
    store: &Store,
    activity: &dyn OwnerActivity,
    crm: Option<&crate::crm::Crm>,
    now: DateTime<Utc>,
) -> Result<SweepReport, StoreError> {
    sweep_once_alerting(
        router,
        store,
        activity,
        crm,
        &crate::alert::Alerts::none(),
        now,
    )
    .await
}

/// As [`sweep_once_with_crm`], and tells `alerts` of each breach this replica settled
/// (issue 25 item 4).
pub async fn sweep_once_alerting(
    router: &Router,
    store: &Store,
    activity: &dyn OwnerActivity,
    crm: Option<&crate::crm::Crm>,
    alerts: &crate::alert::Alerts,
    now: DateTime<Utc>,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    for a in store.overdue_assignments(now, SWEEP_BATCH).await? {
        report.checked += 1;
        let outcome = if activity
            .touched(&a.lead_id, &a.owner, a.assigned_at)
            .await?
        {
            SlaOutcome::Met
        } else {
            breach(router, store, &a, now).await?
        };
        if store.settle_assignment(&a, &outcome, now).await? {
            // Only the replica that settled the step writes it; the outbox key makes a
            // replay of the same step a no-op.
            if let (Some(crm), Some(owner)) = (crm, new_owner(&outcome)) {
                crm_owner(crm, store, &a, owner).await;
            }
            if let Some(step) = breach_step(&outcome) {
                alerts.sla_breached(crate::alert::SlaBreach {
                    lead_id: a.lead_id.clone(),
                    owner: a.owner.clone(),
                    rule: a.rule.clone(),
                    sla: humantime::format_duration(a.sla).to_string(),
                    due_at: a.due_at,
                    step,
                    new_owner: new_owner(&outcome).map(str::to_string),
                });
            }
            match &outcome {
                SlaOutcome::Met => report.met += 1,
                SlaOutcome::Reassigned { owner, .. } => {
                    report.reassigned += 1;
                    metrics::counter!("leadgate_sla_breaches_total", "outcome" => "reassigned")
                        .increment(1);
                    tracing::info!(lead = %a.lead_id, from = %a.owner, to = %owner, "SLA breached; lead reassigned");
                }
                SlaOutcome::Escalated { owner, .. } => {
                    report.escalated += 1;
                    metrics::counter!("leadgate_sla_breaches_total", "outcome" => "escalated")
                        .increment(1);
                    tracing::info!(lead = %a.lead_id, from = %a.owner, to = owner.as_deref().unwrap_or("review"), "SLA breached; lead escalated");
                }
            }
        }
    }
    Ok(report)
}

/// `reassigned` or `escalated` for a breach; none when the SLA was met.
fn breach_step(outcome: &SlaOutcome) -> Option<&'static str> {
    match outcome {
        SlaOutcome::Met => None,
        SlaOutcome::Reassigned { .. } => Some("reassigned"),
        SlaOutcome::Escalated { .. } => Some("escalated"),
    }
}

/// The owner an SLA step hands the lead to, if any (review has none).
fn new_owner(outcome: &SlaOutcome) -> Option<&str> {
    match outcome {
        SlaOutcome::Met => None,
        SlaOutcome::Reassigned { owner, .. } => Some(owner),
        SlaOutcome::Escalated { owner, .. } => owner.as_deref(),
    }
}

/// Writes the step's new owner to the CRM. A failure is logged, not raised: the lead is
/// reassigned in leadgate either way, and the outbox row shows the write as pending or
/// failed in `crm_writes`.
async fn crm_owner(crm: &crate::crm::Crm, store: &Store, a: &OpenAssignment, owner: &str) {
    // The assignment row is one SLA step: its id names the step.
    let step = format!("sla-{}", a.id);
    match crm.write_owner(store, &a.lead_id, &step, owner).await {
        Ok(Some(d)) if d.status == crate::lead::DeliveryStatus::Failed => {
            tracing::warn!(lead = %a.lead_id, connector = %d.connector, detail = d.detail.as_deref().unwrap_or(""), "SLA owner not written to the CRM")
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(lead = %a.lead_id, error = %e, "SLA owner not written to the CRM yet")
        }
    }
}

/// The owner did not touch the lead in time: the next member of the pool, or escalation.
async fn breach(
    router: &Router,
    store: &Store,
    a: &OpenAssignment,
    now: DateTime<Utc>,
) -> Result<SlaOutcome, StoreError> {
    let policy = router.sla_policy();
    let mut exclude = a.previous_owners.clone();
    exclude.push(a.owner.clone());
    let mut reason = format!(
        "SLA of {} breached: owner {} did not touch the lead by {}",
        humantime::format_duration(a.sla),
        a.owner,
        a.due_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut skipped = Vec::new();
    if a.step < policy.max_reassignments {
        if let Some(pool) = a.pool.as_deref().and_then(|p| router.pool(p)) {
            let pick = router.pick(pool, now, store, &exclude).await?;
            skipped.extend(pick.skipped);
            if let Some(m) = pick.member {
                reason += &format!(
                    "; reassigned to {}, next eligible in pool `{}`",
                    m.label(),
                    pool.id
                );
                let due_at = now + chrono::Duration::from_std(a.sla).unwrap_or_default();
                return Ok(SlaOutcome::Reassigned {
                    owner: m.owner.clone(),
                    pool: pool.id.clone(),
                    due_at,
                    reason,
                    skipped,
                });
            }
            reason += &format!("; nobody else in pool `{}` can take it now", pool.id);
        }
    } else {
        reason += &format!("; reassigned {} time(s) already", a.step);
    }
    match &policy.escalate_to {
        Escalation::Owner(o) => {
            reason += &format!("; escalated to owner {o}");
            let day = router.owner_day(o, now);
            crate::route::Assignments::count(store, o, &day).await?;
            Ok(SlaOutcome::Escalated {
                owner: Some(o.clone()),
                pool: None,
                reason,
                skipped,
            })
        }
        Escalation::Pool(p) => {
            if let Some(pool) = router.pool(p) {
                let pick = router.pick(pool, now, store, &exclude).await?;
                skipped.extend(pick.skipped);
                if let Some(m) = pick.member {
                    reason += &format!("; escalated to {} in pool `{p}`", m.label());
                    return Ok(SlaOutcome::Escalated {
                        owner: Some(m.owner.clone()),
                        pool: Some(p.clone()),
                        reason,
                        skipped,
                    });
                }
            }
            reason += &format!("; nobody in escalation pool `{p}` can take it now; sent to review");
            Ok(SlaOutcome::Escalated {
                owner: None,
                pool: None,
                reason,
                skipped,
            })
        }
        Escalation::Review(why) => {
            reason += &format!("; sent to review: {why}");
            Ok(SlaOutcome::Escalated {
                owner: None,
                pool: None,
                reason,
                skipped,
            })
        }
    }
}

/// The sweep loop of `leadgate serve`: every `check_every` until `stop` turns true.
pub async fn run(state: Arc<crate::services::Services>, mut stop: watch::Receiver<bool>) {
    let every = state.pipeline.router.sla_policy().check_every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        match sweep_once_alerting(
            &state.pipeline.router,
            &state.store,
            &state.store,
            state.delivery.as_deref(),
            &state.alerts,
            Utc::now(),
        )
        .await
        {
            Ok(r) if r.checked > 0 => tracing::info!(
                checked = r.checked,
                met = r.met,
                reassigned = r.reassigned,
                escalated = r.escalated,
                "SLA sweep"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "SLA sweep failed; retrying at the next interval")
            }
        }
    }
}
