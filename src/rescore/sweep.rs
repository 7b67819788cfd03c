//! One pass of the re-scoring sweep, and the loop `leadgate serve` runs it in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::trigger::{Action, Triggers};
use super::{
    Cause, Claimed, Fired, GradeChange, RescoreError, RescorePolicy, Rescored, Settle, NEVER,
};
use crate::lead::{Decision, EnrichedLead, ScoredLead};
use crate::rules::RuleContext;
use crate::services::Services;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    /// People marked due because the rules digest changed since the last pass.
    pub marked: u64,
    /// People scored again.
    pub scored: usize,
    /// Decisions recorded because a score or grade moved.
    pub changed: usize,
    /// The grades that moved, in the order they were recorded.
    pub grade_changes: Vec<GradeChange>,
    /// The triggers that fired.
    pub fired: Vec<Fired>,
}

/// What scoring reads of a stored decision. The rest of the record (factors, every score's
/// card, the route, deliveries) is parsed only for a person whose score moved, to write
/// their new decision: most people's do not.
#[derive(serde::Deserialize)]
struct AtRest {
    lead: crate::lead::Lead,
    enrichment: crate::lead::Enrichment,
    score: i64,
    grade: String,
}

/// A person made ready to score: what their stored decision holds and the account they
/// score with.
struct Ready {
    claimed: Claimed,
    at_rest: AtRest,
    account: serde_json::Value,
}

/// Scores everyone due at `now`, batch by batch, until nobody is due. Each batch is
/// claimed (moved to the next pass), scored, and written back in one transaction.
pub async fn sweep_once(
    services: &Arc<Services>,
    policy: &RescorePolicy,
    now: DateTime<Utc>,
) -> Result<SweepReport, RescoreError> {
    let store = &services.store;
    let mut report = SweepReport {
        marked: store.rescore_rules(&policy.rules).await?,
        ..Default::default()
    };
    let token = uuid::Uuid::now_v7().to_string();
    let now_ms = now.timestamp_millis();
    let every_ms = i64::try_from(policy.every.as_millis()).unwrap_or(i64::MAX);
    let next = now_ms.saturating_add(every_ms);
    // The next batch, claimed and read while this one is scored.
    let mut claimed_ahead = None;
    loop {
        let claimed = match claimed_ahead.take() {
            Some(claimed) => claimed?,
            None => {
                store
                    .rescore_claim(now_ms, next, policy.batch, &token)
                    .await?
            }
        };
        if claimed.is_empty() {
            break;
        }
        let full = claimed.len() == policy.batch;
        let ready = prepare(services, claimed, now).await;
        report.scored += ready.len();
        let scoring = {
            let services = services.clone();
            let policy = policy.clone();
            tokio::task::spawn_blocking(move || score_batch(&services, ready, &policy, now, next))
        };
        // Claiming and reading the next batch waits on SQLite more than it computes: done
        // beside the scoring, it fills the cores the scoring leaves idle. The claimed people
        // are moved to `next` at once, so no batch takes them again, and a failed claim is
        // raised after this batch is written.
        let scored = if full {
            let (scored, ahead) = tokio::join!(
                scoring,
                store.rescore_claim(now_ms, next, policy.batch, &token)
            );
            claimed_ahead = Some(ahead);
            scored
        } else {
            scoring.await
        };
        let (mut settles, changes, firings) = scored
            .map_err(|e| crate::store::StoreError::Corrupt(format!("re-scoring stopped: {e}")))?;
        for f in &firings {
            if f.triggers.iter().any(|t| policy.triggers.0[*t].reroutes()) {
                if let Some(s) = settles.get_mut(f.settle) {
                    reroute(services, s, now).await?;
                }
            }
        }
        // A human override (console, issue 24) wins over a score at rest, as it does over
        // an arrival's: an overridden grade does not move, and fires nothing.
        let mut held = std::collections::HashSet::new();
        for s in settles.iter_mut() {
            if let Some(d) = s.decision.as_mut() {
                if let Some(o) = store.active_override(&s.lead_id).await? {
                    crate::console::overrides::apply(d, &o);
                    if o.grade.is_some() {
                        held.insert(s.lead_id.clone());
                    }
                }
            }
        }
        let changes: Vec<GradeChange> = changes
            .into_iter()
            .filter(|c| !held.contains(&c.lead_id))
            .collect();
        let firings: Vec<Firing> = firings
            .into_iter()
            .filter(|f| !held.contains(&settles[f.settle].lead_id))
            .collect();
        let recorded = store.rescore_settle(&settles).await?;
        report.changed += recorded.len();
        // "A lead becomes hot" alerts hear of grades moved at rest as of arrivals' (issue 25).
        for c in changes.iter().filter(|c| recorded.contains(&c.lead_id)) {
            let decision = settles
                .iter()
                .find(|s| s.lead_id == c.lead_id)
                .and_then(|s| s.decision.as_ref());
            services.alerts.grade_changed(crate::alert::GradeChange {
                lead_id: c.lead_id.clone(),
                previous_grade: Some(c.previous_grade.clone()),
                grade: c.grade.clone(),
                score: c.score,
                factors: decision.map(crate::alert::top_factors).unwrap_or_default(),
            });
        }
        report.grade_changes.extend(
            changes
                .into_iter()
                .filter(|c| recorded.contains(&c.lead_id)),
        );
        for f in firings {
            let s = &settles[f.settle];
            if !recorded.contains(&s.lead_id) {
                continue;
            }
            if let Some(d) = &s.decision {
                report
                    .fired
                    .extend(fire(services, &policy.triggers, &f.triggers, s, d).await);
            }
        }
        if !full {
            break;
        }
    }
    for c in &report.grade_changes {
        metrics::counter!("leadgate_rescore_grade_changes_total", "cause" => c.cause.as_str())
            .increment(1);
    }
    Ok(report)
}

