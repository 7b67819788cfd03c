//! Workers: claim a job → run the pipeline → record the decision and close the job. While
//! a job is in hand, a heartbeat renews its lease every third of the lease, so a slow job
//! (enrichment timeouts, retries, a parked provider, a slow CRM) is not taken over by
//! another worker. A worker that dies mid-job stops renewing: its lease runs out and the job
//! is claimed again. A worker that finds its job taken over (a renewal fenced on the claim's
//! attempt fails) stops before delivering to the CRM and records nothing.
//!
//! This module decides the order of the steps and when to give a job up; it does not decide
//! leads (the pipeline does) nor retry on its own (an unfinished job comes back after its
//! lease).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;
use tracing::Instrument;

use crate::lead::RawLead;
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

/// The fence the deliver stage takes before each CRM call (see `crm::fence`).
struct Fenced<'a> {
    held: &'a Held,
    state: &'a Services,
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
    async {
        // The heartbeat never finishes on its own: the job's end drops it. Biased: a job that
        // just closed wins over a renewal that found it closed.
        tokio::select! {
            biased;
            () = decide(state, &held) => {}
            () = held.heartbeat(state) => {}
        }
    }
    .instrument(span)
    .await
}

async fn decide(state: &Services, held: &Held) {
    let job = &held.job;
    let raw: RawLead = match serde_json::from_str(&job.payload) {
        Ok(r) => r,
        Err(e) => return fail(state, job, &format!("stored payload is not a lead: {e}")).await,
    };
    // A delivery a crash interrupted resumes with the decision it was delivering: the lead
    // is not routed a second time.
    if let Some(crm) = &state.delivery {
        if let Some(decision) = crm.resume(&state.store, job).await {
            let lead = decision.lead.clone();
            return deliver_and_record(state, held, &lead, decision).await;
        }
    }
    // A resolved review item (issue 24) is queued already decided; without `[delivery]`
    // nothing above resumed it, so it is recorded as decided here.
    if state.delivery.is_none() {
        if let Some(decision) = crate::console::review::preset_decision(&state.store, job).await {
            let lead = decision.lead.clone();
            return deliver_and_record(state, held, &lead, decision).await;
        }
    }
    let raw = match crate::webhook::fetch_target(&raw) {
        None => raw,
        Some((connector, object, id)) => match &state.records {
            None => return fail(state, job, &format!("the webhook named {connector} {object} {id}, but no CRM connector is configured to fetch it")).await,
            Some(source) => match source.fetch(&connector, &object, &id).await {
                Ok(fetched) => fetched,
                Err(e) if e.permanent => return fail(state, job, &format!("cannot read {connector} {object} {id}: {e}")).await,
                Err(e) => {
                    // The lease brings the job back: a CRM hiccup must not lose the lead.
                    tracing::warn!(%connector, %object, error = %e, "cannot fetch the CRM record yet; will retry");
                    return;
                }
            },
        },
    };
    let lead = match state.pipeline.normalize(&raw) {
        Ok(l) => l,
        Err(e) => return fail(state, job, &format!("invalid lead: {e}")).await,
    };
    if let Some(email) = &lead.email {
        match state.store.is_suppressed(email).await {
            Ok(true) => {
                return fail(state, job, "suppressed: this person asked to be erased").await
            }
            Ok(false) => {}
            // The lease brings the job back; deciding without the check could re-process
            // someone who asked to be forgotten.
            Err(e) => {
                return tracing::error!(error = %e, "cannot check the suppression list; the job will be retried")
            }
        }
    }
    // A job taken over while it was being fetched or normalized: routing it here would
    // spend a pick the newer claim makes again.
    if held.is_lost() {
        return;
    }
    // Issue 25: the arrival's events join the person's history; scoring reads all of it.
    let lead = match crate::events::with_history(
        &state.store,
        &state.pipeline.scorer,
        &job.lead_id,
        lead,
        Utc::now(),
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            // The lease brings the job back: scoring without the history would lose points.
            return tracing::error!(error = %e, "cannot read the person's event history; the job will be retried");
        }
    };
    let decision = match state
        .pipeline
        .decide(lead.clone(), &state.store.for_job(&job.id), Utc::now())
        .await
    {
        Ok(d) => d,
        Err(e) => {
            // The lease brings the job back; nothing is lost.
            tracing::error!(error = %e, "pipeline could not finish; the job will be retried");
            return;
        }
    };
    crate::score::exported::record_scores(&decision);
    // A human override in force wins over the automatic decision (issue 24).
    let decision = match state.store.active_override(&job.lead_id).await {
        Ok(None) => decision,
        Ok(Some(o)) => {
            let mut d = decision;
            crate::console::overrides::apply(&mut d, &o);
            d
        }
        Err(e) => {
            // The lease brings the job back: delivering without the check could undo a person's override.
            return tracing::error!(error = %e, "cannot read the lead's overrides; the job will be retried");
        }
    };
    deliver_and_record(state, held, &lead, decision).await
}

