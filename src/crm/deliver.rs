//! The deliver stage: after a decision, write it to the CRM record and enroll the lead in
//! its nurture sequence — each side effect through the outbox, so a retry never repeats one.
//!
//! Per job: the decision is stored first (a replay delivers the same decision instead of
//! routing the lead again), then
//! 1. **write** — find the record (the lead's own CRM id, else the manifest's `find` by
//!    natural key), read what it holds, keep only the mapped fields its policy allows
//!    (`fill_empty` never overwrites a value), add the owner, and `update` it — or, when the
//!    CRM has no such record, `upsert` on the natural key (HubSpot batch upsert by email,
//!    Salesforce PATCH on the external-id field) or `create` (a 409 "Existing ID: N" turns
//!    into an update of N). An operation `NAME_with_owner`, when the manifest has one, is
//!    used when leadgate picked the owner (Salesforce: `Sforce-Auto-Assign: FALSE`).
//! 2. **enroll** — for an `enroll` route: find or create the person in the sequencing tool,
//!    check for an existing enrollment (`find_enrollment`), then `enroll` and keep its id.
//!
//! A CRM answer that will not heal (a 4xx: an unknown property, a required field missing)
//! marks the lead `failed` with the CRM's message; a transient one (5xx after retries, rate
//! limits, an exhausted quota, bad credentials) leaves the job for the queue to retry.
//! A crash between a CRM call and the outbox write replays through the natural keys: the
//! replay finds the record the first attempt wrote, sees it already holds every value and
//! the owner (a value the record holds is never written again), and writes nothing.

use std::sync::Arc;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::backfill::write::{Change, Outcome, Upsert};
use super::batching::{BatchedWrite, WriteBatcher};
use super::body::{get_path, set_path, TypedVars};
use super::client::{CrmConnector, Reply};
use super::config::{SequenceConfig, WriteMode, WritePolicy};
use super::fence::Fence;
use super::outbox::{Effect, EffectStatus, Finished, OutboxEntry};
use super::{Crm, DeliveryError};
use crate::connector::{ConnectorError, ErrorKind};
use crate::lead::{Decision, Delivery, DeliveryStatus, LeadStatus, RouteAction};
use crate::store::{Job, Store};

/// HubSpot's 409 CONFLICT carries the existing record's id only inside its message.
const EXISTING_ID: &str = r"Existing ID: (\d+)";

/// Whether a failed call is worth trying again later (the job goes back to the queue) or
/// is the CRM's final word on this lead.
fn heals(e: &ConnectorError) -> bool {
    !matches!(
        e.kind,
        ErrorKind::Invalid | ErrorKind::BadResponse | ErrorKind::Redirect
    )
}

impl Crm {
    /// The decision stored for this job by an earlier, interrupted delivery: a replay
    /// delivers it instead of deciding again (no second owner, no second rotation slot).
    pub async fn resume(&self, store: &Store, job: &Job) -> Option<Decision> {
        let entry = store.outbox_get(&decision_key(job)).await.ok()??;
        serde_json::from_str(entry.decision.as_deref()?).ok()
    }

