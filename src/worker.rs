//! Workers: claim a job → run the pipeline → record the decision and close the job. A
//! worker that dies mid-job leaves a lease that runs out, and the job is claimed again.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tracing::Instrument;

use crate::lead::RawLead;
use crate::server::AppState;
use crate::store::Job;

/// How long an idle worker sleeps before looking again, when nothing woke it.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Pause after a store error, so a broken disk does not spin the CPU.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Runs until `shutdown` turns true; finishes the job in hand first.
pub async fn run(state: Arc<AppState>, lease: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        match state.store.claim(lease).await {
            Ok(Some(job)) => process(&state, job).await,
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

async fn process(state: &AppState, job: Job) {
    let span = tracing::info_span!("job", id = %job.id, attempt = job.attempts);
    decide(state, job).instrument(span).await
}

async fn decide(state: &AppState, job: Job) {
    let raw: RawLead = match serde_json::from_str(&job.payload) {
        Ok(r) => r,
        Err(e) => return fail(state, &job, &format!("stored payload is not a lead: {e}")).await,
    };
    // A delivery a crash interrupted resumes with the decision it was delivering: the lead
    // is not routed a second time.
    if let Some(crm) = &state.delivery {
        if let Some(decision) = crm.resume(&state.store, &job).await {
            let lead = decision.lead.clone();
            return deliver_and_record(state, &job, &lead, decision).await;
        }
    }
    let raw = match crate::webhook::fetch_target(&raw) {
        None => raw,
        Some((connector, object, id)) => match &state.records {
            None => return fail(state, &job, &format!("the webhook named {connector} {object} {id}, but no CRM connector is configured to fetch it")).await,
            Some(source) => match source.fetch(&connector, &object, &id).await {
                Ok(fetched) => fetched,
                Err(e) if e.permanent => return fail(state, &job, &format!("cannot read {connector} {object} {id}: {e}")).await,
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
        Err(e) => return fail(state, &job, &format!("invalid lead: {e}")).await,
    };
    if let Some(email) = &lead.email {
        match state.store.is_suppressed(email).await {
            Ok(true) => {
                return fail(state, &job, "suppressed: this person asked to be erased").await
            }
            Ok(false) => {}
            // The lease brings the job back; deciding without the check could re-process
            // someone who asked to be forgotten.
            Err(e) => {
                return tracing::error!(error = %e, "cannot check the suppression list; the job will be retried")
            }
        }
    }
    let decision = match state
        .pipeline
        .decide(lead.clone(), &state.store, Utc::now())
        .await
    {
        Ok(d) => d,
        Err(e) => {
            // The lease brings the job back; nothing is lost.
            tracing::error!(error = %e, "pipeline could not finish; the job will be retried");
            return;
        }
    };
    deliver_and_record(state, &job, &lead, decision).await
}

/// Delivers the decision to the CRM (when `[delivery]` is set), then records it and closes
/// the job. A CRM refusal that will not heal fails the lead with the CRM's message; a
/// transient one leaves the job for its lease to bring back.
async fn deliver_and_record(
    state: &AppState,
    job: &Job,
    lead: &crate::lead::Lead,
    decision: crate::lead::Decision,
) {
    let decision = match &state.delivery {
        None => decision,
        Some(crm) => match crm.deliver(&state.store, job, decision).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "delivery did not finish; the job will be retried");
                return;
            }
        },
    };
    match state.store.complete(job, lead, &decision).await {
        Ok(()) if crate::crm::failure_reason(&decision).is_some() => {
            let reason = crate::crm::failure_reason(&decision).unwrap_or_default();
            fail(state, job, &reason).await;
        }
        Ok(()) => {
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

async fn fail(state: &AppState, job: &Job, reason: &str) {
    metrics::counter!("leadgate_leads_processed_total", "status" => "failed").increment(1);
    tracing::warn!(reason, "lead failed");
    if let Err(e) = state.store.fail(job, reason).await {
        tracing::error!(error = %e, "cannot mark the job failed");
    }
}
