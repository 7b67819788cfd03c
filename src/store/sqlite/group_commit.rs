//! Group commit for intake: accepts that arrive together wait together and share one
//! `BEGIN IMMEDIATE` transaction — one fsync for the batch instead of one each. SQLite
//! admits one writer at a time anyway, so a single writer task loses nothing and stops
//! concurrent accepts from fighting over the write lock. Each caller still gets its answer
//! only after its lead is on disk.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::now_ms;
use crate::lead::{Lead, LeadStatus, RawLead};
use crate::store::{Accepted, StoreError};

/// Most arrivals in one transaction: bounds the wait of the first caller in a burst, and
/// keeps one batch's statements (7 parameters a lead) far below SQLite's 32,766.
const MAX_BATCH: usize = 512;

/// One arrival, already serialized by the request that brought it: the writer is the one
/// task every accept waits on, so it only binds and writes.
struct Pending {
    identity_key: String,
    email: Option<String>,
    domain: Option<String>,
    /// The normalized lead, JSON.
    data: String,
    /// The lead as received, JSON.
    payload: String,
    key: Option<String>,
    /// `privacy::email_key` of the email: an erased person is refused in the batch's own
    /// transaction (one query a batch, atomic with an erasure), not by a read per request.
    suppression: Option<String>,
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
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            identity_key: lead.identity_key(),
            email: lead.email.clone(),
            domain: lead.domain.clone(),
            data: serde_json::to_string(lead).map_err(corrupt)?,
            payload: serde_json::to_string(raw).map_err(corrupt)?,
            key: key.map(str::to_string),
            suppression: lead.email.as_deref().map(crate::store::privacy::email_key),
            reply,
        };
        let sender = self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer(pool.clone(), rx));
            tx
        });
        sender
            .send(pending)
            .map_err(|_| StoreError::Corrupt("the intake writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Corrupt("the intake writer stopped before answering".into()))?
    }
}

