//! CRM effects of a score that moved at rest (issue 25, `[[trigger]]` in src/rescore): the
//! same write, enrollment and delivery as an arrival's, keyed by the firing instead of a
//! job, so each (trigger, lead, decision) reaches the CRM once across retries and replicas.

use super::fence::Unfenced;
use super::{Crm, DeliveryError};
use crate::lead::{Decision, Delivery};
use crate::store::{Job, Store};

/// The outbox keys of a firing: `job:<effect>:...`, as a job's are.
fn firing(lead_id: &str, effect: &str) -> Job {
    Job {
        id: effect.to_string(),
        lead_id: lead_id.to_string(),
        payload: String::new(),
        attempts: 0,
    }
}

impl Crm {
    /// `write_score`: writes the decision's mapped fields (the new score and grade among
    /// them) to the lead's record, per each field's write policy. None without a target.
    pub async fn write_at_rest(
        &self,
        store: &Store,
        lead_id: &str,
        effect: &str,
        decision: &Decision,
    ) -> Result<Option<Delivery>, DeliveryError> {
        let Some(target) = self.target.clone() else {
            return Ok(None);
        };
        let c = self.connector_for(&target)?;
        self.write(store, &firing(lead_id, effect), decision, &c, &Unfenced)
            .await
            .map(Some)
    }

    /// `enroll = "SEQUENCE"`: enrolls the lead, once per lead and sequence as routing does.
    pub async fn enroll_at_rest(
        &self,
        store: &Store,
        lead_id: &str,
        effect: &str,
        decision: &Decision,
        sequence: &str,
    ) -> Result<Delivery, DeliveryError> {
        // The record the lead's delivery wrote, when the sequencing tool is the CRM.
        let record = match self.target.as_deref() {
            Some(target) => store
                .crm_writes(lead_id)
                .await?
                .into_iter()
                .rev()
                .find(|w| w.connector == target && w.op == "write" && w.status == "ok")
                .and_then(|w| w.record_id.map(|r| (target.to_string(), r))),
            None => None,
        };
        self.enroll(
            store,
            &firing(lead_id, effect),
            decision,
            sequence,
            record.as_ref(),
            &Unfenced,
        )
        .await
    }

    /// `reroute`: delivers the re-routed decision as a routed lead (write, then enroll when
    /// the new route enrolls).
    pub async fn deliver_at_rest(
        &self,
        store: &Store,
        lead_id: &str,
        effect: &str,
        decision: Decision,
    ) -> Result<Decision, DeliveryError> {
        self.deliver(store, &firing(lead_id, effect), decision, &Unfenced)
            .await
    }
}