/// Parses what scoring needs of each claimed person's decision (on every core), and looks up
/// their account (async: the roll-up may read the store). A record that no longer parses is
/// logged and left for next pass.
async fn prepare(services: &Services, claimed: Vec<Claimed>, now: DateTime<Utc>) -> Vec<Ready> {
    let parsed = tokio::task::spawn_blocking(move || {
        on_every_core(claimed, |c| {
            let record = c.record.as_deref()?;
            match serde_json::from_str::<AtRest>(record) {
                Ok(at_rest) => Some((c, at_rest)),
                Err(e) => {
                    tracing::warn!(lead = %c.lead_id, error = %e, "stored decision unreadable; not re-scored");
                    None
                }
            }
        })
    })
    .await
    .unwrap_or_default();
    let mut ready = Vec::with_capacity(parsed.len());
    for (claimed, at_rest) in parsed.into_iter().flatten() {
        let account = services.pipeline.account_at_rest(&at_rest.lead, now).await;
        ready.push(Ready {
            claimed,
            at_rest,
            account,
        });
    }
    ready
}

/// `f` over `items` on every core (scoped threads: the items are in memory and the work is
/// pure CPU), keeping their order.
fn on_every_core<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The triggers that fired for the batch's `settle`-th person.
struct Firing {
    settle: usize,
    triggers: Vec<usize>,
}

/// What scoring one person gave.
type Scored = (Settle, Option<GradeChange>, Vec<usize>);

/// Scores a batch on every core, keeping the batch's order.
fn score_batch(
    services: &Services,
    ready: Vec<Ready>,
    policy: &RescorePolicy,
    now: DateTime<Utc>,
    next: i64,
) -> (Vec<Settle>, Vec<GradeChange>, Vec<Firing>) {
    let results = on_every_core(ready, |r| rescore_one(services, r, policy, now, next));
    let mut settles = Vec::new();
    let mut changes = Vec::new();
    let mut firings = Vec::new();
    for (settle, change, fired) in results {
        if !fired.is_empty() {
            firings.push(Firing {
                settle: settles.len(),
                triggers: fired,
            });
        }
        settles.push(settle);
        changes.extend(change);
    }
    (settles, changes, firings)
}

