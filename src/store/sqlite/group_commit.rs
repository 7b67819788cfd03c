//! Group commit for intake and for events (`POST /v1/events`, issue 25): accepts and event
//! appends that arrive together wait together and share one `BEGIN IMMEDIATE` transaction —
//! one fsync for the batch instead of one each. SQLite
//! admits one writer at a time anyway, so a single writer loses nothing and stops
//! concurrent accepts from fighting over the write lock. Each caller still gets its answer
//! only after its lead is on disk.
//!
//! The writer has a connection of its own (rusqlite), not one of sqlx's: through sqlx each
//! statement was a hop to sqlx's SQLite thread and back, and the writer waited to be polled
//! again behind busy connections between statements, so a batch took several times its
//! fsync. It is a task on the runtime that writes a whole batch in one poll, straight
//! through, and it waits for SQLite's write lock asleep, never inside SQLite.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::now_ms;
use crate::lead::{Lead, LeadStatus, RawLead};
use crate::store::{Accepted, StoreError};

/// Most arrivals in one transaction: bounds the wait of the first caller in a burst.
const MAX_BATCH: usize = 512;

/// How long a batch waits for SQLite's write lock while a worker holds it.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How often a waiting batch tries the write lock again.
const LOCK_RETRY: Duration = Duration::from_millis(1);

/// Leads per group-commit transaction (a Prometheus summary).
const BATCH_LEADS: &str = "leadgate_intake_batch_leads";

/// Seconds from a batch's start to its commit on disk, waits for the write lock included.
const BATCH_SECONDS: &str = "leadgate_intake_batch_seconds";

/// The metrics' help text, given once: at the first batch, when the daemon's recorder is
/// installed (it is not yet when the store opens).
fn describe_metrics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        metrics::describe_histogram!(BATCH_LEADS, "Leads written in one intake transaction");
        metrics::describe_histogram!(
            BATCH_SECONDS,
            metrics::Unit::Seconds,
            "Time to make one intake batch durable, waits for the write lock included"
        );
    });
}

/// One arrival, already serialized by the request that brought it: every accept waits on the
/// one writer, so it only binds and writes.
struct Pending {
    /// The person the arrival belongs to (`Lead::identity_key`).
    identity_key: String,
    /// The lead as received, JSON: the worker normalizes it again when it decides.
    payload: String,
    key: Option<String>,
    /// `store::intake_digest` of the lead, when it has a key: a reuse with another lead is
    /// a conflict, not a duplicate.
    digest: Option<String>,
    /// The email's suppression digests (`privacy::Digests`): an erased person is refused in
    /// the batch's own transaction (atomic with an erasure), not by a read per request.
    suppression: Option<crate::store::privacy::Digests>,
    reply: oneshot::Sender<Result<Accepted, StoreError>>,
}

/// Whose history an append joins.
pub(super) enum Person {
    /// A lead id already looked up (a worker's arrival): no lookup in the batch.
    Known(String),
    /// A lead id or one of its arrivals' job ids, as `Store::find_lead` takes it.
    Id(String),
    /// A normalized email, as `Store::find_lead` takes it.
    Email(String),
}

/// One event as stored: its dedupe key, type, time and JSON body.
pub(super) struct EventRow {
    pub(super) key: String,
    pub(super) kind: String,
    pub(super) at_ms: i64,
    pub(super) body: String,
}

/// An append of events, made ready by the request that brought them.
struct EventsPending {
    person: Person,
    /// As for an arrival: an erased person is refused in the batch's own transaction.
    suppression: Option<crate::store::privacy::Digests>,
    rows: Vec<EventRow>,
    reply: oneshot::Sender<Result<Option<crate::events::Kept>, StoreError>>,
}

/// What a batch writes, in arrival order.
enum Arrival {
    Lead(Pending),
    Events(EventsPending),
}

