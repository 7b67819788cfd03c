//! The PostgreSQL backend, for several `leadgate serve` replicas sharing one database.
//!
//! Same tables and meaning as the SQLite backend (migrations/postgres/ mirrors
//! migrations/sqlite/ file for file). What differs is what sharing needs:
//! - a claim is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING`, so
//!   replicas never wait on each other's rows and never get the same job;
//! - leases are timed by the database clock, so replicas on machines whose clocks drift do
//!   not steal each other's jobs; a job whose worker died is claimed again once its lease has
//!   run out (there is no start-up requeue: other replicas may hold those jobs);
//! - a live worker renews its lease while it works (`renew`, the heartbeat), so a slow job
//!   is not taken over; closing a job and renewing it are fenced on the attempt that
//!   claimed it: a worker that outlived its lease cannot record a second decision after
//!   another worker took the job over;
//! - rotation slots are one atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING`, exact
//!   across replicas.
//!
//! It must not hold business rules, nor retry on its own: a failed call returns an error and
//! the caller (the worker loop, the HTTP handler) decides; the pool reconnects on the next
//! call once the server is back.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{now_ms, Accepted, Job, StoreError};
use crate::lead::{Decision, Lead, LeadStatus, RawLead};

mod backfill;
mod console;
mod events;
mod privacy;
mod rescore;
mod rollup;
pub(super) use rollup::lock_lead;
mod routing;
mod scoring;