/// Sets what routing and triggers read beside the lead: `score`, `grade`, `scores`,
/// `grades`, as the pipeline sets them before routing.
fn set_scores(
    ctx: &mut RuleContext,
    score: i64,
    grade: &str,
    cards: &std::collections::BTreeMap<String, crate::lead::ScoreCard>,
) {
    ctx.set_json("score", score.into());
    ctx.set_json("grade", grade.into());
    let (mut by_score, mut by_grade) = (serde_json::Map::new(), serde_json::Map::new());
    for (id, card) in cards {
        by_score.insert(id.clone(), card.score.into());
        by_grade.insert(id.clone(), card.grade.as_str().into());
    }
    ctx.set_json("scores", by_score.into());
    ctx.set_json("grades", by_grade.into());
}

/// Scores one person again from their stored enriched lead and whole event history.
fn rescore_one(
    services: &Services,
    ready: Ready,
    policy: &RescorePolicy,
    now: DateTime<Utc>,
    next: i64,
) -> Scored {
    let Ready {
        mut claimed,
        at_rest,
        account,
    } = ready;
    let scorer = &services.pipeline.scorer;
    let mut lead = at_rest.lead;
    // Decisions from before the history (migration 0016) carry their events themselves.
    if !claimed.events.is_empty() {
        lead.events = std::mem::take(&mut claimed.events);
    }
    lead.events
        .retain(|e| !crate::events::is_expired(scorer, e, now));
    let due_at = if scorer.fades(&lead.events) {
        next
    } else {
        NEVER
    };
    let enriched = EnrichedLead {
        lead,
        enrichment: at_rest.enrichment,
    };
    // The list of events only if the rules or the triggers read it: building its JSON was
    // most of the context of a long history.
    let event_list = scorer.reads_event_list() || policy.triggers.read_event_list();
    let mut ctx = RuleContext::for_lead_reading(&enriched, &account, now, event_list);
    scorer.prepare(&mut ctx);
    let (scored, cards) = scorer.score_all(enriched, &ctx, now);
    let unchanged = scored.score == at_rest.score && scored.grade == at_rest.grade;
    let mut settle = Settle {
        lead_id: claimed.lead_id.clone(),
        decision_id: claimed.decision_id,
        due_at,
        decision: None,
        rerouted: false,
    };
    if unchanged {
        return (settle, None, Vec::new());
    }
    // The whole record, to write the new decision from it.
    let decision: Decision = match claimed.record.as_deref().map(serde_json::from_str) {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            tracing::warn!(lead = %claimed.lead_id, error = %e, "stored decision unreadable; not re-scored");
            return (settle, None, Vec::new());
        }
        None => return (settle, None, Vec::new()),
    };
    let cause = Cause::from_pending(claimed.pending.as_deref());
    let change = (scored.grade != decision.grade).then(|| GradeChange {
        lead_id: claimed.lead_id.clone(),
        previous_grade: decision.grade.clone(),
        grade: scored.grade.clone(),
        previous_score: decision.score,
        score: scored.score,
        cause,
    });
    let rescored = Rescored {
        cause,
        previous_score: decision.score,
        previous_grade: decision.grade.clone(),
        rules: policy.rules.clone(),
    };
    let fired = if policy.triggers.is_empty() {
        Vec::new()
    } else {
        set_scores(&mut ctx, scored.score, &scored.grade, &cards);
        ctx.set_json(
            "previous",
            super::trigger::previous(&decision.grade, decision.score, &decision.route.rule),
        );
        policy
            .triggers
            .0
            .iter()
            .enumerate()
            .filter(|(_, t)| t.fires(&ctx))
            .map(|(i, _)| i)
            .collect()
    };
    settle.decision = Some(Decision {
        lead: scored.enriched.lead,
        enrichment: scored.enriched.enrichment,
        score: scored.score,
        grade: scored.grade,
        factors: scored.factors,
        scores: cards,
        // Nothing was delivered for this decision (a `[[trigger]]` may deliver).
        delivery: Vec::new(),
        decided_at: now,
        rescore: Some(rescored),
        ..decision
    });
    (settle, change, fired)
}

