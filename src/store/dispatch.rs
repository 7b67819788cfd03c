//! [`Store`]: the one store type callers use, dispatching to the backend the storage URL
//! names — SQLite (`sqlite://PATH`, the embedded default) or PostgreSQL (`postgres://...`,
//! to scale out). Every method here exists on both backends with the same meaning; this file
//! only forwards. The one deliberate difference is [`Store::requeue_orphans`].
//!
//! Adding a store method: write it once with `dialect::written_once!` (which forwards it
//! from here too); only where the backends' semantics differ, write it in `sqlite*.rs` and
//! `postgres*.rs` and add its signature to the `forward!` list below.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::dialect::forward;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    is_postgres_url, Accepted, Job, LeadRef, NewOutcome, OutcomeLead, RecordedOutcome, StoreError,
};
use crate::crm::outbox::{Finished, OutboxEntry};
use crate::lead::{Decision, Lead, RawLead};
use crate::route::sla::OwnerActivity;
use crate::route::{AssignRequest, Assignments, Choice};
use crate::score::AccountEngagement;

/// The durable store, on the backend its URL names.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Runs the same expression on whichever backend `self` holds.
macro_rules! on_backend {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Opens the store at `url` and applies its migrations: `postgres://` (or
    /// `postgresql://`) for PostgreSQL, anything else as SQLite.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if is_postgres_url(url) {
            PgStore::open(url).await.map(Store::Postgres)
        } else {
            SqliteStore::open(url).await.map(Store::Sqlite)
        }
    }

    /// A pool that connects on first use and applies no migrations (see the backends).
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        if is_postgres_url(url) {
            PgStore::open_lazy(url).map(Store::Postgres)
        } else {
            SqliteStore::open_lazy(url).map(Store::Sqlite)
        }
    }

    /// Whether other processes may share this store's queue (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Takes the workers for this process, or says which process has them: on SQLite one
    /// process per file runs workers (a lock beside the file); PostgreSQL replicas share
    /// the queue through leases and always may.
    pub fn own_workers(&self) -> Result<Result<super::WorkerLock, super::WorkersHeld>, StoreError> {
        match self {
            Store::Sqlite(s) => s.own_workers(),
            Store::Postgres(_) => Ok(Ok(super::WorkerLock::unlocked())),
        }
    }

    /// At start-up, on SQLite, by the process that owns the workers ([`Store::own_workers`]): jobs left `processing` by a crash go
    /// back to the queue at once. On PostgreSQL it does nothing and returns 0: other
    /// replicas may be working on those jobs right now; a dead worker's jobs come back when
    /// their lease runs out.
    pub async fn requeue_orphans(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.requeue_orphans().await,
            Store::Postgres(_) => Ok(0),
        }
    }

    pub async fn complete(
        &self,
        job: &Job,
        lead: &Lead,
        decision: &Decision,
    ) -> Result<(), StoreError> {
        let left = on_backend!(self, s => s.complete(job, lead, decision).await);
        // Without a domain the decision joins whichever account the stored lead names.
        super::account_changed(lead.domain.as_deref());
        // A person decided at another domain than last time leaves that account.
        if let Ok(Some(before)) = &left {
            if lead.domain.as_deref() != Some(before.as_str()) {
                super::account_changed(Some(before));
            }
        }
        left.map(|_| ())
    }

    /// Erases everything about a person and suppresses the address (GDPR / CCPA).
    pub async fn erase_person(&self, email: &str) -> Result<super::privacy::Erased, StoreError> {
        let erased = on_backend!(self, s => s.erase_person(email).await);
        on_backend!(self, s => s.suppression_list.invalidate());
        super::account_changed(None);
        erased
    }

    /// Whether this address asked to be erased, from this process's copy of the list: for
    /// paths that store nothing (dry runs). An erasure by another process shows within
    /// [`super::suppression_list::FRESH_FOR`]; one by this process at once.
    pub async fn is_suppressed_recently(&self, email: &str) -> Result<bool, StoreError> {
        use super::suppression_list::Lookup;
        let (key, list) = on_backend!(self, s => (s.suppression_key().await?, &s.suppression_list));
        let digests = key.digests(email);
        if let Lookup::Fresh(found) = list.lookup(&digests) {
            return Ok(found);
        }
        let _reloading = list.reload_guard().await;
        if let Lookup::Fresh(found) = list.lookup(&digests) {
            return Ok(found);
        }
        let generation = self.erasure_generation().await?;
        if list.generation() == Some(generation) {
            list.confirm();
        } else {
            let all = on_backend!(self, s => s.suppression_digests().await)?;
            list.replace(generation, all);
        }
        match list.lookup(&digests) {
            Lookup::Fresh(found) => Ok(found),
            // Just loaded or confirmed: only a clock jump makes it stale; ask the store.
            Lookup::Stale => self.is_suppressed(email).await,
        }
    }

    /// Another process erased someone (the erasure watcher saw the generation move): drop
    /// this process's copy of the suppression list now rather than when it goes stale.
    pub fn suppressions_moved(&self) {
        on_backend!(self, s => s.suppression_list.invalidate());
    }

    pub async fn record_batch(
        &self,
        decisions: &mut [(Lead, Decision)],
        rotation: &HashMap<String, u64>,
    ) -> Result<Vec<usize>, StoreError> {
        let recorded = on_backend!(self, s => s.record_batch(decisions, rotation).await);
        // A batch may name stored leads whose domain differs from the one it decided with.
        super::account_changed(None);
        recorded
    }
}