/// An arrival's outcome, answered once its batch is on disk.
enum Answer {
    Lead(Result<Accepted, StoreError>),
    /// `None`: no lead is known by that id or email.
    Events(Result<Option<crate::events::Kept>, StoreError>),
}

impl Arrival {
    fn answer(self, a: Answer) {
        match (self, a) {
            (Arrival::Lead(p), Answer::Lead(a)) => {
                let _ = p.reply.send(a);
            }
            (Arrival::Events(p), Answer::Events(a)) => {
                let _ = p.reply.send(a);
            }
            (me, _) => me.fail(StoreError::Corrupt(
                "an arrival got another's answer".into(),
            )),
        }
    }

    fn fail(self, e: StoreError) {
        match self {
            Arrival::Lead(p) => {
                let _ = p.reply.send(Err(e));
            }
            Arrival::Events(p) => {
                let _ = p.reply.send(Err(e));
            }
        }
    }

    fn failed(&self, e: StoreError) -> Answer {
        match self {
            Arrival::Lead(_) => Answer::Lead(Err(e)),
            Arrival::Events(_) => Answer::Events(Err(e)),
        }
    }
}

/// Where the writer's connection opens: the store's own file, or the shared in-memory
/// database sqlx named for a `:memory:` store.
#[derive(Clone, Debug)]
pub(super) struct Target {
    filename: PathBuf,
    in_memory: bool,
}

impl Target {
    /// The file the pool opens with `options`; `path` is the URL's path (`:memory:` names
    /// the shared in-memory database sqlx made up a name for).
    pub(super) fn of(options: &sqlx::sqlite::SqliteConnectOptions, path: &str) -> Self {
        Self {
            filename: options.get_filename().to_path_buf(),
            in_memory: path == ":memory:",
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if self.in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let conn = Connection::open_with_flags(&self.filename, flags)?;
        // No busy handler: it would sleep on a runtime thread. A locked database answers
        // SQLITE_BUSY at once and the batch waits asleep instead (`write_batch`).
        conn.busy_timeout(Duration::ZERO)?;
        // The same settings as the pool's connections (sqlite.rs): FULL makes each commit
        // fsync the WAL, so an accepted lead survives a power cut.
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = memory;
             PRAGMA mmap_size = 268435456;",
        )?;
        Ok(conn)
    }
}

/// What the accepts share: arrivals waiting for the next batch, and the writer's connection
/// while no batch is being written.
#[derive(Default)]
struct Queue {
    arrivals: Vec<Arrival>,
    /// A writer task is running; it takes `arrivals` batch by batch until none are left.
    writing: bool,
    conn: Option<Connection>,
}

/// The handle every clone of the store shares.
#[derive(Clone)]
pub(super) struct GroupCommit {
    target: Target,
    queue: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("target", &self.target)
            .finish()
    }
}

impl GroupCommit {
    pub(super) fn new(target: Target) -> Self {
        Self {
            target,
            queue: Arc::default(),
        }
    }

    pub(super) async fn accept(
        &self,
        lead: &Lead,
        raw: &RawLead,
        key: Option<&str>,
        suppression: Option<crate::store::privacy::Digests>,
    ) -> Result<Accepted, StoreError> {
        let corrupt = |e: crate::json::WriteError| StoreError::Corrupt(e.to_string());
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            identity_key: lead.identity_key(),
            payload: crate::json::to_string(raw).map_err(corrupt)?,
            key: key.map(str::to_string),
            digest: key.map(|_| crate::store::intake_digest(lead)),
            suppression,
            reply,
        };
        self.enqueue(Arrival::Lead(pending));
        answer.await.map_err(|_| stopped())?
    }

    /// Appends `rows` to the history of `person` in the next batch; `None` when no lead is
    /// known as `person`. Answered once the batch is on disk.
    pub(super) async fn append_events(
        &self,
        person: Person,
        rows: Vec<EventRow>,
        suppression: Option<crate::store::privacy::Digests>,
    ) -> Result<Option<crate::events::Kept>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Arrival::Events(EventsPending {
            person,
            suppression,
            rows,
            reply,
        }));
        answer.await.map_err(|_| stopped())?
    }

    fn enqueue(&self, arrival: Arrival) {
        let start_writer = {
            let mut q = lock(&self.queue);
            q.arrivals.push(arrival);
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            tokio::spawn(write_batches(self.target.clone(), self.queue.clone()));
        }
    }
}