/// Routes a re-scored lead again (a trigger's `reroute`): its decision takes the new route.
async fn reroute(
    services: &Services,
    settle: &mut Settle,
    now: DateTime<Utc>,
) -> Result<(), RescoreError> {
    let Some(decision) = settle.decision.as_mut() else {
        return Ok(());
    };
    let enriched = EnrichedLead {
        lead: decision.lead.clone(),
        enrichment: decision.enrichment.clone(),
    };
    let account = services.pipeline.account_at_rest(&enriched.lead, now).await;
    let mut ctx = RuleContext::for_lead(&enriched, &account, now);
    services.pipeline.scorer.prepare(&mut ctx);
    set_scores(&mut ctx, decision.score, &decision.grade, &decision.scores);
    let scored = ScoredLead {
        enriched,
        score: decision.score,
        grade: decision.grade.clone(),
        factors: decision.factors.clone(),
    };
    decision.route = services
        .pipeline
        .router
        .route(&scored, &mut ctx, &services.store, now)
        .await?;
    decision.status = match decision.route.action {
        crate::lead::RouteAction::Review => crate::lead::LeadStatus::Review,
        _ => crate::lead::LeadStatus::Done,
    };
    settle.rerouted = true;
    Ok(())
}

/// Runs the actions of the triggers that fired for a recorded decision, each firing once:
/// its outbox row (`rescore:TRIGGER:LEAD:DECISION`) is begun before and closed after, and a
/// closed one is not run again. A CRM failure is logged, not raised: the score stands in
/// leadgate either way, and `crm_writes` shows the effect as failed.
async fn fire(
    services: &Services,
    triggers: &Triggers,
    fired: &[usize],
    settle: &Settle,
    decision: &Decision,
) -> Vec<Fired> {
    use crate::crm::outbox::{Effect, EffectStatus, Finished};
    let store = &services.store;
    let lead = settle.lead_id.as_str();
    let mut done = Vec::new();
    for t in fired.iter().map(|i| &triggers.0[*i]) {
        // The decision it fires on is the one it replaced plus this sweep's: the replaced
        // one's id names it (one re-scored decision per replaced decision, see settle).
        let effect = format!("rescore:{}:{lead}:{}", t.name, settle.decision_id);
        let entry = match store
            .outbox_begin(&Effect {
                key: effect.clone(),
                lead_id: lead.to_string(),
                job_id: None,
                connector: "-".into(),
                op: "trigger".into(),
                decision: None,
            })
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(lead, trigger = %t.name, error = %e, "trigger not fired");
                continue;
            }
        };
        if entry.status == EffectStatus::Ok {
            continue;
        }
        let mut error = None;
        for action in &t.then {
            let outcome = match (action, services.delivery.as_deref()) {
                (_, None) => Ok(()),
                (Action::Reroute, Some(crm)) => crm
                    .deliver_at_rest(store, lead, &format!("{effect}:reroute"), decision.clone())
                    .await
                    .map(|_| ()),
                (Action::WriteScore, Some(crm)) => crm
                    .write_at_rest(store, lead, &format!("{effect}:write_score"), decision)
                    .await
                    .map(|_| ()),
                (Action::Enroll(seq), Some(crm)) => crm
                    .enroll_at_rest(store, lead, &effect, decision, seq)
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = outcome {
                tracing::warn!(lead, trigger = %t.name, error = %e, "trigger action failed");
                error = Some(e.to_string());
            }
        }
        let status = if error.is_some() {
            EffectStatus::Failed
        } else {
            EffectStatus::Ok
        };
        let finished = Finished {
            status,
            record_id: None,
            result_id: None,
            answer: None,
            error,
        };
        if let Err(e) = store.outbox_finish(&effect, &finished).await {
            tracing::warn!(lead, trigger = %t.name, error = %e, "trigger firing not closed");
        }
        metrics::counter!("leadgate_rescore_triggers_total", "trigger" => t.name.clone())
            .increment(1);
        done.push(Fired {
            trigger: t.name.clone(),
            lead_id: lead.to_string(),
            effect,
        });
    }
    done
}

