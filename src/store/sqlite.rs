//! The SQLite backend. WAL mode with `synchronous = FULL`: an accepted lead survives a
//! crash or a power cut. The WAL is synced with `fdatasync` (the bundled SQLite is built with
//! `HAVE_FDATASYNC`, .cargo/config.toml): the data and the file's size, not its mtime. One
//! writer at a time is SQLite's rule; `busy_timeout` queues them.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

pub(super) use super::leads::sqlite::insert_decision_row as insert_decision;
use super::{now_ms, Accepted, Job, StoreError};
use crate::lead::{Decision, Lead, LeadStatus, RawLead};

mod backfill;
mod console;
mod events;
mod group_commit;
mod owner;
mod privacy;
mod rescore;
mod rollup;
mod routing;
mod scoring;
#[cfg(test)]
mod tests;
pub use owner::{WorkerLock, WorkersHeld};
pub use scoring::{LeadRef, NewOutcome, OutcomeLead, RecordedOutcome};

/// Most connections to the file: one writer at a time anyway, a few readers beside it.
const MAX_CONNECTIONS: u32 = 8;

/// `WHERE` condition: the lead `l` has the email bound as `?1`. A person keyed by their email
/// (nearly every lead) is found through the identity index; one keyed otherwise that learned
/// an email later, through the partial index `leads_email_other` (migration 0008: intake
/// writes one index entry a lead instead of two). A macro so that `concat!` makes each query
/// one static string.
macro_rules! has_email {
    () => {
        "((l.identity_key = 'email:' || ?1 AND l.email = ?1)
          OR (l.email = ?1 AND l.identity_key <> 'email:' || l.email))"
    };
}
pub(super) use has_email;

/// The email a pending lead's identity key names (`email:…`), else NULL: a lead whose row
/// the deciding worker has not written yet (migration 0010) is known by its identity alone.
macro_rules! identity_email {
    () => {
        "CASE WHEN substr(identity_key, 1, 6) = 'email:' THEN substr(identity_key, 7) END"
    };
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// Batches concurrent accepts into one transaction.
    group_commit: group_commit::GroupCommit,
    /// The suppression list's secret, read (or made) on first use (`privacy`).
    pub(in crate::store) suppression_key:
        std::sync::Arc<tokio::sync::OnceCell<crate::store::privacy::SuppressionKey>>,
    /// This process's copy of the suppression list, for dry runs (`suppression_list`).
    pub(crate) suppression_list: std::sync::Arc<crate::store::suppression_list::SuppressionList>,
    /// The file's path (`None` in memory): the workers' lock file lives beside it.
    path: Option<std::path::PathBuf>,
}

/// The SQLite files name their type `Store` (`impl Store`, `super::Store`); callers use
/// [`crate::store::Store`], which dispatches here or to PostgreSQL.
type Store = SqliteStore;

/// Claims the oldest job that is queued or whose lease ran out. Each of the two is the first
/// row of the claim index in `created_at` order, so a claim reads two index entries however
/// deep the queue: one `status = 'queued' OR …` query read every queued job and sorted them
/// (an end-to-end flood of 5,000 leads spent its workers' time there).
const CLAIM: &str =
    "UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_until = ?1,
       updated_at = ?2
     WHERE id = (
       SELECT id FROM (
         SELECT * FROM (SELECT id, created_at FROM jobs WHERE status = 'queued'
                        ORDER BY created_at LIMIT 1)
         UNION ALL
         SELECT * FROM (SELECT id, created_at FROM jobs
                        WHERE status = 'processing' AND lease_until < ?2
                        ORDER BY created_at LIMIT 1))
       ORDER BY created_at LIMIT 1)
     RETURNING id, lead_id, payload, attempts";