    /// Delivers a decision: returns it with `delivery` filled in (and `status = failed` when
    /// the CRM refused it for good), or a transient error to retry the job later.
    pub async fn deliver(
        &self,
        store: &Store,
        job: &Job,
        mut decision: Decision,
        fence: &dyn Fence,
    ) -> Result<Decision, DeliveryError> {
        decision.id = job.lead_id.clone();
        // Rebuilt from the outbox: a replay reports what was done, once.
        decision.delivery.clear();
        let enroll = match (&decision.route.action, &decision.route.sequence) {
            (RouteAction::Enroll, Some(s)) if !self.sequences.is_empty() => Some(s.clone()),
            _ => None,
        };
        if self.target.is_none() && enroll.is_none() {
            return Ok(decision);
        }
        let key = decision_key(job);
        let stored =
            serde_json::to_string(&decision).map_err(|e| DeliveryError::Internal(e.to_string()))?;
        store
            .outbox_begin(&Effect {
                key: key.clone(),
                lead_id: job.lead_id.clone(),
                job_id: Some(job.id.clone()),
                connector: "-".into(),
                op: "decide".into(),
                decision: Some(stored),
            })
            .await?;

        let mut record: Option<(String, String)> = None;
        if let Some(target) = self.target.clone() {
            let connector = self.connector_for(&target)?;
            let d = self.write(store, job, &decision, &connector, fence).await?;
            if let Some(r) = &d.record_id {
                record = Some((target.clone(), r.clone()));
            }
            push(&mut decision, d);
        }
        let failed = decision
            .delivery
            .iter()
            .any(|d| d.status == DeliveryStatus::Failed);
        match (failed, enroll) {
            (false, Some(sequence)) => {
                let d = self
                    .enroll(store, job, &decision, &sequence, record.as_ref(), fence)
                    .await?;
                push(&mut decision, d);
            }
            (false, None) if decision.route.action == RouteAction::Enroll => {
                let connector = decision
                    .route
                    .connector
                    .clone()
                    .or_else(|| self.target.clone())
                    .unwrap_or_default();
                push(
                    &mut decision,
                    Delivery {
                        connector,
                        op: "enroll".into(),
                        status: DeliveryStatus::Skipped,
                        detail: Some(
                            "no [[delivery.sequence]] is configured: enrollments are not delivered"
                                .into(),
                        ),
                        record_id: None,
                        enrollment_id: None,
                    },
                )
            }
            _ => {}
        }
        if decision
            .delivery
            .iter()
            .any(|d| d.status == DeliveryStatus::Failed)
        {
            decision.status = LeadStatus::Failed;
        }
        store
            .outbox_finish(
                &key,
                &Finished {
                    status: EffectStatus::Ok,
                    record_id: None,
                    result_id: None,
                    answer: None,
                    error: None,
                },
            )
            .await?;
        Ok(decision)
    }

    pub(super) fn connector_for(&self, id: &str) -> Result<Arc<CrmConnector>, DeliveryError> {
        self.connectors
            .get(id)
            .cloned()
            .ok_or_else(|| DeliveryError::NotConfigured(id.to_string()))
    }