/// Runs until every store handle is gone. Keeps one connection for itself while arrivals
/// keep coming: its page cache stays warm (a pooled connection's cache is dropped whenever
/// another one wrote), and taking one from the pool each batch was a round trip of its own.
/// After a quiet second the connection goes back to the pool.
async fn writer(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Pending>) {
    const QUIET: std::time::Duration = std::time::Duration::from_secs(1);
    let mut held: Option<PoolConnection<Sqlite>> = None;
    loop {
        let first = match tokio::time::timeout(QUIET, rx.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => break,
            Err(_) => {
                held = None;
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let conn = match held.take() {
            Some(c) => Ok(c),
            None => pool.acquire().await,
        };
        let Ok(mut conn) = conn else {
            one_by_one(&pool, batch).await;
            continue;
        };
        match write(&mut conn, &batch).await {
            Ok(answers) => {
                held = Some(conn);
                for (p, a) in batch.into_iter().zip(answers) {
                    let _ = p.reply.send(a);
                }
            }
            // The connection goes back to the pool (closed if it broke), and one arrival's
            // failure must not fail its neighbours: retry them one by one.
            Err(_) => {
                drop(conn);
                one_by_one(&pool, batch).await;
            }
        }
    }
}

/// Writes each arrival in a transaction of its own, each answered with its own outcome.
async fn one_by_one(pool: &SqlitePool, batch: Vec<Pending>) {
    for p in batch {
        let one = match pool.acquire().await {
            Ok(mut conn) => write(&mut conn, std::slice::from_ref(&p))
                .await
                .and_then(|mut a| a.remove(0)),
            Err(e) => Err(e.into()),
        };
        let _ = p.reply.send(one);
    }
}

/// Writes a batch in one transaction with one statement per table (not per arrival: each
/// statement is a round trip to sqlx's SQLite thread): upserts the leads by identity and
/// queues a job for each arrival. An idempotency key already stored, or used earlier in
/// the batch, returns that arrival's answer and queues nothing.
async fn write(
    conn: &mut SqliteConnection,
    batch: &[Pending],
) -> Result<Vec<Result<Accepted, StoreError>>, StoreError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Erased people in this batch: refused, nothing of theirs written.
    let mut erased: HashSet<String> = HashSet::new();
    let hashes: Vec<&str> = batch
        .iter()
        .filter_map(|p| p.suppression.as_deref())
        .collect();
    if !hashes.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT email_sha256 FROM suppressions WHERE email_sha256 IN (",
        );
        let mut list = q.separated(", ");
        for h in &hashes {
            list.push_bind(*h);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            erased.insert(row.get(0));
        }
    }
    let is_erased = |p: &Pending| p.suppression.as_deref().is_some_and(|h| erased.contains(h));
    let batch_all = batch;
    let batch: Vec<&Pending> = batch_all.iter().filter(|p| !is_erased(p)).collect();
    let mut known: HashMap<&str, Accepted> = HashMap::new();
    let keys: Vec<&str> = batch.iter().filter_map(|p| p.key.as_deref()).collect();
    if !keys.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, lead_id, status, idempotency_key FROM jobs WHERE idempotency_key IN (",
        );
        let mut list = q.separated(", ");
        for k in &keys {
            list.push_bind(*k);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            let key: String = row.get("idempotency_key");
            if let Some(k) = keys.iter().find(|k| **k == key) {
                known.insert(
                    *k,
                    Accepted {
                        id: row.get("lead_id"),
                        job_id: row.get("id"),
                        status: row.get("status"),
                        duplicate: true,
                    },
                );
            }
        }
    }
    // Which arrivals queue a job: the first with each key not stored yet, and every
    // arrival without a key.
    let mut fresh: Vec<&Pending> = Vec::with_capacity(batch.len());
    let mut keys_queued: HashSet<&str> = HashSet::new();
    for &p in &batch {
        match p.key.as_deref() {
            Some(k) if known.contains_key(k) || !keys_queued.insert(k) => {}
            _ => fresh.push(p),
        }
    }
    let now = now_ms();
    let mut lead_ids: HashMap<String, (String, i64)> = HashMap::with_capacity(fresh.len());
    if !fresh.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO leads (id, identity_key, email, domain, data, arrivals, created_at, updated_at) ",
        );
        q.push_values(&fresh, |mut row, p| {
            row.push_bind(Uuid::now_v7().to_string())
                .push_bind(&p.identity_key)
                .push_bind(&p.email)
                .push_bind(&p.domain)
                .push_bind(&p.data)
                .push_bind(1_i64)
                .push_bind(now)
                .push_bind(now);
        });
        q.push(
            " ON CONFLICT(identity_key) DO UPDATE SET
               data = excluded.data, email = excluded.email, domain = excluded.domain,
               arrivals = leads.arrivals + 1, updated_at = excluded.updated_at
             RETURNING identity_key, id, arrivals",
        );
        // RETURNING's row order is unspecified: match rows by identity, keeping the most
        // arrivals seen (one identity twice in a batch is upserted twice).
        for row in q.build().fetch_all(&mut *tx).await? {
            let (identity, id, arrivals): (String, String, i64) =
                (row.get(0), row.get(1), row.get(2));
            let entry = lead_ids.entry(identity).or_insert((id.clone(), arrivals));
            if arrivals >= entry.1 {
                *entry = (id, arrivals);
            }
        }
    }
    let mut queued: Vec<Accepted> = Vec::with_capacity(fresh.len());
    for p in &fresh {
        let (lead_id, _) = lead_ids.get(&p.identity_key).ok_or_else(|| {
            StoreError::Corrupt("the lead upsert returned no row for an arrival".into())
        })?;
        queued.push(Accepted {
            id: lead_id.clone(),
            job_id: Uuid::now_v7().to_string(),
            status: LeadStatus::Queued.as_str().into(),
            duplicate: false,
        });
    }
    if !fresh.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, created_at, updated_at) ",
        );
        q.push_values(fresh.iter().zip(&queued), |mut row, (p, a)| {
            row.push_bind(&a.job_id)
                .push_bind(&a.id)
                .push_bind(&p.key)
                .push_bind(&p.payload)
                .push_bind("queued")
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    // A known lead may have arrived with another domain, which moves its decisions from one
    // account to another; new leads have no decisions yet and move nothing.
    if lead_ids.values().any(|(_, arrivals)| *arrivals > 1) {
        crate::store::account_changed(None);
    }
    // Answers in arrival order, walking the batch as `fresh` was built: a later arrival
    // with a key gets the answer of the first, as it would have in a batch of its own.
    let mut by_key = known;
    let mut next_queued = queued.into_iter();
    let mut answers = Vec::with_capacity(batch_all.len());
    for p in batch_all {
        if is_erased(p) {
            answers.push(Err(StoreError::Suppressed));
            continue;
        }
        if let Some(earlier) = p.key.as_deref().and_then(|k| by_key.get(k)) {
            answers.push(Ok(earlier.clone()));
            continue;
        }
        let a = next_queued
            .next()
            .ok_or_else(|| StoreError::Corrupt("an arrival lost its answer".into()))?;
        if let Some(k) = p.key.as_deref() {
            by_key.insert(
                k,
                Accepted {
                    duplicate: true,
                    ..a.clone()
                },
            );
        }
        answers.push(Ok(a));
    }
    Ok(answers)
}
