//! One pass of the re-scoring sweep, and the loop `leadgate serve` runs it in.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::{Cause, Claimed, GradeChange, RescoreError, RescorePolicy, Rescored, Settle, NEVER};
use crate::lead::{Decision, EnrichedLead};
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
}

/// A person made ready to score: their stored decision and the account they score with.
struct Ready {
    claimed: Claimed,
    decision: Decision,
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
    loop {
        let claimed = store
            .rescore_claim(now_ms, next, policy.batch, &token)
            .await?;
        if claimed.is_empty() {
            break;
        }
        let full = claimed.len() == policy.batch;
        let ready = prepare(services, claimed, now).await;
        report.scored += ready.len();
        let (settles, changes) = {
            let services = services.clone();
            let rules = policy.rules.clone();
            tokio::task::spawn_blocking(move || score_batch(&services, ready, &rules, now, next))
                .await
                .map_err(|e| {
                    crate::store::StoreError::Corrupt(format!("re-scoring stopped: {e}"))
                })?
        };
        let recorded = store.rescore_settle(&settles).await?;
        report.changed += recorded.len();
        report.grade_changes.extend(
            changes
                .into_iter()
                .filter(|c| recorded.contains(&c.lead_id)),
        );
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

/// Parses each claimed person's decision and looks up their account (async: the roll-up
/// may read the store). A record that no longer parses is logged and left for next pass.
async fn prepare(services: &Services, claimed: Vec<Claimed>, now: DateTime<Utc>) -> Vec<Ready> {
    let mut ready = Vec::with_capacity(claimed.len());
    for c in claimed {
        let Some(record) = c.record.as_deref() else {
            continue;
        };
        let decision: Decision = match serde_json::from_str(record) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(lead = %c.lead_id, error = %e, "stored decision unreadable; not re-scored");
                continue;
            }
        };
        let account = services.pipeline.account_at_rest(&decision.lead, now).await;
        ready.push(Ready {
            claimed: c,
            decision,
            account,
        });
    }
    ready
}

/// Scores a batch on every core (scoped threads: the batch is already in memory and the
/// work is pure CPU), keeping the batch's order.
fn score_batch(
    services: &Services,
    ready: Vec<Ready>,
    rules: &str,
    now: DateTime<Utc>,
    next: i64,
) -> (Vec<Settle>, Vec<GradeChange>) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(ready.len().max(1));
    let chunk = ready.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Ready>> = Vec::new();
    let mut ready = ready.into_iter().peekable();
    while ready.peek().is_some() {
        chunks.push(ready.by_ref().take(chunk).collect());
    }
    let results: Vec<Vec<(Settle, Option<GradeChange>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|r| rescore_one(services, r, rules, now, next))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut settles = Vec::new();
    let mut changes = Vec::new();
    for (settle, change) in results.into_iter().flatten() {
        settles.push(settle);
        changes.extend(change);
    }
    (settles, changes)
}

/// Scores one person again from their stored enriched lead and whole event history.
fn rescore_one(
    services: &Services,
    ready: Ready,
    rules: &str,
    now: DateTime<Utc>,
    next: i64,
) -> (Settle, Option<GradeChange>) {
    let Ready {
        claimed,
        decision,
        account,
    } = ready;
    let scorer = &services.pipeline.scorer;
    let mut lead = decision.lead.clone();
    // Decisions from before the history (migration 0016) carry their events themselves.
    if !claimed.events.is_empty() {
        lead.events = claimed.events;
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
        enrichment: decision.enrichment.clone(),
    };
    let mut ctx = RuleContext::for_lead(&enriched, &account, now);
    scorer.prepare(&mut ctx);
    let (scored, cards) = scorer.score_all(enriched, &ctx, now);
    let unchanged = scored.score == decision.score && scored.grade == decision.grade;
    let mut settle = Settle {
        lead_id: claimed.lead_id.clone(),
        decision_id: claimed.decision_id,
        due_at,
        decision: None,
    };
    if unchanged {
        return (settle, None);
    }
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
        rules: rules.to_string(),
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
    (settle, change)
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
        let (_, found) = {
            let services = services.clone();
            let rules = policy.rules.clone();
            tokio::task::spawn_blocking(move || score_batch(&services, ready, &rules, now, NEVER))
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