/// The grade changes a pass would make, writing nothing (`leadgate rescore --dry-run`):
/// everyone with `all` (as after `--all`, cause `rules_change`), else who is due at `now`.
/// Returns (people scored, grade changes).
pub async fn preview(
    services: &Arc<Services>,
    policy: &RescorePolicy,
    now: DateTime<Utc>,
    all: bool,
) -> Result<(usize, Vec<GradeChange>), RescoreError> {
    let due = (!all).then(|| now.timestamp_millis());
    let mut after = String::new();
    let (mut scored, mut changes) = (0, Vec::new());
    loop {
        let mut peeked = services
            .store
            .rescore_peek(&after, policy.batch, due)
            .await?;
        let Some(last) = peeked.last() else { break };
        after = last.lead_id.clone();
        let full = peeked.len() == policy.batch;
        if all {
            for c in &mut peeked {
                c.pending = Some("rules_change".into());
            }
        }
        let ready = prepare(services, peeked, now).await;
        scored += ready.len();
        let (_, found, _) = {
            let services = services.clone();
            let policy = policy.clone();
            tokio::task::spawn_blocking(move || score_batch(&services, ready, &policy, now, NEVER))
                .await
                .map_err(|e| {
                    crate::store::StoreError::Corrupt(format!("re-scoring stopped: {e}"))
                })?
        };
        changes.extend(found);
        if !full {
            break;
        }
    }
    Ok((scored, changes))
}

/// Grade changes as the CLI prints them: how many, then each move (from → to) by count.
pub fn render(scored: usize, changes: &[GradeChange]) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    let pct = if scored == 0 {
        0.0
    } else {
        100.0 * changes.len() as f64 / scored as f64
    };
    let _ = writeln!(
        t,
        "{} of {scored} people would change grade ({pct:.1}%)",
        changes.len()
    );
    let mut moves: std::collections::BTreeMap<(&str, &str, &str), usize> = Default::default();
    for c in changes {
        *moves
            .entry((&c.previous_grade, &c.grade, c.cause.as_str()))
            .or_default() += 1;
    }
    let mut moves: Vec<_> = moves.into_iter().collect();
    moves.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if !moves.is_empty() {
        let _ = writeln!(t, "\nGrade moves (from → to, cause)");
        for ((from, to, cause), n) in moves {
            let _ = writeln!(t, "  {from:<10} → {to:<10} {cause:<13} {n:>7}");
        }
    }
    t
}

/// Makes everyone due now with cause `rules_change` (`leadgate rescore --all`).
pub async fn mark_all(store: &crate::store::Store) -> Result<u64, RescoreError> {
    Ok(store.rescore_mark_all().await?)
}

/// The sweep loop of `leadgate serve`: a pass every `[rescore] every` until `stop`.
pub async fn run(services: Arc<Services>, policy: RescorePolicy, mut stop: watch::Receiver<bool>) {
    loop {
        match sweep_once(&services, &policy, Utc::now()).await {
            Ok(r) if r.scored > 0 || r.marked > 0 => tracing::info!(
                scored = r.scored,
                changed = r.changed,
                grades_moved = r.grade_changes.len(),
                marked = r.marked,
                "re-scoring sweep"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "re-scoring sweep failed; retrying at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.every) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
