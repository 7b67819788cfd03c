//! What the stages share at run time — the pipeline, the store, the CRM client — built
//! once by the daemon and handed to the workers, the background sweeps and the HTTP edge.
//! It lives outside `server` so that workers and sweeps do not depend on the HTTP edge:
//! the edge is one caller of the services, beside them.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::pipeline::Pipeline;
use crate::store::Store;

/// The running daemon's services.
pub struct Services {
    pub pipeline: Pipeline,
    pub store: Store,
    /// Wakes idle workers when a lead is queued.
    pub queued: Notify,
    /// False while starting and once draining; `/readyz` answers 503 then.
    pub ready: AtomicBool,
    /// Fetches the CRM record a webhook named by id; none until a CRM connector is set.
    pub records: Option<Arc<dyn crate::webhook::RecordSource>>,
    /// Delivers decisions to the CRM (write-back, owner, enrollment); none unless
    /// `[delivery]` names a target or sequences. Only the queue's workers deliver.
    pub delivery: Option<Arc<crate::crm::Crm>>,
    /// Where stages report what `[[alert]]`s watch (issue 25); a no-op with none configured.
    pub alerts: crate::alert::Alerts,
}

impl Services {
    /// Services with no CRM, not yet ready: what tests and intake-only tools start from.
    pub fn new(pipeline: Pipeline, store: Store) -> Self {
        Self {
            pipeline,
            store,
            queued: Notify::new(),
            ready: AtomicBool::new(false),
            records: None,
            delivery: None,
            alerts: crate::alert::Alerts::none(),
        }
    }

    /// What a job's stages use besides the pipeline (`Pipeline::run_job`).
    pub fn stages(&self) -> crate::pipeline::JobStages<'_> {
        crate::pipeline::JobStages {
            store: &self.store,
            records: self.records.as_deref(),
            delivery: self.delivery.as_deref(),
            alerts: &self.alerts,
        }
    }

    /// The providers' live reports (circuit, budget), as the alert dispatcher reads them.
    pub fn provider_reports(self: &Arc<Self>) -> crate::alert::dispatcher::ProviderReports {
        let services = self.clone();
        Box::new(move || {
            services
                .pipeline
                .connectors
                .report(&services.pipeline.waterfall)
        })
    }
}
