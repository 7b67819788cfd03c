//! Workers: claim a job → run the pipeline → record the decision and close the job. While
//! a job is in hand, a heartbeat renews its lease every third of the lease, so a slow job
//! (enrichment timeouts, retries, a parked provider, a slow CRM) is not taken over by
//! another worker. A worker that dies mid-job stops renewing: its lease runs out and the job
//! is claimed again. A worker that finds its job taken over (a renewal fenced on the claim's
//! attempt fails) stops before delivering to the CRM and records nothing.
//!
//! This module only claims, heartbeats and hands the job to the pipeline
//! ([`crate::pipeline::Pipeline::run_job`], which holds the order of the stages and records
//! the outcome); it does not retry on its own (an unfinished job comes back after its
//! lease).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::services::Services;
use crate::store::{Job, StoreError};

/// How long an idle worker sleeps before looking again, when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause after a store error, so a broken disk does not spin the CPU.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// Renewals per lease: a third of the lease between heartbeats leaves two more tries
/// (a store hiccup, a busy database) before another worker may take the job.
const RENEWALS_PER_LEASE: u32 = 3;

/// A claimed job and what its heartbeat learned about it.
struct Held {
    job: Job,
    lease: Duration,
    /// Set once a renewal found the job claimed again or closed: never cleared.
    lost: AtomicBool,
    /// When the last renewal that succeeded was sent: the database set the lease to run
    /// at least `lease` past this instant, so no other worker can claim the job before.
    renewed: Mutex<Option<Instant>>,
}

impl Held {
    fn new(job: Job, lease: Duration) -> Self {
        Held {
            job,
            lease,
            lost: AtomicBool::new(false),
            renewed: Mutex::new(None),
        }
    }

    /// Renews the lease now; remembers a loss for every later check.
    async fn renew(&self, state: &Services) -> Result<(), StoreError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lease_lost());
        }
        let sent = Instant::now();
        let renewed = state.store.renew(&self.job, self.lease).await;
        match &renewed {
            Ok(()) => {
                let mut last = self.renewed.lock().unwrap_or_else(|e| e.into_inner());
                *last = Some(last.map_or(sent, |t| t.max(sent)));
            }
            Err(StoreError::LeaseLost { .. }) => self.lost.store(true, Ordering::SeqCst),
            Err(_) => {}
        }
        renewed
    }

    /// Whether the lease still has at least two thirds of its length ahead: enough for a
    /// CRM call started now to finish before any other worker may claim the job.
    fn fresh(&self) -> bool {
        let last = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|t| t.elapsed() < self.lease / RENEWALS_PER_LEASE)
    }

    fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    fn lease_lost(&self) -> StoreError {
        StoreError::LeaseLost {
            job_id: self.job.id.clone(),
        }
    }

    /// Renews the lease every third of it until the job is lost; runs beside the job and is
    /// dropped with it. A renewal that fails for another reason (the store is unreachable)
    /// is logged and tried again at the next beat: the job is given up only when the store
    /// says another worker holds it.
    async fn heartbeat(&self, state: &Services) {
        let every = (self.lease / RENEWALS_PER_LEASE).max(Duration::from_millis(10));
        let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beats.tick().await;
            match self.renew(state).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost { .. }) => {
                    metrics::counter!("leadgate_leases_lost_total").increment(1);
                    tracing::warn!("another worker claimed this job after its lease ran out; this worker stops before delivering");
                    return std::future::pending().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the job's lease; will try again")
                }
            }
        }
    }
}

/// The worker's hold on a job, as the pipeline's stages see it: lost or not, renewed on
/// demand, and the fence the deliver stage takes before each CRM call (see `crm::fence`).
struct Fenced<'a> {
    held: &'a Held,
    state: &'a Services,
}

impl crate::pipeline::JobLease for Fenced<'_> {
    fn lost(&self) -> bool {
        self.held.is_lost()
    }

    fn renew(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.held.renew(self.state))
    }
}

impl crate::crm::fence::Fence for Fenced<'_> {
    fn hold(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            if self.held.is_lost() {
                return Err(self.held.lease_lost());
            }
            if self.held.fresh() {
                return Ok(());
            }
            self.held.renew(self.state).await?;
            // A renewal that itself waited out most of the lease proves nothing.
            if self.held.fresh() {
                Ok(())
            } else {
                Err(StoreError::TooSlow(
                    "the lease renewal took most of the lease, so a CRM call now could outlive it"
                        .into(),
                ))
            }
        })
    }
}

/// Runs until `shutdown` turns true; finishes the job in hand first.
pub async fn run(state: Arc<Services>, lease: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match state.store.claim(lease).await {
            Ok(Some(job)) => process(&state, job, lease).await,
            Ok(None) => {
                tokio::select! {
                    _ = state.queued.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot claim a job; retrying");
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
}

async fn process(state: &Services, job: Job, lease: Duration) {
    let span = tracing::info_span!("job", id = %job.id, attempt = job.attempts);
    let held = Held::new(job, lease);
    let stages = state.stages();
    let lease = Fenced { held: &held, state };
    async {
        // The heartbeat never finishes on its own: the job's end drops it. Biased: a job that
        // just closed wins over a renewal that found it closed.
        tokio::select! {
            biased;
            () = state.pipeline.run_job(&stages, &held.job, &lease) => {}
            () = held.heartbeat(state) => {}
        }
    }
    .instrument(span)
    .await
}