/// Connections per replica: its workers (8 by default) plus HTTP intake, well under
/// PostgreSQL's default `max_connections = 100` for three replicas.
const MAX_CONNECTIONS: u32 = 16;
/// How long a call waits for a free (or re-established) connection before it fails and
/// the caller retries: short, so a worker notices an outage and backs off instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The current time in unix ms by the database clock (the same clock for every replica).
macro_rules! db_now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pub(super) pool: PgPool,
    /// The suppression list's secret, read (or made) on first use (`privacy`).
    pub(in crate::store) suppression_key:
        std::sync::Arc<tokio::sync::OnceCell<crate::store::privacy::SuppressionKey>>,
    /// This process's copy of the suppression list, for dry runs (`suppression_list`).
    pub(crate) suppression_list: std::sync::Arc<crate::store::suppression_list::SuppressionList>,
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db`) and applies
    /// the embedded migrations (under PostgreSQL's migration lock, so replicas starting
    /// together apply them once).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if !is_postgres_url(url) {
            return Err(StoreError::Unsupported(url.into()));
        }
        // The URL may hold a password: errors name only what is safe to show.
        let shown = redact(url);
        let open_err = |reason: String| StoreError::Open {
            url: shown.clone(),
            reason,
        };
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| open_err(e.to_string()))?
            .application_name("leadgate");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| {
                open_err(format!(
                    "{e}; is PostgreSQL running and does the database exist?"
                ))
            })?;
        sqlx::migrate!("migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| open_err(format!("migration failed: {e}")))?;
        let store = Self {
            pool,
            suppression_key: Default::default(),
            suppression_list: Default::default(),
        };
        // Made by the first replica to start; the others read the same one.
        store.suppression_key().await?;
        Ok(store)
    }

    /// Makes an arrival durable: upserts the lead by identity and queues a job, in one
    /// transaction. A known idempotency key returns the earlier answer and queues nothing,
    /// also when two replicas receive the same key at the same moment.
    pub async fn accept(
        &self,
        lead: &Lead,
        raw: &RawLead,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        if let Some(email) = &lead.email {
            if self.is_suppressed(email).await? {
                return Err(StoreError::Suppressed);
            }
        }
        let digest = idempotency_key.map(|_| super::intake_digest(lead));
        if let Some(key) = idempotency_key {
            if let Some(earlier) = self.accepted_with_key(key).await? {
                return same_or_conflict(key, earlier, digest.as_deref());
            }
        }
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let data = serde_json::to_string(lead).map_err(corrupt)?;
        let lead_id: String = sqlx::query_scalar(
            "INSERT INTO leads (id, identity_key, email, domain, data, arrivals, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $6)
             ON CONFLICT (identity_key) DO UPDATE SET
               data = excluded.data, email = excluded.email, domain = excluded.domain,
               arrivals = leads.arrivals + 1, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(lead.identity_key())
        .bind(&lead.email)
        .bind(&lead.domain)
        .bind(&data)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let job_id = Uuid::now_v7().to_string();
        let payload = serde_json::to_string(raw).map_err(corrupt)?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, created_at, updated_at, intake_digest)
             VALUES ($1, $2, $3, $4, 'queued', $5, $5, $6)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&job_id)
        .bind(&lead_id)
        .bind(idempotency_key)
        .bind(&payload)
        .bind(now)
        .bind(&digest)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another replica committed the same key between our look-up and our insert:
            // undo this arrival and answer as that one did.
            tx.rollback().await?;
            let key = idempotency_key.unwrap_or_default();
            let earlier = self.accepted_with_key(key).await?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "idempotency key conflict without a job for key of {} bytes",
                    key.len()
                ))
            })?;
            return same_or_conflict(key, earlier, digest.as_deref());
        }
        tx.commit().await?;
        Ok(Accepted {
            id: lead_id,
            job_id,
            status: LeadStatus::Queued.as_str().into(),
            duplicate: false,
        })
    }

    async fn accepted_with_key(
        &self,
        key: &str,
    ) -> Result<Option<(Accepted, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, lead_id, status, intake_digest FROM jobs WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| {
            (
                Accepted {
                    id: row.get("lead_id"),
                    job_id: row.get("id"),
                    status: row.get("status"),
                    duplicate: true,
                },
                row.get("intake_digest"),
            )
        }))
    }

    /// Queues an arrival known only by a CRM record (a webhook that named an id), or records
    /// one that is already known to be invalid (`failed` with the reason). Same idempotency
    /// rules as [`PgStore::accept`].
    pub async fn accept_record(
        &self,
        identity_key: &str,
        payload: &RawLead,
        idempotency_key: &str,
        failed: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        if let Some((earlier, _)) = self.accepted_with_key(idempotency_key).await? {
            return Ok(earlier);
        }
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let lead_id: String = sqlx::query_scalar(
            "INSERT INTO leads (id, identity_key, data, arrivals, created_at, updated_at) VALUES ($1, $2, '{}', 1, $3, $3)
             ON CONFLICT (identity_key) DO UPDATE SET arrivals = leads.arrivals + 1, updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(identity_key)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let job_id = Uuid::now_v7().to_string();
        let status = if failed.is_some() {
            LeadStatus::Failed
        } else {
            LeadStatus::Queued
        };
        let payload = serde_json::to_string(payload).map_err(corrupt)?;
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&job_id)
        .bind(&lead_id)
        .bind(idempotency_key)
        .bind(&payload)
        .bind(status.as_str())
        .bind(failed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return self
                .accepted_with_key(idempotency_key)
                .await?
                .map(|(earlier, _)| earlier)
                .ok_or_else(|| {
                    StoreError::Corrupt("idempotency key conflict without a job".into())
                });
        }
        tx.commit().await?;
        Ok(Accepted {
            id: lead_id,
            job_id,
            status: status.as_str().into(),
            duplicate: false,
        })
    }

    /// Claims the oldest queued job, or one whose lease ran out (the reaper is this same
    /// statement), for `lease`. Rows another replica is claiming are skipped, not waited on.
    pub async fn claim(&self, lease: Duration) -> Result<Option<Job>, StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let row = sqlx::query(concat!(
            "UPDATE jobs SET status = 'processing', attempts = attempts + 1,
               lease_until = ",
            db_now_ms!(),
            " + $1, updated_at = ",
            db_now_ms!(),
            "
             WHERE id = (
               SELECT id FROM jobs
               WHERE status = 'queued' OR (status = 'processing' AND lease_until < ",
            db_now_ms!(),
            ")
               ORDER BY created_at
               LIMIT 1
               FOR UPDATE SKIP LOCKED)
             RETURNING id, lead_id, payload, attempts"
        ))
        .bind(lease_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(super::leads::postgres::job))
    }

    /// Extends the lease of a job this worker still holds to `lease` from now on the
    /// database clock (the heartbeat of a live worker). Fenced like `complete`: once the job
    /// was claimed again (its lease ran out first) or closed, it returns
    /// `StoreError::LeaseLost` and changes nothing. It never changes `attempts`, the fence
    /// `complete` and `fail` check.
    pub async fn renew(&self, job: &Job, lease: Duration) -> Result<(), StoreError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let done = sqlx::query(concat!(
            "UPDATE jobs SET lease_until = ",
            db_now_ms!(),
            " + $1, updated_at = $2
             WHERE id = $3 AND status = 'processing' AND attempts = $4"
        ))
        .bind(lease_ms)
        .bind(now_ms())
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

    /// Records the decision and closes the job, in one transaction, if this worker still
    /// holds the job. A worker whose lease ran out and whose job was claimed again gets
    /// `StoreError::LeaseLost` and records nothing: the newer claim decides.
    /// Answers the domain the lead's previous decision was made with, if any: the account it
    /// leaves when this one is made at another.
    pub async fn complete(
        &self,
        job: &Job,
        lead: &Lead,
        decision: &Decision,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The lead first, as every transaction recording a decision locks it (rollup.rs).
        rollup::lock_lead(&mut tx, &job.lead_id).await?;
        let closed = sqlx::query(
            "UPDATE jobs SET status = $1, lease_until = NULL, error = $5, updated_at = $2
             WHERE id = $3 AND status = 'processing' AND attempts = $4",
        )
        .bind(decision.status.as_str())
        .bind(now_ms())
        .bind(&job.id)
        .bind(job.attempts)
        // A CRM refusal is the job's error in the same statement that closes it: a reader
        // never sees the lead `failed` without its reason.
        .bind(decision.failure_reason())
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::LeaseLost {
                job_id: job.id.clone(),
            });
        }
        let before: Option<Option<String>> = sqlx::query_scalar(
            "SELECT domain FROM decisions WHERE lead_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(&job.lead_id)
        .fetch_optional(&mut *tx)
        .await?;
        insert_decision(&mut tx, &job.lead_id, Some(&job.id), decision).await?;
        super::routing::postgres::record_assignment(&mut tx, &job.lead_id, decision).await?;
        let data = serde_json::to_string(lead).map_err(corrupt)?;
        // Email and domain too: a lead that arrived as a bare CRM id learns them only now,
        // and erasure finds people by email.
        sqlx::query("UPDATE leads SET data = $1, email = COALESCE($4, email), domain = COALESCE($5, domain), updated_at = $2 WHERE id = $3")
            .bind(data)
            .bind(now_ms())
            .bind(&job.lead_id)
            .bind(&lead.email)
            .bind(&lead.domain)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before.flatten())
    }

    /// Marks a job failed with a reason an admin can act on (fenced like `complete`). A job
    /// this same attempt already closed as `failed` (its decision recorded a CRM refusal)
    /// takes the reason too: no other claim can hold a closed job.
    pub async fn fail(&self, job: &Job, reason: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'failed', lease_until = NULL, error = $1, updated_at = $2
             WHERE id = $3 AND status IN ('processing', 'failed') AND attempts = $4",
        )
        .bind(reason)
        .bind(now_ms())
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

    /// Records decisions made outside the queue (`leadgate run`) and the rotation positions
    /// they used, in one transaction.
    pub async fn record_batch(
        &self,
        decisions: &mut [(Lead, Decision)],
        rotation: &HashMap<String, u64>,
    ) -> Result<Vec<usize>, StoreError> {
        let key = self.suppression_key().await?.clone();
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let mut suppressed = Vec::new();
        let mut moves = Vec::new();
        for (i, (lead, decision)) in decisions.iter_mut().enumerate() {
            // A person erased since the run read its file is not recorded.
            if let Some(email) = &lead.email {
                if super::leads::postgres::suppressed_in(&mut tx, &key.digests(email)).await? {
                    suppressed.push(i);
                    continue;
                }
            }
            let data = serde_json::to_string(&*lead).map_err(corrupt)?;
            let lead_id: String = sqlx::query_scalar(
                "INSERT INTO leads (id, identity_key, email, domain, data, arrivals, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $6)
                 ON CONFLICT (identity_key) DO UPDATE SET
                   data = excluded.data, arrivals = leads.arrivals + 1, updated_at = excluded.updated_at
                 RETURNING id",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(lead.identity_key())
            .bind(&lead.email)
            .bind(&lead.domain)
            .bind(&data)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            decision.id = lead_id.clone();
            moves.extend(record_decision(&mut tx, &lead_id, None, decision).await?);
            super::routing::postgres::record_assignment(&mut tx, &lead_id, decision).await?;
        }
        rollup::apply(&mut tx, &moves).await?;
        for (pool, position) in rotation {
            sqlx::query(
                "INSERT INTO rotation (pool, position) VALUES ($1, $2)
                 ON CONFLICT (pool) DO UPDATE SET position = excluded.position",
            )
            .bind(pool)
            .bind(i64::try_from(*position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(suppressed)
    }
}

/// Inserts a decision and moves the lead's value in the running account totals (migration
/// 0013), in the caller's transaction; a decision already recorded for the job changes
/// nothing. For a transaction recording one lead; one recording many takes the moves from
/// `record_decision` and applies them last (`rollup::apply`).
pub(super) async fn insert_decision(
    tx: &mut sqlx::PgConnection,
    lead_id: &str,
    job_id: Option<&str>,
    decision: &Decision,
) -> Result<(), StoreError> {
    let moved = record_decision(tx, lead_id, job_id, decision).await?;
    rollup::apply(tx, moved.as_slice()).await
}

/// Inserts a decision under the lead's row lock and answers how the lead's value moves in
/// the account totals, for the caller to apply before it commits.
async fn record_decision(
    tx: &mut sqlx::PgConnection,
    lead_id: &str,
    job_id: Option<&str>,
    decision: &Decision,
) -> Result<Option<rollup::Move>, StoreError> {
    rollup::lock_lead(tx, lead_id).await?;
    let before = rollup::latest(tx, lead_id).await?;
    if !super::leads::postgres::insert_decision_row(tx, lead_id, job_id, decision).await? {
        return Ok(None);
    }
    Ok(rollup::latest(tx, lead_id)
        .await?
        .map(|after| rollup::Move::new(before, after, decision)))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for error messages.
pub(super) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// The earlier answer under `key`, or a conflict when it was stored with another lead (a job
/// from before migration 0011 has no digest and stays a duplicate).
fn same_or_conflict(
    key: &str,
    (earlier, stored): (Accepted, Option<String>),
    digest: Option<&str>,
) -> Result<Accepted, StoreError> {
    match stored {
        Some(stored) if Some(stored.as_str()) != digest => Err(StoreError::IdempotencyConflict {
            key: key.to_string(),
            lead_id: earlier.id,
        }),
        _ => Ok(earlier),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_in_a_url() {
        assert_eq!(
            redact("postgres://lg:s3cret@10.0.0.5:5432/lg"),
            "postgres://lg:***@10.0.0.5:5432/lg"
        );
        assert_eq!(
            redact("postgres://lg@localhost/lg"),
            "postgres://lg@localhost/lg"
        );
        assert_eq!(redact("postgres:///lg"), "postgres:///lg");
    }

    #[test]
    fn recognises_postgres_urls() {
        assert!(is_postgres_url("postgres://localhost/lg"));
        assert!(is_postgres_url("postgresql://localhost/lg"));
        assert!(!is_postgres_url("sqlite://leadgate.db"));
    }
}
