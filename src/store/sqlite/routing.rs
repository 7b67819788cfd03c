//! SQLite's pick: atomic member picks (rotation position, per-owner daily counts, run-time
//! pauses) and owners' touches for the SLA sweep. The rest of routing's store side is
//! written once in `store/routing.rs`. No routing decisions here: [`crate::route::choose`]
//! makes the pick, this file makes it atomic.
//!
//! A pick is one `BEGIN IMMEDIATE` transaction: SQLite takes the write lock first, so the
//! read of position and counts, the choice, and both increments happen with no other writer
//! in between — concurrent workers never share a slot and counts never drift.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::Row;

use super::Store;
use crate::route::sla::OwnerActivity;
use crate::route::{choose, AssignRequest, Assignments, Choice};
use crate::store::picks::{job_pick, skipped_json, StoredPick, OWNER_PICK};
use crate::store::StoreError;

/// For the re-scoring sweep (`rescore.rs`), which records assignments too.
pub(super) use crate::store::routing::sqlite::record_assignment;

/// Live routing: one write transaction per pick.
impl Assignments for Store {
    fn assign<'a>(&'a self, req: &'a AssignRequest) -> BoxFuture<'a, Result<Choice, StoreError>> {
        Box::pin(self.pick_for(req, None))
    }

    fn count<'a>(&'a self, owner: &'a str, day: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.count_for(owner, day, None))
    }
}

impl Store {
    /// Picks a member of `req`'s pool and records the pick, atomically. With a job, a pick
    /// this job already made in this pool is returned again and nothing moves (see
    /// `job_picks`), as long as that member is still in the pool.
    pub async fn pick_for(
        &self,
        req: &AssignRequest,
        job: Option<&str>,
    ) -> Result<Choice, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(job) = job {
            let row = sqlx::query(
                "SELECT owner, position, assigned_today, skipped FROM job_picks WHERE job_id = ? AND pool = ?",
            )
            .bind(job)
            .bind(&req.pool)
            .fetch_optional(&mut *tx)
            .await?;
            let stored = row.map(|r| StoredPick {
                owner: r.get(0),
                position: r.get(1),
                assigned_today: r.get(2),
                skipped: r.get(3),
            });
            if let Some(made) = stored.and_then(|p| job_pick(req, p)) {
                tx.rollback().await?;
                return Ok(made);
            }
        }
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM rotation WHERE pool = ?")
                .bind(&req.pool)
                .fetch_optional(&mut *tx)
                .await?;
        let mut counts = Vec::with_capacity(req.members.len());
        for m in &req.members {
            let n: Option<i64> =
                sqlx::query_scalar("SELECT assigned FROM route_counts WHERE owner = ? AND day = ?")
                    .bind(&m.owner)
                    .bind(&m.day)
                    .fetch_optional(&mut *tx)
                    .await?;
            counts.push(n.unwrap_or(0).max(0) as u32);
        }
        let paused_owners: Vec<String> =
            sqlx::query_scalar("SELECT owner FROM route_pauses WHERE pool = ? OR pool = '*'")
                .bind(&req.pool)
                .fetch_all(&mut *tx)
                .await?;
        let paused: Vec<bool> = req
            .members
            .iter()
            .map(|m| paused_owners.contains(&m.owner))
            .collect();
        let choice = choose(req, position.unwrap_or(0).max(0) as u64, &counts, &paused);
        let Some(i) = choice.chosen else {
            tx.rollback().await?;
            return Ok(choice);
        };
        sqlx::query("INSERT INTO rotation (pool, position) VALUES (?, ?) ON CONFLICT(pool) DO UPDATE SET position = excluded.position")
            .bind(&req.pool)
            .bind(choice.position as i64)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO route_counts (owner, day, assigned) VALUES (?, ?, 1) ON CONFLICT(owner, day) DO UPDATE SET assigned = assigned + 1")
            .bind(&req.members[i].owner)
            .bind(&req.members[i].day)
            .execute(&mut *tx)
            .await?;
        if let Some(job) = job {
            sqlx::query(
                "INSERT INTO job_picks (job_id, pool, owner, position, assigned_today, skipped, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(job_id, pool) DO UPDATE SET owner = excluded.owner, position = excluded.position,
                   assigned_today = excluded.assigned_today, skipped = excluded.skipped",
            )
            .bind(job)
            .bind(&req.pool)
            .bind(&req.members[i].owner)
            .bind(choice.position as i64)
            .bind(i64::from(choice.assigned_today))
            .bind(skipped_json(&choice))
            .bind(super::now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(choice)
    }

    /// Counts an assignment made without a pool toward the owner's day; with a job, once
    /// per job however often it is routed.
    pub async fn count_for(
        &self,
        owner: &str,
        day: &str,
        job: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(job) = job {
            let first = sqlx::query(
                "INSERT INTO job_picks (job_id, pool, owner, position, assigned_today, skipped, created_at)
                 VALUES (?, ?, ?, 0, 0, '[]', ?) ON CONFLICT(job_id, pool) DO NOTHING",
            )
            .bind(job)
            .bind(OWNER_PICK)
            .bind(owner)
            .bind(super::now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !first {
                tx.rollback().await?;
                return Ok(());
            }
        }
        sqlx::query("INSERT INTO route_counts (owner, day, assigned) VALUES (?, ?, 1) ON CONFLICT(owner, day) DO UPDATE SET assigned = assigned + 1")
            .bind(owner)
            .bind(day)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The embedded default: touches recorded through `POST /v1/leads/{id}/touched`.
impl OwnerActivity for Store {
    fn touched<'a>(
        &'a self,
        lead_id: &'a str,
        owner: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let hit: Option<i64> = sqlx::query_scalar("SELECT 1 FROM route_touches WHERE lead_id = ? AND at >= ? AND (owner IS NULL OR owner = ?) LIMIT 1")
                .bind(lead_id)
                .bind(since.timestamp_millis())
                .bind(owner)
                .fetch_optional(&self.pool)
                .await?;
            Ok(hit.is_some())
        })
    }
}
