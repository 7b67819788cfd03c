//! SLA hand-offs in the CRM (issue 25 item 3): when the SLA sweep reassigns or escalates a
//! lead to a new owner, the CRM record the lead was delivered to gets that owner, through
//! the outbox so each SLA step writes it once, also across retries and replicas.

use serde_json::{Map, Value};

use super::body::TypedVars;
use super::deliver::{finished, settle, Step};
use super::outbox::Effect;
use super::{Crm, DeliveryError};
use crate::lead::Delivery;
use crate::store::Store;

impl Crm {
    /// Writes `owner` to the CRM record of `lead_id`, once per `step` (an id of the SLA
    /// step, unique per lead). None when there is nothing to write to: no delivery target,
    /// owners not assigned by leadgate, a connector with no owner property, or a lead not
    /// delivered to a record yet.
    pub async fn write_owner(
        &self,
        store: &Store,
        lead_id: &str,
        step: &str,
        owner: &str,
    ) -> Result<Option<Delivery>, DeliveryError> {
        let Some(target) = self.target.as_deref() else {
            return Ok(None);
        };
        if !self.assign_owner {
            return Ok(None);
        }
        let Some(c) = self.connectors.get(target).cloned() else {
            return Err(DeliveryError::NotConfigured(target.to_string()));
        };
        if c.owner_property().is_none() {
            return Ok(None);
        }
        // The record the lead's delivery wrote (or found): the latest one, as a later
        // delivery of the same lead may have found a merged record.
        let record = store
            .crm_writes(lead_id)
            .await?
            .into_iter()
            .rev()
            .find(|w| w.connector == target && w.op == "write" && w.status == "ok")
            .and_then(|w| w.record_id);
        let Some(record) = record else {
            return Ok(None);
        };
        let key = format!("lead:{lead_id}:{target}:owner:{step}");
        let entry = store
            .outbox_begin(&Effect {
                key: key.clone(),
                lead_id: lead_id.to_string(),
                job_id: None,
                connector: target.to_string(),
                op: "owner".into(),
                decision: None,
            })
            .await?;
        if let Some(done) = finished(&entry, target, "owner") {
            return Ok(Some(done));
        }
        let mut vars = TypedVars::new();
        vars.insert("record_id", Value::from(record.clone()));
        vars.insert("owner_id", Value::from(owner.to_string()));
        // Only the owner: the record's other values were written at delivery.
        vars.insert("properties", Value::Object(Map::new()));
        let op = if c.has("update_with_owner") {
            "update_with_owner"
        } else {
            "update"
        };
        let outcome = c.call(op, &vars).await.map(|reply| Step {
            op: op.to_string(),
            record_id: reply.text("record_id").or(Some(record)),
            result_id: None,
            detail: Some(format!("SLA step: owner set to {owner}")),
            answer: Value::Null,
        });
        settle(store, &key, target, "owner", outcome)
            .await
            .map(Some)
    }
}