/// Delivers the decision to the CRM (when `[delivery]` is set), then records it and closes
/// the job. A CRM refusal that will not heal fails the lead with the CRM's message; a
/// transient one leaves the job for its lease to bring back.
async fn deliver_and_record(
    state: &Services,
    held: &Held,
    lead: &crate::lead::Lead,
    decision: crate::lead::Decision,
) {
    let job = &held.job;
    let decision = match &state.delivery {
        None => decision,
        Some(crm) => {
            // The last renewal before the CRM call: it proves the job is still this worker's
            // and gives the delivery a whole lease (the heartbeat goes on renewing it).
            match held.renew(state).await {
                Ok(()) => {}
                Err(StoreError::LeaseLost { .. }) => {
                    return tracing::warn!("another worker claimed this job after its lease ran out; not delivering it");
                }
                Err(e) => {
                    return tracing::warn!(error = %e, "cannot confirm this worker still holds the job; not delivering it, the job will be retried");
                }
            }
            let fence = Fenced { held, state };
            match crm.deliver(&state.store, job, decision, &fence).await {
                Ok(d) => d,
                Err(crate::crm::DeliveryError::Store(StoreError::LeaseLost { .. })) => {
                    return tracing::warn!("another worker claimed this job after its lease ran out; this worker stops before calling the CRM");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "delivery did not finish; the job will be retried");
                    state
                        .alerts
                        .delivery_failed(crm.target.as_deref().unwrap_or("crm"));
                    return;
                }
            }
        }
    };
    // Issue 25 alerts: the grade before this decision, read only when it could turn hot.
    let previous_grade = state
        .alerts
        .previous_grade(&state.store, &job.lead_id, &decision)
        .await;
    match state.store.complete(job, lead, &decision).await {
        // `complete` recorded the CRM's refusal as the job's error with the status.
        Ok(()) if let Some(reason) = crate::crm::failure_reason(&decision) => {
            metrics::counter!("leadgate_leads_processed_total", "status" => "failed").increment(1);
            tracing::warn!(reason, "lead failed");
            state
                .alerts
                .decision_recorded(&job.lead_id, previous_grade, &decision);
        }
        Ok(()) => {
            state
                .alerts
                .decision_recorded(&job.lead_id, previous_grade, &decision);
            metrics::counter!("leadgate_leads_processed_total", "status" => decision.status.as_str()).increment(1);
            tracing::info!(
                email = %lead.masked_email(),
                score = decision.score,
                grade = %decision.grade,
                rule = %decision.route.rule,
                "lead decided"
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the decision; the job will be retried")
        }
    }
}

async fn fail(state: &Services, job: &Job, reason: &str) {
    metrics::counter!("leadgate_leads_processed_total", "status" => "failed").increment(1);
    tracing::warn!(reason, "lead failed");
    match state.store.fail(job, reason).await {
        Ok(()) => {}
        Err(StoreError::LeaseLost { .. }) => tracing::warn!(
            "another worker claimed this job after its lease ran out; it records the outcome"
        ),
        Err(e) => tracing::error!(error = %e, "cannot mark the job failed"),
    }
}