/// The answer of an arrival whose writer went away before writing it.
fn stopped() -> StoreError {
    StoreError::Corrupt("the intake writer stopped before answering".into())
}

/// The queue's lock; a panic while holding it cannot leave it half-changed (every change is
/// one push or one swap), so a poisoned lock is taken as is.
fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// If the writer task is dropped between batches (the runtime shutting down), the next
/// accept must start a new one, and whoever is still waiting must be answered, not hang.
struct Writing {
    queue: Arc<Mutex<Queue>>,
    /// Ended by finding the queue empty: `writing` is already reset, and arrivals since
    /// belong to the next writer.
    done: bool,
}

impl Drop for Writing {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut q = lock(&self.queue);
        q.writing = false;
        for p in q.arrivals.drain(..) {
            p.fail(stopped());
        }
    }
}

/// The writer: a task on the runtime, started by the first arrival that finds none running.
/// Each turn takes everything that has arrived (up to [`MAX_BATCH`]), writes it in one
/// transaction synchronously, answers each arrival, and yields so the answered requests run;
/// it ends when a turn finds nothing waiting. Not an OS thread of its own: every accept then
/// waited for two wake-ups across threads (to the writer, back to the runtime), which on a
/// 2-core VM cost more than the batch holding a runtime thread (intake +0.03 to +0.05 of
/// the trivial handler, docs/performance.md). Here the answers are woken on the worker
/// that wrote them.
async fn write_batches(target: Target, queue: Arc<Mutex<Queue>>) {
    let mut guard = Writing { queue, done: false };
    loop {
        let taken = {
            let mut q = lock(&guard.queue);
            if q.arrivals.is_empty() {
                q.writing = false;
                None
            } else {
                let n = q.arrivals.len().min(MAX_BATCH);
                let rest = q.arrivals.split_off(n);
                let batch = std::mem::replace(&mut q.arrivals, rest);
                Some((batch, q.conn.take()))
            }
        };
        let Some((batch, conn)) = taken else {
            guard.done = true;
            return;
        };
        let conn = write_batch(&target, conn, batch).await;
        lock(&guard.queue).conn = conn;
        tokio::task::yield_now().await;
    }
}

/// Writes one batch on `conn` (opened if there is none yet) and answers each arrival;
/// returns the connection to keep for the next batch. While a worker's transaction holds
/// SQLite's write lock, the batch sleeps and tries again (up to [`LOCK_WAIT`]) rather than
/// blocking in SQLite: the runtime thread it would hold may be the one that worker needs to
/// finish its transaction.
async fn write_batch(
    target: &Target,
    conn: Option<Connection>,
    batch: Vec<Arrival>,
) -> Option<Connection> {
    let mut c = match conn.map_or_else(|| target.open(), Ok) {
        Ok(c) => c,
        Err(e) => {
            let reason = e.to_string();
            for p in batch {
                p.fail(StoreError::Write(reason.clone()));
            }
            return None;
        }
    };
    let started = std::time::Instant::now();
    let deadline = started + LOCK_WAIT;
    // What an operator reads to see group commit work: how many accepts share a transaction
    // and how long one takes to be durable (a slow disk or a held write lock shows here).
    describe_metrics();
    metrics::histogram!(BATCH_LEADS).record(batch.len() as f64);
    let written = write_when_unlocked(&mut c, &batch, deadline).await;
    metrics::histogram!(BATCH_SECONDS).record(started.elapsed().as_secs_f64());
    match written {
        Ok(answers) => {
            for (p, a) in batch.into_iter().zip(answers) {
                p.answer(a);
            }
            Some(c)
        }
        // One arrival's failure must not fail its neighbours: retry them one by one,
        // on a fresh connection in case this one broke.
        Err(_) => {
            drop(c);
            one_by_one(target, batch, deadline).await
        }
    }
}

