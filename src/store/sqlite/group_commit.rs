//! Group commit for intake: accepts that arrive together wait together and share one
//! `BEGIN IMMEDIATE` transaction — one fsync for the batch instead of one each. SQLite
//! admits one writer at a time anyway, so a single writer task loses nothing and stops
//! concurrent accepts from fighting over the write lock. Each caller still gets its answer
//! only after its lead is on disk.

use std::sync::{Arc, OnceLock};

use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::now_ms;
use crate::lead::{Lead, LeadStatus, RawLead};
use crate::store::{Accepted, StoreError};

/// Most arrivals in one transaction: bounds the wait of the first caller in a burst.
const MAX_BATCH: usize = 512;

struct Pending {
    lead: Lead,
    raw: RawLead,
    key: Option<String>,
    reply: oneshot::Sender<Result<Accepted, StoreError>>,
}

/// The handle every clone of the store shares; the writer task starts on first use.
#[derive(Clone, Debug, Default)]
pub(super) struct GroupCommit {
    sender: Arc<OnceLock<mpsc::UnboundedSender<Pending>>>,
}

impl GroupCommit {
    pub(super) async fn accept(
        &self,
        pool: &SqlitePool,
        lead: &Lead,
        raw: &RawLead,
        key: Option<&str>,
    ) -> Result<Accepted, StoreError> {
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(pool.clone(), rx));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            lead: lead.clone(),
            raw: raw.clone(),
            key: key.map(str::to_string),
            reply,
        };
        sender
            .send(pending)
            .map_err(|_| StoreError::Corrupt("the intake writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the intake writer stopped before answering".into()))?
    }
}

/// Runs until every store handle is gone.
async fn writer(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        match write(&pool, &batch).await {
            Ok(answers) => {
                for (p, a) in batch.into_iter().zip(answers) {
                    let _ = p.reply.send(Ok(a));
                }
            }
            // One arrival's failure must not fail its neighbours: retry them one by one.
            Err(_) => {
                for p in batch {
                    let one = write(&pool, std::slice::from_ref(&p))
                        .await
                        .map(|mut a| a.remove(0));
                    let _ = p.reply.send(one);
                }
            }
        }
    }
}

async fn write(pool: &SqlitePool, batch: &[Pending]) -> Result<Vec<Accepted>, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut answers = Vec::with_capacity(batch.len());
    for p in batch {
        answers.push(accept_in(&mut tx, &p.lead, &p.raw, p.key.as_deref()).await?);
    }
    tx.commit().await?;
    Ok(answers)
}

/// Upserts the lead by identity and queues a job, inside the caller's transaction; a known
/// idempotency key returns the earlier answer and queues nothing.
pub(super) async fn accept_in(
    conn: &mut SqliteConnection,
    lead: &Lead,
    raw: &RawLead,
    idempotency_key: Option<&str>,
) -> Result<Accepted, StoreError> {
    if let Some(key) = idempotency_key {
        let row = sqlx::query("SELECT id, lead_id, status FROM jobs WHERE idempotency_key = ?")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(Accepted {
                id: row.get("lead_id"),
                job_id: row.get("id"),
                status: row.get("status"),
                duplicate: true,
            });
        }
    }
    let now = now_ms();
    let data = serde_json::to_string(lead).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let lead_id: String = sqlx::query_scalar(
        "INSERT INTO leads (id, identity_key, email, domain, data, arrivals, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, 1, ?, ?)
         ON CONFLICT(identity_key) DO UPDATE SET
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
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let job_id = Uuid::now_v7().to_string();
    let payload = serde_json::to_string(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?)",
    )
    .bind(&job_id)
    .bind(&lead_id)
    .bind(idempotency_key)
    .bind(&payload)
    .bind(now)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Accepted {
        id: lead_id,
        job_id,
        status: LeadStatus::Queued.as_str().into(),
        duplicate: false,
    })
}