    /// Step 1: the record, its mapped fields and owner.
    pub(super) async fn write(
        &self,
        store: &Store,
        job: &Job,
        decision: &Decision,
        c: &Arc<CrmConnector>,
        fence: &dyn Fence,
    ) -> Result<Delivery, DeliveryError> {
        let id = c.id().to_string();
        let key = format!("job:{}:{id}:write", job.id);
        let entry = begin(store, &key, job, &id, "write").await?;
        if let Some(done) = finished(&entry, &id, "write") {
            return Ok(done);
        }
        fence.hold().await?;
        let mut vars = self.lead_vars(decision, &id);
        let owner = self.owner(decision);
        // Read the owner too: a record that already has it needs no write for it.
        let owner_property = owner.as_ref().and_then(|_| c.owner_property());
        let names: Vec<Value> = std::iter::once("email".to_string())
            .chain(
                self.fields
                    .iter()
                    .map(|f| f.property.split('.').next().unwrap_or_default().to_string()),
            )
            .chain(owner_property.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(Value::from)
            .collect();
        vars.insert("property_names", Value::Array(names));

        let outcome = async {
            let (record_id, current) = self.locate(c, &mut vars, decision).await?;
            let properties = self.properties(decision, current.as_ref());
            // Idempotent on replay: an attempt that reached the CRM before its outbox row
            // was closed (a crash, a store outage) left the record holding these values.
            let owner_held = match (&owner, &owner_property, &current) {
                (Some(o), Some(p), Some(cur)) => {
                    get_path(cur, p).is_some_and(|v| same(v, &json!(o)))
                }
                _ => false,
            };
            let nothing_new = properties.is_empty() && (owner.is_none() || owner_held);
            vars.insert("properties", Value::Object(properties.clone()));
            if let Some(o) = &owner {
                vars.insert("owner_id", Value::from(o.clone()));
            }
            if let (Some(r), true) = (&record_id, nothing_new) {
                return Ok(Step::skipped(
                    r.clone(),
                    "the record already holds every value to write; nothing to write",
                ));
            }
            let with_owner = |op: &str| {
                let named = format!("{op}_with_owner");
                if owner.is_some() && c.has(&named) {
                    named
                } else {
                    op.to_string()
                }
            };
            let reply = match &record_id {
                Some(r) => {
                    vars.insert("record_id", Value::from(r.clone()));
                    let op = with_owner("update");
                    match self
                        .batcher
                        .as_ref()
                        .filter(|_| WriteBatcher::batches(c, &op))
                    {
                        Some(b) => {
                            let change = Change {
                                record_id: r.clone(),
                                properties: properties.clone(),
                                owner: owner.clone(),
                            };
                            let reply = batched(b, c, BatchedWrite::Update(change)).await?;
                            (op, reply)
                        }
                        None => c.call(&op, &vars).await.map(|reply| (op, reply))?,
                    }
                }
                None => {
                    let upsert = with_owner("upsert");
                    let use_upsert = self.write_mode == WriteMode::Upsert
                        && c.has(&upsert)
                        && c.missing(&upsert, &vars).is_none();
                    let op = if use_upsert {
                        upsert
                    } else {
                        with_owner("create")
                    };
                    let batcher = self
                        .batcher
                        .as_ref()
                        .filter(|_| use_upsert && WriteBatcher::batches(c, &op));
                    let email = vars
                        .get("email")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    let reply = match (batcher, email) {
                        (Some(b), Some(email)) => {
                            let upsert = Upsert {
                                email,
                                trace: decision.id.clone(),
                                properties: properties.clone(),
                                owner: owner.clone(),
                            };
                            batched(b, c, BatchedWrite::Upsert(upsert)).await?
                        }
                        _ => c.call(&op, &vars).await?,
                    };
                    if reply.status == 409 {
                        // Created meanwhile (search lags behind writes): update the one that exists.
                        let message = reply
                            .body
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        let existing = Regex::new(EXISTING_ID).ok().and_then(|re| {
                            re.captures(&message)
                                .and_then(|c| c.get(1))
                                .map(|m| m.as_str().to_string())
                        });
                        let Some(existing) = existing else {
                            return Err(ConnectorError::new(
                                ErrorKind::Invalid,
                                Some(409),
                                format!("{id} answered 409 without an existing id: {message}"),
                            ));
                        };
                        vars.insert("record_id", Value::from(existing));
                        let op = with_owner("update");
                        c.call(&op, &vars)
                            .await
                            .map(|reply| (format!("{op} (after 409)"), reply))?
                    } else {
                        (op, reply)
                    }
                }
            };
            let (op, reply) = reply;
            let written = reply.text("record_id").or_else(|| {
                vars.get("record_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
            match (written, reply.text("error")) {
                (Some(r), None) => Ok(Step {
                    op,
                    record_id: Some(r),
                    result_id: None,
                    detail: None,
                    answer: summary(&reply),
                }),
                (_, error) => Err(ConnectorError::new(
                    ErrorKind::Invalid,
                    Some(reply.status),
                    format!(
                        "{id} did not write the record (HTTP {}): {}",
                        reply.status,
                        error.unwrap_or_else(|| "no record id in the answer".into())
                    ),
                )),
            }
        }
        .await;
        settle(store, &key, &id, "write", outcome).await
    }

    /// Step 2: the enrollment.
    pub(super) async fn enroll(
        &self,
        store: &Store,
        job: &Job,
        decision: &Decision,
        sequence: &str,
        record: Option<&(String, String)>,
        fence: &dyn Fence,
    ) -> Result<Delivery, DeliveryError> {
        let routed = decision.route.connector.as_deref();
        let Some(seq) = self.sequence(sequence, routed) else {
            let via = routed.or(self.target.as_deref()).unwrap_or("-").to_string();
            return Ok(Delivery {
                connector: via,
                op: "enroll".into(),
                status: DeliveryStatus::Failed,
                detail: Some(format!("routing enrolls in `{sequence}`, but no [[delivery.sequence]] has name = \"{sequence}\"; add it with the sequence's id")),
                record_id: None,
                enrollment_id: None,
            });
        };
        let id = routed
            .or(seq.connector.as_deref())
            .or(self.target.as_deref())
            .unwrap_or_default()
            .to_string();
        let c = self.connector_for(&id)?;
        let key = format!("lead:{}:{id}:enroll:{}", job.lead_id, seq.name);
        let entry = begin(store, &key, job, &id, "enroll").await?;
        if let Some(done) = finished(&entry, &id, "enroll") {
            return Ok(done);
        }
        fence.hold().await?;
        let mut vars = self.lead_vars(decision, &id);
        vars.insert("sequence_id", Value::from(seq.id.clone()));
        for (name, value) in [
            ("user_id", &seq.user_id),
            ("sender_email", &seq.sender_email),
            ("mailbox_id", &seq.mailbox_id),
        ] {
            if let Some(v) = value {
                vars.insert(name, Value::from(v.clone()));
            }
        }
        vars.insert(
            "member_status",
            Value::from(seq.status.clone().unwrap_or_else(|| "Sent".into())),
        );
        let outcome = async {
            let record_id = match record.filter(|(connector, _)| *connector == id) {
                Some((_, r)) => r.clone(),
                None => match self.locate(&c, &mut vars, decision).await?.0 {
                    Some(r) => r,
                    None => {
                        let reply = c.call("create", &vars).await?;
                        reply.text("record_id").ok_or_else(|| {
                            ConnectorError::new(ErrorKind::Invalid, Some(reply.status), format!("{id} created no person to enroll (no record id in the answer)"))
                        })?
                    }
                },
            };
            safe_id(&id, "record id", &record_id)?;
            vars.insert("record_id", Value::from(record_id.clone()));
            if c.has("find_enrollment") {
                let existing = c.call("find_enrollment", &vars).await?;
                let same_sequence = existing.text("sequence_id").is_none_or(|s| s == seq.id);
                if let (true, true, Some(enrollment)) = (existing.found, same_sequence, existing.text("enrollment_id")) {
                    return Ok(Step {
                        op: "enroll".into(),
                        record_id: Some(record_id),
                        result_id: Some(enrollment),
                        detail: Some(format!("already in {}", seq.name)),
                        answer: summary(&existing),
                    });
                }
            }
            let reply = c.call("enroll", &vars).await?;
            let enrollment = reply.text("enrollment_id").ok_or_else(|| {
                ConnectorError::new(ErrorKind::BadResponse, Some(reply.status), format!("{id} answered the enrollment without an id"))
            })?;
            Ok(Step {
                op: "enroll".into(),
                record_id: Some(record_id),
                result_id: Some(enrollment),
                detail: Some(format!("enrolled in {}", seq.name)),
                answer: summary(&reply),
            })
        }
        .await;
        settle(store, &key, &id, "enroll", outcome).await
    }

    /// The record this lead is in `c`, and what it holds now (`None` when it is new).
    async fn locate(
        &self,
        c: &CrmConnector,
        vars: &mut TypedVars,
        decision: &Decision,
    ) -> Result<(Option<String>, Option<Value>), ConnectorError> {
        let own = decision.lead.crm.as_deref() == Some(c.id());
        if let (true, Some(external)) = (own, decision.lead.external_id.clone()) {
            safe_id(c.id(), "record id", &external)?;
            vars.insert("record_id", Value::from(external.clone()));
            let current = if c.has("get") {
                Some(c.call("get", vars).await?)
            } else {
                None
            };
            return Ok((
                Some(external),
                current
                    .filter(|r| r.found)
                    .and_then(|r| r.fields.get("properties").cloned()),
            ));
        }
        if !c.has("find") || c.missing("find", vars).is_some() {
            return Ok((None, None));
        }
        let found = c.call("find", vars).await?;
        let Some(record_id) = found.text("record_id").filter(|_| found.found) else {
            return Ok((None, None));
        };
        safe_id(c.id(), "record id", &record_id)?;
        vars.insert("record_id", Value::from(record_id.clone()));
        let mut current = found.fields.get("properties").cloned();
        if current.is_none() && c.has("get") {
            current = c.call("get", vars).await?.fields.get("properties").cloned();
        }
        Ok((Some(record_id), current))
    }

    /// The mapped fields to write, given what the record holds (`None`: a new record).
    pub(super) fn properties(
        &self,
        decision: &Decision,
        current: Option<&Value>,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for f in &self.fields {
            let Some(value) = canonical(decision, &f.canonical).filter(|v| !v.is_null()) else {
                continue;
            };
            let held = current.and_then(|c| get_path(c, &f.property));
            let write = match f.policy {
                WritePolicy::Never => false,
                // Writing the value the record already holds changes nothing.
                WritePolicy::Overwrite => !held.is_some_and(|h| same(h, &value)),
                WritePolicy::FillEmpty => held.is_none_or(is_empty),
            };
            if write {
                set_path(&mut out, &f.property, value);
            }
        }
        out
    }

    /// The owner leadgate picked, when it assigns one.
    pub(super) fn owner(&self, decision: &Decision) -> Option<String> {
        let r = &decision.route;
        (self.assign_owner && matches!(r.action, RouteAction::Assign))
            .then(|| r.owner.clone())
            .flatten()
            .filter(|o| !o.is_empty())
    }

    fn sequence(&self, name: &str, connector: Option<&str>) -> Option<&SequenceConfig> {
        let named = || self.sequences.iter().filter(|s| s.name == name);
        connector
            .and_then(|c| named().find(|s| s.connector.as_deref() == Some(c)))
            .or_else(|| named().next())
    }

    /// The template values every operation may use.
    fn lead_vars(&self, decision: &Decision, connector: &str) -> TypedVars {
        let l = &decision.lead;
        let mut v = TypedVars::new();
        let mut put = |k: &'static str, val: Option<&String>| {
            if let Some(s) = val.map(|s| s.trim()).filter(|s| !s.is_empty()) {
                v.insert(k, Value::from(s));
            }
        };
        put("email", l.email.as_ref());
        put("first_name", l.first_name.as_ref());
        put("last_name", l.last_name.as_ref());
        put("company", l.company.as_ref());
        put("domain", l.domain.as_ref());
        if l.crm.as_deref() == Some(connector) {
            put("external_id", l.external_id.as_ref());
        }
        let full = [l.first_name.as_deref(), l.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let full = if full.trim().is_empty() {
            l.email
                .clone()
                .or_else(|| l.company.clone())
                .unwrap_or_default()
        } else {
            full
        };
        v.insert("full_name", Value::from(full));
        v.insert("lead_id", Value::from(decision.id.clone()));
        v
    }
}

/// A write sent with others in one batch call (`[crm] batch_wait`), answered as the single
/// call would have been: the record id, or the CRM's refusal of this record alone.
async fn batched(
    b: &Arc<WriteBatcher>,
    c: &Arc<CrmConnector>,
    write: BatchedWrite,
) -> Result<Reply, ConnectorError> {
    match b.write(c.clone(), write).await? {
        Ok(record_id) => Ok(Reply {
            status: 200,
            found: true,
            body: Value::Null,
            fields: std::collections::BTreeMap::from([(
                "record_id".to_string(),
                Value::from(record_id),
            )]),
        }),
        Err(Outcome::Refused { reason, message }) => Err(ConnectorError::new(
            ErrorKind::Invalid,
            None,
            format!("{reason}: {message}"),
        )),
        Err(Outcome::Written) => Err(ConnectorError::new(
            ErrorKind::BadResponse,
            None,
            "the batch answer had no record id",
        )),
    }
}

fn decision_key(job: &Job) -> String {
    format!("job:{}:decision", job.id)
}

fn push(decision: &mut Decision, d: Delivery) {
    decision.delivery.push(d);
}

/// What one step did, for the outbox and the decision record.
pub(super) struct Step {
    pub(super) op: String,
    pub(super) record_id: Option<String>,
    pub(super) result_id: Option<String>,
    pub(super) detail: Option<String>,
    pub(super) answer: Value,
}

impl Step {
    fn skipped(record_id: String, why: &str) -> Self {
        Step {
            op: "none".into(),
            record_id: Some(record_id),
            result_id: None,
            detail: Some(why.into()),
            answer: Value::Null,
        }
    }
}

async fn begin(
    store: &Store,
    key: &str,
    job: &Job,
    connector: &str,
    op: &str,
) -> Result<OutboxEntry, DeliveryError> {
    Ok(store
        .outbox_begin(&Effect {
            key: key.to_string(),
            lead_id: job.lead_id.clone(),
            job_id: Some(job.id.clone()),
            connector: connector.to_string(),
            op: op.to_string(),
            decision: None,
        })
        .await?)
}

/// A step the outbox already closed: its recorded answer, nothing called again.
pub(super) fn finished(entry: &OutboxEntry, connector: &str, op: &str) -> Option<Delivery> {
    let recorded_op = entry
        .answer
        .as_ref()
        .and_then(|a| a.get("op"))
        .and_then(Value::as_str)
        .unwrap_or(op)
        .to_string();
    match entry.status {
        EffectStatus::Pending => None,
        EffectStatus::Ok => Some(Delivery {
            connector: connector.to_string(),
            op: recorded_op,
            status: DeliveryStatus::Ok,
            detail: entry
                .answer
                .as_ref()
                .and_then(|a| a.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_string),
            record_id: entry.record_id.clone(),
            enrollment_id: entry.result_id.clone(),
        }),
        EffectStatus::Failed => Some(Delivery {
            connector: connector.to_string(),
            op: recorded_op,
            status: DeliveryStatus::Failed,
            detail: entry.error.clone(),
            record_id: entry.record_id.clone(),
            enrollment_id: None,
        }),
    }
}

/// Closes a step in the outbox: ok, failed for good (the lead fails), or still pending
/// (the job is retried).
pub(super) async fn settle(
    store: &Store,
    key: &str,
    connector: &str,
    op: &str,
    outcome: Result<Step, ConnectorError>,
) -> Result<Delivery, DeliveryError> {
    match outcome {
        Ok(step) => {
            let answer = json!({"op": step.op, "detail": step.detail, "crm": step.answer});
            store
                .outbox_finish(
                    key,
                    &Finished {
                        status: EffectStatus::Ok,
                        record_id: step.record_id.clone(),
                        result_id: step.result_id.clone(),
                        answer: Some(answer),
                        error: None,
                    },
                )
                .await?;
            metrics::counter!("leadgate_deliveries_total", "connector" => connector.to_string(), "op" => op.to_string(), "outcome" => "ok").increment(1);
            Ok(Delivery {
                connector: connector.to_string(),
                op: step.op,
                status: DeliveryStatus::Ok,
                detail: step.detail,
                record_id: step.record_id,
                enrollment_id: step.result_id,
            })
        }
        Err(e) if heals(&e) => {
            store
                .outbox_finish(
                    key,
                    &Finished {
                        status: EffectStatus::Pending,
                        record_id: None,
                        result_id: None,
                        answer: None,
                        error: Some(e.message.clone()),
                    },
                )
                .await?;
            Err(DeliveryError::Transient {
                connector: connector.to_string(),
                error: e,
            })
        }
        Err(e) => {
            let message = format!("{connector} refused the {op}: {}", e.message);
            store
                .outbox_finish(
                    key,
                    &Finished {
                        status: EffectStatus::Failed,
                        record_id: None,
                        result_id: None,
                        answer: None,
                        error: Some(message.clone()),
                    },
                )
                .await?;
            metrics::counter!("leadgate_delivery_failures_total", "connector" => connector.to_string(), "op" => op.to_string(), "error_kind" => e.kind.as_str())
                .increment(1);
            tracing::warn!(connector, op, error_kind = e.kind.as_str(), status = ?e.status, "the CRM refused the delivery; the lead is marked failed");
            Ok(Delivery {
                connector: connector.to_string(),
                op: op.to_string(),
                status: DeliveryStatus::Failed,
                detail: Some(message),
                record_id: None,
                enrollment_id: None,
            })
        }
    }
}

/// The CRM's answer, kept in the outbox: status and the ids it gave, never the record's
/// values (they hold personal data, and erasure must not have to hunt for them here).
fn summary(reply: &Reply) -> Value {
    let ids: serde_json::Map<String, Value> = reply
        .fields
        .iter()
        .filter(|(k, _)| k.as_str() != "properties")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({"status": reply.status, "found": reply.found, "fields": ids})
}

/// Whether the CRM's value is `ours` (CRMs such as HubSpot keep every value as a string).
pub(super) fn same(theirs: &Value, ours: &Value) -> bool {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    theirs == ours || (!theirs.is_null() && text(theirs) == text(ours))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Ids land in paths and in SOQL literals: only letters, digits, `-`, `_`, `.`.
fn safe_id(connector: &str, what: &str, id: &str) -> Result<(), ConnectorError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(ConnectorError::new(
            ErrorKind::Invalid,
            None,
            format!("{connector}: the {what} `{id}` is not a plain id"),
        ))
    }
}

/// A decision value by its canonical name (see [`super::config::FieldMappingConfig`]).
pub fn canonical(d: &Decision, name: &str) -> Option<Value> {
    let r = &d.route;
    let text = |s: &Option<String>| s.as_ref().map(|s| Value::from(s.clone()));
    match name {
        "score" => return Some(json!(d.score)),
        "grade" => return Some(json!(d.grade)),
        "decided_at" => return Some(json!(d.decided_at.to_rfc3339())),
        "route.rule" => return Some(json!(r.rule)),
        "route.reason" => return Some(json!(r.reason)),
        "route.action" => return serde_json::to_value(r.action).ok(),
        "route.pool" => return text(&r.pool),
        "route.owner" => return text(&r.owner),
        "route.sequence" => return text(&r.sequence),
        "email.domain" => return text(&d.lead.email_info.domain),
        "email.is_free" => return Some(json!(d.lead.email_info.is_free)),
        "email.is_disposable" => return Some(json!(d.lead.email_info.is_disposable)),
        _ => {}
    }
    let (head, rest) = name.split_once('.')?;
    match head {
        "company" | "person" => d.enrichment.value(name).cloned(),
        "scores" => d.scores.get(rest).map(|c| json!(c.score)),
        "grades" => d.scores.get(rest).map(|c| json!(c.grade)),
        "lead" => serde_json::to_value(&d.lead).ok()?.get(rest).cloned(),
        _ => None,
    }
}

/// Whether `name` is a canonical name [`canonical`] knows.
pub fn is_known(name: &str) -> bool {
    use crate::lead::{CANONICAL_FIELDS, COMPANY_FIELDS, PERSON_FIELDS};
    const FIXED: &[&str] = &[
        "score",
        "grade",
        "decided_at",
        "route.rule",
        "route.reason",
        "route.action",
        "route.pool",
        "route.owner",
        "route.sequence",
        "email.domain",
        "email.is_free",
        "email.is_disposable",
    ];
    if FIXED.contains(&name) {
        return true;
    }
    match name.split_once('.') {
        Some(("company", f)) => COMPANY_FIELDS.contains(&f),
        Some(("person", f)) => PERSON_FIELDS.contains(&f),
        Some(("scores" | "grades", f)) => !f.is_empty(),
        Some(("lead", f)) => CANONICAL_FIELDS.contains(&f) && !matches!(f, "attributes" | "events"),
        _ => false,
    }
}