/// [`write`], tried again every [`LOCK_RETRY`] while another connection holds the write
/// lock, until `deadline`.
async fn write_when_unlocked(
    conn: &mut Connection,
    batch: &[Arrival],
    deadline: std::time::Instant,
) -> rusqlite::Result<Vec<Answer>> {
    loop {
        match write(conn, batch) {
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(LOCK_RETRY).await;
            }
            written => return written,
        }
    }
}

/// SQLite refused because another connection holds the write lock.
fn is_locked(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

/// Writes each arrival in a transaction of its own, each answered with its own outcome,
/// waiting for the write lock as the batch did (until the same `deadline`). Returns the
/// connection if it could be opened.
async fn one_by_one(
    target: &Target,
    batch: Vec<Arrival>,
    deadline: std::time::Instant,
) -> Option<Connection> {
    let mut conn = target.open();
    for p in batch {
        let one = match conn.as_mut() {
            Ok(c) => match write_when_unlocked(c, std::slice::from_ref(&p), deadline).await {
                Ok(mut a) => a.pop().unwrap_or_else(|| {
                    p.failed(StoreError::Corrupt("an arrival lost its answer".into()))
                }),
                Err(e) => p.failed(StoreError::Write(e.to_string())),
            },
            Err(e) => p.failed(StoreError::Write(e.to_string())),
        };
        p.answer(one);
    }
    conn.ok()
}

/// Writes a batch in one transaction: for each arrival in order, refuses an erased person,
/// answers a stored idempotency key with its earlier answer (a key used earlier in the same
/// batch is stored by then, so it gets the first arrival's answer as a duplicate), else finds
/// or records the person's identity and queues a job. The lead's own row is the deciding
/// worker's to write (migration 0010). Statements are prepared once per connection; each is
/// a call into SQLite, not a round trip.
fn write(conn: &mut Connection, batch: &[Arrival]) -> rusqlite::Result<Vec<Answer>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_ms();
    let mut answers = Vec::with_capacity(batch.len());
    {
        // Keyed digests, and unkeyed ones from before migration 0012.
        let mut erased = tx.prepare_cached(
            "SELECT 1 FROM suppressions_keyed WHERE email_hmac = ?1
             UNION ALL SELECT 1 FROM suppressions WHERE email_sha256 = ?2",
        )?;
        let mut stored = tx.prepare_cached(
            "SELECT id, lead_id, status, intake_digest FROM jobs WHERE idempotency_key = ?1",
        )?;
        // An insert that does nothing for a known person, then a lookup for them: most
        // arrivals are new people, and the insert's own uniqueness check is their only read
        // of the identities.
        let mut identify = tx.prepare_cached(
            "INSERT INTO identities (identity_key, lead_id) VALUES (?1, ?2)
             ON CONFLICT (identity_key) DO NOTHING",
        )?;
        let mut known =
            tx.prepare_cached("SELECT lead_id FROM identities WHERE identity_key = ?1")?;
        let mut queue = tx.prepare_cached(
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, identity_key, created_at, updated_at, intake_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        )?;
        let mut appends = Appends::prepare(&tx)?;
        for arrival in batch {
            let p = match arrival {
                Arrival::Lead(p) => p,
                Arrival::Events(e) => {
                    let refused = match &e.suppression {
                        Some(d) => erased.exists([&d.keyed, &d.legacy])?,
                        None => false,
                    };
                    answers.push(Answer::Events(if refused {
                        Err(StoreError::Suppressed)
                    } else {
                        Ok(appends.write(e, now)?)
                    }));
                    continue;
                }
            };
            if let Some(d) = &p.suppression {
                if erased.exists([&d.keyed, &d.legacy])? {
                    answers.push(Answer::Lead(Err(StoreError::Suppressed)));
                    continue;
                }
            }
            if let Some(key) = &p.key {
                let earlier = stored
                    .query_row([key], |r| {
                        let digest: Option<String> = r.get(3)?;
                        Ok((
                            Accepted {
                                job_id: r.get(0)?,
                                id: r.get(1)?,
                                status: r.get(2)?,
                                duplicate: true,
                            },
                            digest,
                        ))
                    })
                    .optional()?;
                if let Some((earlier, digest)) = earlier {
                    // A job from before migration 0011 has no digest: a duplicate, as it was.
                    let same = digest.is_none() || digest == p.digest;
                    answers.push(Answer::Lead(if same {
                        Ok(earlier)
                    } else {
                        Err(StoreError::IdempotencyConflict {
                            key: key.clone(),
                            lead_id: earlier.id,
                        })
                    }));
                    continue;
                }
            }
            let new_id = Uuid::now_v7().to_string();
            let person = &p.identity_key;
            let id = if identify.execute(params![person, new_id])? == 1 {
                new_id
            } else {
                known.query_row([person], |r| r.get(0))?
            };
            let job_id = Uuid::now_v7().to_string();
            let status = LeadStatus::Queued.as_str();
            queue.execute(params![
                job_id, id, p.key, p.payload, status, person, now, p.digest
            ])?;
            answers.push(Answer::Lead(Ok(Accepted {
                id,
                job_id,
                status: status.into(),
                duplicate: false,
            })));
        }
    }
    // No account moves here, even for a known lead arriving with another domain: the roll-up
    // reads decisions by the domain they were made with (migration 0008).
    tx.commit()?;
    Ok(answers)
}