impl Store {
    /// Opens (creating if needed) the store at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(StoreError::Unsupported(url.into()));
        };
        let open_err = |reason: String| StoreError::Open {
            url: url.into(),
            reason,
        };
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
            }
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|e| open_err(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals in memory: on disk each multi-row upsert created and
            // deleted a temp file (open, unlink, inode eviction on every batch).
            .pragma("temp_store", "memory")
            // Pages read through a shared mapping instead of a pread and a copy each.
            // (Reclaimable file pages, not heap: they count in RSS but the kernel can drop
            // them.)
            .pragma("mmap_size", "268435456");
        let writer = group_commit::Target::of(&options, path);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| open_err(format!("migration failed: {e}")))?;
        let store = Self {
            pool,
            group_commit: group_commit::GroupCommit::new(writer),
            suppression_key: Default::default(),
            suppression_list: Default::default(),
            path: (path != ":memory:").then(|| std::path::PathBuf::from(path)),
        };
        // Made at the first start, so every process on the file finds the same one.
        store.suppression_key().await?;
        Ok(store)
    }

    /// Makes an arrival durable: finds or records the person's identity and queues a job, in
    /// one transaction shared with the arrivals beside it (group commit); the deciding worker
    /// writes the lead's row (migration 0010). A known idempotency key
    /// returns the earlier answer and queues nothing.
    pub async fn accept(
        &self,
        lead: &Lead,
        raw: &RawLead,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        let suppression = match &lead.email {
            Some(email) => Some(self.suppression_key().await?.digests(email)),
            None => None,
        };
        self.group_commit
            .accept(lead, raw, idempotency_key, suppression)
            .await
    }

    /// Queues an arrival known only by a CRM record (a webhook that named an id), or records
    /// one that is already known to be invalid (`failed` with the reason). Same idempotency
    /// rules as [`Store::accept`].
    pub async fn accept_record(
        &self,
        identity_key: &str,
        payload: &RawLead,
        idempotency_key: &str,
        failed: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        // IMMEDIATE: take the write lock before looking for the key. A deferred transaction
        // read first and then could not write once a concurrent redelivery of the same event
        // had (SQLITE_BUSY_SNAPSHOT, answered 500); now the second waits and finds the first.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query("SELECT id, lead_id, status FROM jobs WHERE idempotency_key = ?")
            .bind(idempotency_key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            return Ok(Accepted {
                id: row.get("lead_id"),
                job_id: row.get("id"),
                status: row.get("status"),
                duplicate: true,
            });
        }
        let now = now_ms();
        let lead_id = identify(&mut tx, identity_key).await?;
        let job_id = Uuid::now_v7().to_string();
        let status = if failed.is_some() {
            LeadStatus::Failed
        } else {
            LeadStatus::Queued
        };
        let payload =
            serde_json::to_string(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, error, identity_key, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&job_id)
        .bind(&lead_id)
        .bind(idempotency_key)
        .bind(&payload)
        .bind(status.as_str())
        .bind(failed)
        .bind(identity_key)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Accepted {
            id: lead_id,
            job_id,
            status: status.as_str().into(),
            duplicate: false,
        })
    }

    /// Claims the oldest queued job (or one whose lease ran out) for `lease`.
    pub async fn claim(&self, lease: Duration) -> Result<Option<Job>, StoreError> {
        let now = now_ms();
        let row = sqlx::query(CLAIM)
            .bind(now + lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(super::leads::sqlite::job))
    }

    /// Extends the lease of a job this worker still holds to `lease` from now (the
    /// heartbeat of a live worker). Fenced like `complete`: once the job was claimed again
    /// (its lease ran out first) or closed, it returns `StoreError::LeaseLost` and changes
    /// nothing. It never changes `attempts`, the fence `complete` and `fail` check.
    pub async fn renew(&self, job: &Job, lease: Duration) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = ?, updated_at = ?
             WHERE id = ? AND status = 'processing' AND attempts = ?",
        )
        .bind(now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)))
        .bind(now)
        .bind(&job.id)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost {
                job_id: job.id.clone(),
            });
        }
        Ok(())
    }

    /// At start-up of the only process on this file: jobs left `processing` by a crash go
    /// back to the queue at once instead of waiting out their lease.
    pub async fn requeue_orphans(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', lease_until = NULL WHERE status = 'processing'",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records the decision and closes the job, in one transaction, if this worker still
    /// holds the job; writes the lead's row (created here for a pending lead, migration
    /// 0010) with the decided lead's data. A worker whose lease ran out and whose job was claimed again (by
    /// another worker of this process) gets `StoreError::LeaseLost` and records nothing.
    /// Answers the domain the lead's previous decision was made with, if any: the account it
    /// leaves when this one is made at another.
    pub async fn complete(
        &self,
        job: &Job,
        lead: &Lead,
        decision: &Decision,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE jobs SET status = ?, lease_until = NULL, error = ?, updated_at = ?
             WHERE id = ? AND status = 'processing' AND attempts = ?",
        )
        .bind(decision.status.as_str())
        // A CRM refusal is the job's error in the same statement that closes it: a reader
        // never sees the lead `failed` without its reason.
        .bind(decision.failure_reason())
        .bind(now_ms())
        .bind(&job.id)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::LeaseLost {
                job_id: job.id.clone(),
            });
        }
        // The lead's row first (the accept only recorded the identity, migration 0010): the
        // decision refers to it and takes its domain when it has none of its own.
        materialize(&mut tx, &job.lead_id).await?;
        let data = serde_json::to_string(lead).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Email and domain too: a lead that arrived as a bare CRM id learns them only now,
        // and erasure finds people by email.
        sqlx::query("UPDATE leads SET data = ?, email = COALESCE(?, email), domain = COALESCE(?, domain), arrivals = arrivals + 1, updated_at = ? WHERE id = ?")
            .bind(data)
            .bind(&lead.email)
            .bind(&lead.domain)
            .bind(now_ms())
            .bind(&job.lead_id)
            .execute(&mut *tx)
            .await?;
        let before = rollup::latest(&mut tx, &job.lead_id).await?;
        record_decision(
            &mut tx,
            &job.lead_id,
            Some(&job.id),
            before.as_ref(),
            decision,
        )
        .await?;
        super::routing::sqlite::record_assignment(&mut tx, &job.lead_id, decision).await?;
        tx.commit().await?;
        Ok(before.and_then(|b| b.domain().map(str::to_string)))
    }

    /// Marks a job failed with a reason an admin can act on (fenced like `complete`). A job
    /// this same attempt already closed as `failed` (its decision recorded a CRM refusal)
    /// takes the reason too: no other claim can hold a closed job.
    pub async fn fail(&self, job: &Job, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE jobs SET status = 'failed', lease_until = NULL, error = ?, updated_at = ?
             WHERE id = ? AND status IN ('processing', 'failed') AND attempts = ?",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(&job.id)
        .bind(job.attempts)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::LeaseLost {
                job_id: job.id.clone(),
            });
        }
        // A failed lead is still a lead: an outcome or a touch may name it.
        materialize(&mut tx, &job.lead_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records decisions made outside the queue (`leadgate run`) and the rotation positions
    /// they used, in one transaction. A person erased meanwhile is not recorded: answers
    /// the positions in `decisions` skipped as suppressed.
    pub async fn record_batch(
        &self,
        decisions: &mut [(Lead, Decision)],
        rotation: &HashMap<String, u64>,
    ) -> Result<Vec<usize>, StoreError> {
        let key = self.suppression_key().await?.clone();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let now = now_ms();
        let mut suppressed = Vec::new();
        for (i, (lead, decision)) in decisions.iter_mut().enumerate() {
            // Checked in the transaction that would keep the lead: atomic with an erasure.
            if let Some(email) = &lead.email {
                if super::leads::sqlite::suppressed_in(&mut tx, &key.digests(email)).await? {
                    suppressed.push(i);
                    continue;
                }
            }
            let data =
                serde_json::to_string(&*lead).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let identity = lead.identity_key();
            let lead_id = identify(&mut tx, &identity).await?;
            sqlx::query(
                "INSERT INTO leads (id, identity_key, email, domain, data, arrivals, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET
                   data = excluded.data, arrivals = leads.arrivals + 1, updated_at = excluded.updated_at",
            )
            .bind(&lead_id)
            .bind(&identity)
            .bind(&lead.email)
            .bind(&lead.domain)
            .bind(&data)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            decision.id = lead_id.clone();
            let before = rollup::latest(&mut tx, &lead_id).await?;
            record_decision(&mut tx, &lead_id, None, before.as_ref(), decision).await?;
            super::routing::sqlite::record_assignment(&mut tx, &lead_id, decision).await?;
        }
        for (pool, position) in rotation {
            sqlx::query("INSERT INTO rotation (pool, position) VALUES (?, ?) ON CONFLICT(pool) DO UPDATE SET position = excluded.position")
                .bind(pool)
                .bind(*position as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(suppressed)
    }
}

/// The lead of the person `identity_key` names: recorded now with a new id if the person is
/// new. The identities table, not `leads`, says who is who (migration 0010).
async fn identify(
    tx: &mut sqlx::SqliteConnection,
    identity_key: &str,
) -> Result<String, StoreError> {
    sqlx::query(
        "INSERT INTO identities (identity_key, lead_id) VALUES (?, ?)
         ON CONFLICT (identity_key) DO NOTHING",
    )
    .bind(identity_key)
    .bind(Uuid::now_v7().to_string())
    .execute(&mut *tx)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT lead_id FROM identities WHERE identity_key = ?")
            .bind(identity_key)
            .fetch_one(&mut *tx)
            .await?,
    )
}

/// Writes a pending lead's row, if it has none yet, from the identity its first arrival
/// carries (migration 0010): its email when the identity is an email, no data until a
/// decision. Whatever refers to a lead (a decision, an outcome) needs the row first.
pub(super) async fn materialize(
    tx: &mut sqlx::SqliteConnection,
    lead_id: &str,
) -> Result<(), StoreError> {
    sqlx::query(concat!(
        "INSERT INTO leads (id, identity_key, email, data, arrivals, created_at, updated_at)
         SELECT lead_id, identity_key, ",
        identity_email!(),
        ", '{}', 0, created_at, created_at
         FROM jobs WHERE lead_id = ? AND identity_key IS NOT NULL
         ORDER BY created_at LIMIT 1
         ON CONFLICT DO NOTHING"
    ))
    .bind(lead_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Inserts a decision and moves the lead's value in the running account totals (migration
/// 0013), in the caller's transaction; a decision already recorded for the job changes
/// nothing.
async fn record_decision(
    tx: &mut sqlx::SqliteConnection,
    lead_id: &str,
    job_id: Option<&str>,
    before: Option<&rollup::Latest>,
    decision: &Decision,
) -> Result<(), StoreError> {
    if insert_decision(tx, lead_id, job_id, decision).await? {
        if let Some(after) = rollup::latest(tx, lead_id).await? {
            rollup::moved(tx, before, &after, decision).await?;
        }
    }
    Ok(())
}

/// SQLite's one writer at a time is the lock a transaction recording a decision takes on the
/// lead (PostgreSQL locks its row, `postgres::lock_lead`): nothing to do here.
pub(super) async fn lock_lead(
    _tx: &mut sqlx::SqliteConnection,
    _lead_id: &str,
) -> Result<(), StoreError> {
    Ok(())
}
