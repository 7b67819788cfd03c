//! The store's side of routing: atomic member picks (rotation position, per-owner daily
//! counts, run-time pauses), assignments with SLA deadlines, owners' touches, and the
//! routing audit trail. No routing decisions here: [`crate::route::choose`] makes the pick,
//! this file makes it atomic.
//!
//! Written once for both backends (`dialect`); the pick itself, whose locking differs, is in
//! `sqlite/routing.rs` and `postgres/routing.rs`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sqlx::Row;

use super::dialect::written_once;
use super::StoreError;
use crate::lead::{Decision, LeadStatus, RouteAction, SkippedMember, SlaStep};

/// Days of counts a dry run loads: enough to cover every time zone's "today".
const SNAPSHOT_DAYS: i64 = 2;

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// One row of a lead's assignment history (`GET /v1/leads/{id}/assignments`).
#[derive(Debug, Clone, Serialize)]
pub struct AssignmentRecord {
    pub rule: String,
    pub pool: Option<String>,
    pub owner: String,
    pub assigned_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_due_at: Option<DateTime<Utc>>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One entry of the routing audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct RouteEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What recording a touch did.
#[derive(Debug, Clone, Serialize)]
pub struct TouchRecorded {
    pub lead_id: String,
    /// Open SLA assignments this touch closed as met.
    pub sla_met: u64,
}

/// Routing state as read from the store, for a dry run to start from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignmentSnapshot {
    pub positions: HashMap<String, u64>,
    /// (owner, day) → assignments.
    pub counts: HashMap<(String, String), u32>,
    /// (pool, owner) paused at run time; pool `*` pauses the owner in every pool.
    pub paused: HashSet<(String, String)>,
}

/// An assignment whose SLA deadline has passed, still open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAssignment {
    pub id: i64,
    pub lead_id: String,
    pub rule: String,
    pub pool: Option<String>,
    pub owner: String,
    pub assigned_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub sla: Duration,
    /// How many times this lead was already reassigned for SLA.
    pub step: u32,
    /// Owners who had the lead before this one.
    pub previous_owners: Vec<String>,
}

/// What the sweep decided for one overdue assignment.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaOutcome {
    /// The owner touched the lead: the SLA is met.
    Met,
    /// Moved to the next eligible member of the pool, with a fresh SLA.
    Reassigned {
        owner: String,
        pool: String,
        due_at: DateTime<Utc>,
        reason: String,
        skipped: Vec<SkippedMember>,
    },
    /// Escalated: to an owner (and the pool they were picked from), or to review.
    Escalated {
        owner: Option<String>,
        pool: Option<String>,
        reason: String,
        skipped: Vec<SkippedMember>,
    },
}