impl Assignments for Store {
    fn assign<'a>(&'a self, req: &'a AssignRequest) -> BoxFuture<'a, Result<Choice, StoreError>> {
        on_backend!(self, s => s.assign(req))
    }

    fn count<'a>(&'a self, owner: &'a str, day: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        on_backend!(self, s => s.count(owner, day))
    }

    fn applies_calendar(&self) -> bool {
        on_backend!(self, s => s.applies_calendar())
    }
}

/// The store's picks for one job: routing the job again (after a crash between the pick and
/// the decision) gets the same members and moves no rotation or count a second time.
pub struct JobAssignments<'a> {
    store: &'a Store,
    job_id: &'a str,
}

impl Store {
    /// Routing state changes tied to `job_id` (see [`JobAssignments`]).
    pub fn for_job<'a>(&'a self, job_id: &'a str) -> JobAssignments<'a> {
        JobAssignments {
            store: self,
            job_id,
        }
    }
}

impl Assignments for JobAssignments<'_> {
    fn assign<'a>(&'a self, req: &'a AssignRequest) -> BoxFuture<'a, Result<Choice, StoreError>> {
        Box::pin(
            async move { on_backend!(self.store, s => s.pick_for(req, Some(self.job_id)).await) },
        )
    }

    fn count<'a>(&'a self, owner: &'a str, day: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            on_backend!(self.store, s => s.count_for(owner, day, Some(self.job_id)).await)
        })
    }

    fn applies_calendar(&self) -> bool {
        self.store.applies_calendar()
    }
}

impl OwnerActivity for Store {
    fn touched<'a>(
        &'a self,
        lead_id: &'a str,
        owner: &'a str,
        since: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        on_backend!(self, s => s.touched(lead_id, owner, since))
    }
}

impl AccountEngagement for Store {
    fn account_rows<'a>(
        &'a self,
        domain: &'a str,
        score: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(f64, DateTime<Utc>)>, StoreError>> {
        on_backend!(self, s => AccountEngagement::account_rows(s, domain, score))
    }

    fn account_score<'a>(
        &'a self,
        domain: &'a str,
        rollup: &'a crate::score::AccountRollup,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<crate::score::AccountScore, StoreError>> {
        on_backend!(self, s => AccountEngagement::account_score(s, domain, rollup, now))
    }
}

/// Re-scoring at rest (issue 25, src/rescore; migration 0021).
impl Store {
    /// Writes a re-scored batch in one transaction; returns the leads whose new decision
    /// was recorded (a decision recorded meanwhile wins over the sweep's).
    pub async fn rescore_settle(
        &self,
        batch: &[crate::rescore::Settle],
    ) -> Result<Vec<String>, StoreError> {
        let recorded = on_backend!(self, s => s.rescore_settle(batch).await)?;
        for s in batch.iter().filter(|s| recorded.contains(&s.lead_id)) {
            if let Some(d) = &s.decision {
                super::account_changed(d.lead.domain.as_deref());
            }
        }
        Ok(recorded)
    }
}

impl Store {
    /// A key for `purpose` (console sessions, ...) derived from the installation's secret:
    /// the same on every process that opens this store.
    pub async fn derived_key(&self, purpose: &str) -> Result<[u8; 32], StoreError> {
        let key = on_backend!(self, s => s.suppression_key().await)?;
        Ok(key.derive(purpose))
    }
}