/// The statements of event appends, prepared once per connection (the cache keeps them).
struct Appends<'c> {
    by_id: rusqlite::CachedStatement<'c>,
    by_email: rusqlite::CachedStatement<'c>,
    insert: rusqlite::CachedStatement<'c>,
}

impl<'c> Appends<'c> {
    fn prepare(tx: &'c rusqlite::Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            // As `Store::find_lead`: a pending lead (no worker decided it yet, migration
            // 0010) is found through its jobs or its identity.
            by_id: tx.prepare_cached(
                "SELECT id FROM leads WHERE id = ?1
                 UNION ALL SELECT lead_id FROM jobs WHERE id = ?1
                 UNION ALL SELECT lead_id FROM jobs WHERE lead_id = ?1 LIMIT 1",
            )?,
            by_email: tx.prepare_cached(concat!(
                "SELECT id FROM (SELECT id FROM (SELECT l.id FROM leads l WHERE ",
                super::has_email!(),
                " ORDER BY l.updated_at DESC LIMIT 1)
                 UNION ALL SELECT lead_id FROM identities WHERE identity_key = 'email:' || ?1)
                 LIMIT 1"
            ))?,
            insert: tx.prepare_cached(
                "INSERT INTO person_events (lead_id, event_key, kind, at_ms, body, stored_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?,
        })
    }

    /// Finds the person and keeps each new event; a replayed one (same key) is kept once,
    /// within the batch too.
    fn write(
        &mut self,
        e: &EventsPending,
        now: i64,
    ) -> rusqlite::Result<Option<crate::events::Kept>> {
        let lead_id = match &e.person {
            Person::Known(id) => Some(id.clone()),
            Person::Id(id) => self.by_id.query_row([id], |r| r.get(0)).optional()?,
            Person::Email(email) => self.by_email.query_row([email], |r| r.get(0)).optional()?,
        };
        let Some(lead_id) = lead_id else {
            return Ok(None);
        };
        let mut added = 0;
        for row in &e.rows {
            added += self.insert.execute(params![
                lead_id, row.key, row.kind, row.at_ms, row.body, now
            ])? as u64;
        }
        Ok(Some(crate::events::Kept { lead_id, added }))
    }
}