written_once! {
helpers {

/// Opens an assignment row for a recorded decision that assigned the lead (with its SLA
/// deadline, if any), superseding the lead's earlier open ones. Called inside the
/// transaction that records the decision.
pub(in crate::store) async fn record_assignment(
    tx: &mut Conn,
    lead_id: &str,
    decision: &Decision,
) -> Result<(), StoreError> {
    let r = &decision.route;
    let (RouteAction::Assign, Some(owner), None) = (r.action, &r.owner, r.sla_step) else {
        return Ok(());
    };
    let at = decision.decided_at.timestamp_millis();
    sqlx::query("UPDATE route_assignments SET status = 'superseded', closed_at = $1, note = 'the lead was routed again' WHERE lead_id = $2 AND status = 'open'")
        .bind(at)
        .bind(lead_id)
        .execute(&mut *tx)
        .await?;
    let sla_ms = r
        .sla
        .as_deref()
        .and_then(|s| humantime::parse_duration(s).ok())
        .map(|d| d.as_millis() as i64);
    let due = r.sla_due_at.map(|d| d.timestamp_millis());
    sqlx::query(
        "INSERT INTO route_assignments (lead_id, rule, pool, owner, assigned_at, sla_ms, due_at, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(lead_id)
    .bind(&r.rule)
    .bind(&r.pool)
    .bind(owner)
    .bind(at)
    .bind(sla_ms)
    .bind(due)
    .bind(if due.is_some() { "open" } else { "untracked" })
    .execute(&mut *tx)
    .await?;
    let detail = match (&r.pool, &r.sla) {
        (Some(p), Some(s)) => format!("rule {} · pool {p} · SLA {s}", r.rule),
        (Some(p), None) => format!("rule {} · pool {p}", r.rule),
        (None, Some(s)) => format!("rule {} · SLA {s}", r.rule),
        (None, None) => format!("rule {}", r.rule),
    };
    event(
        tx,
        Some(lead_id),
        decision.decided_at,
        "assigned",
        Some(owner),
        Some(&detail),
    )
    .await
}

async fn event(
    tx: &mut Conn,
    lead_id: Option<&str>,
    at: DateTime<Utc>,
    kind: &str,
    owner: Option<&str>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO route_events (lead_id, at, event, owner, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(lead_id)
    .bind(at.timestamp_millis())
    .bind(kind)
    .bind(owner)
    .bind(detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
}

    /// Positions, recent counts and pauses: what a dry run starts from.
    pub async fn assignment_snapshot(
        &self,
        now: DateTime<Utc>,
    ) -> Result<AssignmentSnapshot, StoreError> {
        let mut snap = AssignmentSnapshot {
            positions: self.rotation_positions().await?,
            ..AssignmentSnapshot::default()
        };
        let since = (now - chrono::Duration::days(SNAPSHOT_DAYS))
            .date_naive()
            .to_string();
        for r in sqlx::query("SELECT owner, day, assigned FROM route_counts WHERE day >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?
        {
            snap.counts.insert(
                (r.get("owner"), r.get("day")),
                r.get::<i64, _>("assigned").max(0) as u32,
            );
        }
        for r in sqlx::query("SELECT pool, owner FROM route_pauses")
            .fetch_all(&self.pool)
            .await?
        {
            snap.paused.insert((r.get("pool"), r.get("owner")));
        }
        Ok(snap)
    }

    /// Adds counts from an in-memory run (`leadgate run`).
    pub async fn add_assignment_counts(
        &self,
        counts: &HashMap<(String, String), u32>,
    ) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for ((owner, day), n) in counts {
            sqlx::query("INSERT INTO route_counts (owner, day, assigned) VALUES ($1, $2, $3) ON CONFLICT(owner, day) DO UPDATE SET assigned = route_counts.assigned + excluded.assigned")
                .bind(owner)
                .bind(day)
                .bind(i64::from(*n))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An owner's count on one of their days.
    pub async fn assigned_on(&self, owner: &str, day: &str) -> Result<u32, StoreError> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT assigned FROM route_counts WHERE owner = $1 AND day = $2")
                .bind(owner)
                .bind(day)
                .fetch_optional(&self.pool)
                .await?;
        Ok(n.unwrap_or(0).max(0) as u32)
    }

    /// Pauses an owner in a pool (`*`: every pool) until resumed.
    pub async fn pause_member(
        &self,
        pool: &str,
        owner: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO route_pauses (pool, owner, reason, paused_at) VALUES ($1, $2, $3, $4) ON CONFLICT(pool, owner) DO UPDATE SET reason = excluded.reason")
            .bind(pool)
            .bind(owner)
            .bind(reason)
            .bind(now.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        event(
            &mut tx,
            None,
            now,
            "paused",
            Some(owner),
            Some(&format!(
                "pool {pool}{}",
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            )),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resumes a paused owner; false when they were not paused there.
    pub async fn resume_member(
        &self,
        pool: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM route_pauses WHERE pool = $1 AND owner = $2")
            .bind(pool)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            event(
                &mut tx,
                None,
                now,
                "resumed",
                Some(owner),
                Some(&format!("pool {pool}")),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that an owner (or, without one, whoever owns it) worked a lead; closes the
    /// lead's open SLA assignments for that owner as met. `None` when no such lead exists.
    pub async fn record_touch(
        &self,
        lead: &str,
        owner: Option<&str>,
        activity: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<TouchRecorded>, StoreError> {
        let mut tx = self.begin_pick().await?;
        let lead_id: Option<String> = sqlx::query_scalar(
            // A pending lead (SQLite, migration 0010) by its id through its jobs; on
            // PostgreSQL every lead has its row from the accept on and the last part finds
            // nothing more.
            "SELECT id FROM leads WHERE id = $1 UNION ALL SELECT lead_id FROM jobs WHERE id = $1
             UNION ALL SELECT lead_id FROM jobs WHERE lead_id = $1 LIMIT 1",
        )
        .bind(lead)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(lead_id) = lead_id else {
            return Ok(None);
        };
        let at_ms = at.timestamp_millis();
        sqlx::query("INSERT INTO route_touches (lead_id, owner, activity, at) VALUES ($1, $2, $3, $4)")
            .bind(&lead_id)
            .bind(owner)
            .bind(activity)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        let met = sqlx::query(
            "UPDATE route_assignments SET status = 'met', closed_at = $1,
               note = CASE WHEN due_at < $2 THEN 'touched after the deadline' ELSE 'touched in time' END
             WHERE lead_id = $3 AND status = 'open' AND assigned_at <= $4 AND ($5 IS NULL OR owner = $6)",
        )
        .bind(at_ms)
        .bind(at_ms)
        .bind(&lead_id)
        .bind(at_ms)
        .bind(owner)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        event(&mut tx, Some(&lead_id), at, "touched", owner, activity).await?;
        tx.commit().await?;
        Ok(Some(TouchRecorded {
            lead_id,
            sla_met: met,
        }))
    }

    /// A lead's assignments, oldest first.
    pub async fn lead_assignments(
        &self,
        lead_id: &str,
    ) -> Result<Vec<AssignmentRecord>, StoreError> {
        let rows = sqlx::query("SELECT rule, pool, owner, assigned_at, due_at, status, closed_at, note FROM route_assignments WHERE lead_id = $1 ORDER BY id")
            .bind(lead_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AssignmentRecord {
                rule: r.get("rule"),
                pool: r.get("pool"),
                owner: r.get("owner"),
                assigned_at: ms_to_time(r.get("assigned_at")),
                sla_due_at: r.get::<Option<i64>, _>("due_at").map(ms_to_time),
                status: r.get("status"),
                closed_at: r.get::<Option<i64>, _>("closed_at").map(ms_to_time),
                note: r.get("note"),
            })
            .collect())
    }

    /// A lead's routing audit trail, oldest first.
    pub async fn route_events(&self, lead_id: &str) -> Result<Vec<RouteEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, event, owner, detail FROM route_events WHERE lead_id = $1 ORDER BY id",
        )
        .bind(lead_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RouteEvent {
                at: ms_to_time(r.get("at")),
                event: r.get("event"),
                owner: r.get("owner"),
                detail: r.get("detail"),
            })
            .collect())
    }

    /// Open assignments whose SLA deadline is at or before `now`, oldest deadline first.
    pub async fn overdue_assignments(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OpenAssignment>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, lead_id, rule, pool, owner, assigned_at, due_at, sla_ms, step, previous_owners
             FROM route_assignments WHERE status = 'open' AND due_at <= $1 ORDER BY due_at LIMIT $2",
        )
        .bind(now.timestamp_millis())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| OpenAssignment {
                id: r.get("id"),
                lead_id: r.get("lead_id"),
                rule: r.get("rule"),
                pool: r.get("pool"),
                owner: r.get("owner"),
                assigned_at: ms_to_time(r.get("assigned_at")),
                due_at: ms_to_time(r.get::<Option<i64>, _>("due_at").unwrap_or_default()),
                sla: Duration::from_millis(
                    r.get::<Option<i64>, _>("sla_ms").unwrap_or_default().max(0) as u64,
                ),
                step: r.get::<i64, _>("step").max(0) as u32,
                previous_owners: serde_json::from_str(&r.get::<String, _>("previous_owners"))
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// Closes an overdue assignment with the sweep's outcome, in one transaction: the old
    /// row, the new assignment, a decision appended to the lead's history, the audit trail.
    /// False when another sweep settled it first (nothing is written then).
    pub async fn settle_assignment(
        &self,
        a: &OpenAssignment,
        outcome: &SlaOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The lead before its assignment, in the order every transaction recording a
        // decision locks them (postgres/rollup.rs): no deadlock with its arrival's.
        backend::lock_lead(&mut tx, &a.lead_id).await?;
        let now_ms = now.timestamp_millis();
        let (status, note) = match outcome {
            SlaOutcome::Met => ("met", "touched in time".to_string()),
            SlaOutcome::Reassigned { reason, .. } => ("reassigned", reason.clone()),
            SlaOutcome::Escalated { reason, .. } => ("escalated", reason.clone()),
        };
        let done = sqlx::query("UPDATE route_assignments SET status = $1, closed_at = $2, note = $3 WHERE id = $4 AND status = 'open'")
            .bind(status)
            .bind(now_ms)
            .bind(&note)
            .bind(a.id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let SlaOutcome::Met = outcome {
            event(
                &mut tx,
                Some(&a.lead_id),
                now,
                "sla_met",
                Some(&a.owner),
                None,
            )
            .await?;
            tx.commit().await?;
            return Ok(true);
        }
        event(
            &mut tx,
            Some(&a.lead_id),
            now,
            "sla_breached",
            Some(&a.owner),
            Some(&note),
        )
        .await?;
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT record FROM decisions WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(&a.lead_id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut decision: Decision = match latest.as_deref().map(serde_json::from_str) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                return Err(StoreError::Corrupt(format!(
                    "the latest decision of lead {}: {e}",
                    a.lead_id
                )))
            }
            None => {
                return Err(StoreError::Corrupt(format!(
                    "lead {} has an assignment but no decision",
                    a.lead_id
                )))
            }
        };
        let mut previous = a.previous_owners.clone();
        previous.push(a.owner.clone());
        let r = &mut decision.route;
        r.previous_owner = Some(a.owner.clone());
        r.reason = note.clone();
        r.not_matched.clear();
        r.not_matched_why.clear();
        decision.delivery.clear();
        decision.decided_at = now;
        decision.status = LeadStatus::Done;
        let (new_owner, pool, due, step_status) = match outcome {
            SlaOutcome::Reassigned {
                owner,
                pool,
                due_at,
                skipped,
                ..
            } => {
                r.sla_step = Some(SlaStep::Reassigned);
                r.action = RouteAction::Assign;
                r.owner = Some(owner.clone());
                r.pool = Some(pool.clone());
                r.sla_due_at = Some(*due_at);
                r.skipped_members = skipped.clone();
                (
                    Some(owner.clone()),
                    Some(pool.clone()),
                    Some(*due_at),
                    "reassigned",
                )
            }
            SlaOutcome::Escalated {
                owner,
                pool,
                skipped,
                ..
            } => {
                r.sla_step = Some(SlaStep::Escalated);
                r.skipped_members = skipped.clone();
                r.sla = None;
                r.sla_due_at = None;
                r.owner = owner.clone();
                r.pool = pool.clone();
                if owner.is_some() {
                    r.action = RouteAction::Assign;
                } else {
                    r.action = RouteAction::Review;
                    decision.status = LeadStatus::Review;
                }
                (owner.clone(), pool.clone(), None, "escalated")
            }
            SlaOutcome::Met => (None, None, None, "met"),
        };
        if let Some(owner) = &new_owner {
            sqlx::query(
                "INSERT INTO route_assignments (lead_id, rule, pool, owner, assigned_at, sla_ms, due_at, status, step, previous_owners)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&a.lead_id)
            .bind(&a.rule)
            .bind(&pool)
            .bind(owner)
            .bind(now_ms)
            .bind(due.map(|_| a.sla.as_millis() as i64))
            .bind(due.map(|d| d.timestamp_millis()))
            .bind(if due.is_some() { "open" } else { "untracked" })
            .bind(i64::from(a.step) + 1)
            .bind(serde_json::to_string(&previous).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await?;
        }
        event(
            &mut tx,
            Some(&a.lead_id),
            now,
            step_status,
            new_owner.as_deref(),
            Some(&note),
        )
        .await?;
        if decision.status == LeadStatus::Review {
            sqlx::query("UPDATE jobs SET status = 'review', updated_at = $1 WHERE id = (SELECT id FROM jobs WHERE lead_id = $2 ORDER BY created_at DESC LIMIT 1)")
                .bind(now_ms)
                .bind(&a.lead_id)
                .execute(&mut *tx)
                .await?;
        }
        backend::insert_decision(&mut tx, &a.lead_id, None, &decision).await?;
        tx.commit().await?;
        Ok(true)
    }
}