// Methods each backend writes in its own file (see `dialect`), forwarded.
forward! {
    /// An arrival moves no account: accounts roll up from decisions by the domain each was
    /// made with (migration 0008).
    pub async fn accept(&self, lead: &Lead, raw: &RawLead, idempotency_key: Option<&str>) -> Result<Accepted, StoreError>;
    pub async fn claim(&self, lease: Duration) -> Result<Option<Job>, StoreError>;
    /// Extends the lease of a job the caller still holds (the worker's heartbeat);
    /// `StoreError::LeaseLost` once another worker claimed it again or it was closed.
    pub async fn renew(&self, job: &Job, lease: Duration) -> Result<(), StoreError>;
    /// Rows that still mention `email` in stored leads, payloads and decisions.
    pub async fn rows_mentioning(&self, email: &str) -> Result<u64, StoreError>;
    pub async fn fail(&self, job: &Job, reason: &str) -> Result<(), StoreError>;
    pub async fn find_lead(&self, r: &LeadRef) -> Result<Option<String>, StoreError>;
    pub async fn outcome_leads(&self) -> Result<Vec<OutcomeLead>, StoreError>;
    /// Makes everyone due now with cause `rules_change`; returns how many.
    pub async fn rescore_mark_all(&self) -> Result<u64, StoreError>;
    /// Records the rules digest the sweep runs with; a different one recorded before marks
    /// everyone (returns how many).
    pub async fn rescore_rules(&self, digest: &str) -> Result<u64, StoreError>;
    /// How many people are due at `now` (unix ms).
    pub async fn rescore_due(&self, now: i64) -> Result<u64, StoreError>;
    pub async fn accept_record(&self, identity_key: &str, payload: &RawLead, idempotency_key: &str, failed: Option<&str>) -> Result<Accepted, StoreError>;
    pub async fn record_outcome(&self, lead_id: &str, o: &NewOutcome) -> Result<RecordedOutcome, StoreError>;
    pub async fn account_rows(&self, domain: &str, score: &str) -> Result<Vec<(f64, DateTime<Utc>)>, StoreError>;
    /// Keeps events in lead `lead_id`'s history (issue 25); returns how many were new.
    pub async fn append_events(&self, lead_id: &str, events: &[crate::lead::Event]) -> Result<u64, StoreError>;
    /// Claims up to `batch` people due at `now` (unix ms), moving them to `next`: no other
    /// claim takes them in this pass. Each comes with its latest decision and events.
    pub async fn rescore_claim(&self, now: i64, next: i64, batch: usize, token: &str) -> Result<Vec<crate::rescore::Claimed>, StoreError>;
    /// Up to `limit` people after `after` (id order), due at `due` or all, with what
    /// re-scoring needs; claims nothing (`leadgate rescore --dry-run`).
    pub async fn rescore_peek(&self, after: &str, limit: usize, due: Option<i64>) -> Result<Vec<crate::rescore::Claimed>, StoreError>;
    pub async fn backfill_start(&self, connector: &str, params: &str) -> Result<crate::crm::backfill::state::BackfillRun, StoreError>;
    pub async fn backfill_commit(&self, run: &crate::crm::backfill::state::BackfillRun, next: Option<&str>, done: bool) -> Result<(), StoreError>;
    /// Keeps events in the history of the lead `who` names (issue 25's routes): `None`
    /// when no lead is known as `who`, `StoreError::Suppressed` for an erased email.
    pub async fn keep_events(&self, who: &LeadRef, events: &[crate::lead::Event]) -> Result<Option<crate::events::Kept>, StoreError>;
    /// Closes a page's effects and commits the page in one transaction.
    pub async fn backfill_close_page(&self, finished: &[(String, Finished)], run: &crate::crm::backfill::state::BackfillRun, next: Option<&str>, done: bool) -> Result<(), StoreError>;
    /// The outbox rows among `keys` (one query), by key.
    pub async fn outbox_get_many(&self, keys: &[String]) -> Result<HashMap<String, OutboxEntry>, StoreError>;
    /// Which of `emails` asked to be erased (one query), by position.
    pub async fn suppressed_among(&self, emails: &[String]) -> Result<Vec<bool>, StoreError>;
}
