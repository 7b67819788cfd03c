//! Batched CRM writes for the deliver stage (`[crm] batch_wait`, `batch_size`): workers that
//! reach their lead's write at about the same time hand it here, and it goes out with the
//! others for the same connector and operation as one batch call (HubSpot batch update or
//! batch upsert, Salesforce sObject collections) — after `batch_wait` from the batch's first
//! write, or as soon as `batch_size` are waiting. Each worker gets its own record's answer
//! back and settles its own outbox row as before, so exactly-once and per-record failure are
//! unchanged: one refused record fails only its lead; a call that fails as a whole (a 429
//! after retries, an outage) leaves every job in it to be retried.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::backfill::source::Vendor;
use super::backfill::write::{self, Change, Outcome, Upsert};
use super::client::CrmConnector;
use crate::connector::{ConnectorError, ErrorKind};

/// What a batched write is.
#[derive(Debug, Clone)]
pub enum BatchedWrite {
    /// An existing record by id.
    Update(Change),
    /// A record by its natural key (HubSpot: email).
    Upsert(Upsert),
}

impl BatchedWrite {
    fn op(&self) -> &'static str {
        match self {
            BatchedWrite::Update(_) => "update",
            BatchedWrite::Upsert(_) => "upsert",
        }
    }
}

/// A write's own answer: the record id written, or the CRM's refusal of this record.
pub type WriteAnswer = Result<String, Outcome>;

struct Waiting {
    write: BatchedWrite,
    answer: oneshot::Sender<Result<WriteAnswer, ConnectorError>>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Counts batches sent, so a batch's timer never sends a later batch early.
    generation: u64,
    timer_armed: bool,
}

/// Groups writes per (connector, operation).
pub struct WriteBatcher {
    wait: Duration,
    size: usize,
    queues: Mutex<HashMap<(String, &'static str), Queue>>,
}

impl std::fmt::Debug for WriteBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatcher")
            .field("wait", &self.wait)
            .field("size", &self.size)
            .finish()
    }
}

impl WriteBatcher {
    pub fn new(wait: Duration, size: usize) -> Self {
        Self {
            wait,
            size: size.max(1),
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Whether writes of `op` to `c` can be batched: the vendor has the batch endpoint.
    pub fn batches(c: &CrmConnector, op: &str) -> bool {
        match (Vendor::of(c.id()), op) {
            (Some(Vendor::HubSpot), "update") => c.has("batch_update"),
            (Some(Vendor::HubSpot), "upsert") => c.has("batch_upsert"),
            (Some(Vendor::Salesforce), "update" | "update_with_owner") => c.has("batch_update"),
            _ => false,
        }
    }

    /// Queues `write` and waits for its record's answer.
    pub async fn write(
        self: &Arc<Self>,
        c: Arc<CrmConnector>,
        write: BatchedWrite,
    ) -> Result<WriteAnswer, ConnectorError> {
        let Some(vendor) = Vendor::of(c.id()) else {
            return Err(internal("this CRM has no batch endpoint"));
        };
        let cap = self.size.min(vendor.batch_size());
        let key = (c.id().to_string(), write.op());
        let (tx, rx) = oneshot::channel();
        let (full, arm) = {
            let mut queues = self.queues.lock().map_err(|_| internal("lock poisoned"))?;
            let q = queues.entry(key.clone()).or_default();
            q.waiting.push(Waiting { write, answer: tx });
            if q.waiting.len() >= cap {
                q.generation += 1;
                q.timer_armed = false;
                (Some(std::mem::take(&mut q.waiting)), None)
            } else if !q.timer_armed {
                q.timer_armed = true;
                (None, Some(q.generation))
            } else {
                (None, None)
            }
        };
        if let Some(batch) = full {
            tokio::spawn(send(c.clone(), vendor, batch));
        }
        if let Some(generation) = arm {
            let me = self.clone();
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(me.wait).await;
                let batch = me.queues.lock().ok().and_then(|mut queues| {
                    let q = queues.get_mut(&key)?;
                    (q.generation == generation && !q.waiting.is_empty()).then(|| {
                        q.generation += 1;
                        q.timer_armed = false;
                        std::mem::take(&mut q.waiting)
                    })
                });
                if let Some(batch) = batch {
                    send(c, vendor, batch).await;
                }
            });
        }
        rx.await
            .unwrap_or_else(|_| Err(internal("the batch was dropped before it was sent")))
    }
}

fn internal(why: &str) -> ConnectorError {
    ConnectorError::new(
        ErrorKind::Upstream,
        None,
        format!("batched CRM write: {why}"),
    )
}

/// Sends one batch and hands each waiting write its answer.
async fn send(c: Arc<CrmConnector>, vendor: Vendor, batch: Vec<Waiting>) {
    metrics::histogram!("leadgate_crm_batch_size", "connector" => c.id().to_string())
        .record(batch.len() as f64);
    let owner_property = c.owner_property();
    let (updates, upserts): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|w| matches!(w.write, BatchedWrite::Update(_)));
    if !updates.is_empty() {
        let changes: Vec<Change> = updates
            .iter()
            .filter_map(|w| match &w.write {
                BatchedWrite::Update(ch) => Some(ch.clone()),
                BatchedWrite::Upsert(_) => None,
            })
            .collect();
        let answers = write::write_batch(&c, vendor, owner_property.as_deref(), &changes).await;
        for (i, (w, ch)) in updates.into_iter().zip(&changes).enumerate() {
            let answer = match &answers {
                Ok(outcomes) => Ok(match outcomes.get(i) {
                    Some(Outcome::Written) => Ok(ch.record_id.clone()),
                    Some(refused) => Err(refused.clone()),
                    None => Err(Outcome::Refused {
                        reason: "NO_RESULT".into(),
                        message: "no answer for this record".into(),
                    }),
                }),
                Err(e) => Err(e.clone()),
            };
            let _ = w.answer.send(answer);
        }
    }
    if !upserts.is_empty() {
        let inputs: Vec<Upsert> = upserts
            .iter()
            .filter_map(|w| match &w.write {
                BatchedWrite::Upsert(u) => Some(u.clone()),
                BatchedWrite::Update(_) => None,
            })
            .collect();
        let answers = write::upsert_batch(&c, owner_property.as_deref(), &inputs).await;
        for (i, w) in upserts.into_iter().enumerate() {
            let answer = match &answers {
                Ok(all) => Ok(all.get(i).cloned().unwrap_or_else(|| {
                    Err(Outcome::Refused {
                        reason: "NO_RESULT".into(),
                        message: "no answer for this record".into(),
                    })
                })),
                Err(e) => Err(e.clone()),
            };
            let _ = w.answer.send(answer);
        }
    }
}
