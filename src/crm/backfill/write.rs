//! Writing a page's changes back in the vendor's batch shape and reading its answer record
//! by record: HubSpot batch update (200, or 207 MULTI_STATUS with `errors` naming the ids
//! they are about), Salesforce sObject collections (one `{id, success, errors}` per record,
//! in order), Pipedrive one `update` per person. One refused record fails alone.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use super::super::body::{set_path, TypedVars};
use super::super::client::CrmConnector;
use super::source::{id_text, Vendor};
use crate::connector::{ConnectorError, ErrorKind};

/// One record's change.
#[derive(Debug, Clone)]
pub struct Change {
    pub record_id: String,
    pub properties: Map<String, Value>,
    pub owner: Option<String>,
}

/// What the CRM did with one record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Written,
    /// Refused for good: `reason` is the CRM's category or status code (the summary counts
    /// by it), `message` its words, emails masked.
    Refused {
        reason: String,
        message: String,
    },
}

/// Writes `batch` (at most the vendor's batch size) and returns one outcome per record, in
/// order; `Err` when the whole call failed in a way worth trying again (limits, outages).
pub async fn write_batch(
    c: &CrmConnector,
    vendor: Vendor,
    owner_property: Option<&str>,
    batch: &[Change],
) -> Result<Vec<Outcome>, ConnectorError> {
    match vendor {
        Vendor::HubSpot => hubspot(c, owner_property, batch).await,
        Vendor::Salesforce => salesforce(c, owner_property, batch).await,
        Vendor::Pipedrive => {
            let mut out = Vec::with_capacity(batch.len());
            for change in batch {
                out.push(pipedrive(c, change).await?);
            }
            Ok(out)
        }
    }
}

fn with_owner(change: &Change, owner_property: Option<&str>) -> Map<String, Value> {
    let mut properties = change.properties.clone();
    if let (Some(o), Some(p)) = (&change.owner, owner_property) {
        set_path(&mut properties, p, Value::from(o.clone()));
    }
    properties
}

/// A whole call refused (a 4xx): every record in it fails with the CRM's reason.
fn refused_all(e: &ConnectorError, n: usize) -> Vec<Outcome> {
    let reason = e
        .status
        .map_or_else(|| e.kind.as_str().to_string(), |s| format!("HTTP {s}"));
    vec![
        Outcome::Refused {
            reason,
            message: e.message.clone(),
        };
        n
    ]
}

fn heals(e: &ConnectorError) -> bool {
    !matches!(
        e.kind,
        ErrorKind::Invalid | ErrorKind::BadResponse | ErrorKind::Redirect
    )
}

async fn hubspot(
    c: &CrmConnector,
    owner_property: Option<&str>,
    batch: &[Change],
) -> Result<Vec<Outcome>, ConnectorError> {
    let inputs: Vec<Value> = batch
        .iter()
        .map(|ch| json!({"id": ch.record_id, "properties": with_owner(ch, owner_property)}))
        .collect();
    let vars = TypedVars::from([("inputs", Value::Array(inputs))]);
    let reply = match c.call("batch_update", &vars).await {
        Ok(r) => r,
        Err(e) if heals(&e) => return Err(e),
        Err(e) => return Ok(refused_all(&e, batch.len())),
    };
    let written: HashSet<String> = reply
        .body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("id").and_then(id_text))
        .collect();
    // Each error names the ids it is about in `context.ids` (batch update) or carries the
    // input's `objectWriteTraceId`; an error naming none is about every record not written.
    let mut refused: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut unnamed: Option<(String, String)> = None;
    for e in reply
        .body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let reason = e
            .get("category")
            .and_then(Value::as_str)
            .unwrap_or("ERROR")
            .to_string();
        let message = mask(e.get("message").and_then(Value::as_str).unwrap_or_default());
        let mut ids: Vec<String> = e
            .pointer("/context/ids")
            .or_else(|| e.pointer("/context/id"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(id_text)
            .collect();
        if let Some(t) = e.get("objectWriteTraceId").and_then(id_text) {
            ids.push(t);
        }
        if ids.is_empty() {
            unnamed.get_or_insert((reason, message));
        } else {
            for id in ids {
                refused.insert(id, (reason.clone(), message.clone()));
            }
        }
    }
    Ok(batch
        .iter()
        .map(|ch| {
            if let Some((reason, message)) = refused.get(&ch.record_id) {
                return Outcome::Refused {
                    reason: reason.clone(),
                    message: message.clone(),
                };
            }
            if written.contains(&ch.record_id) {
                return Outcome::Written;
            }
            let (reason, message) = unnamed.clone().unwrap_or_else(|| {
                (
                    "NO_RESULT".into(),
                    format!(
                        "HubSpot answered HTTP {} without a result for this contact",
                        reply.status
                    ),
                )
            });
            Outcome::Refused { reason, message }
        })
        .collect())
}

async fn salesforce(
    c: &CrmConnector,
    owner_property: Option<&str>,
    batch: &[Change],
) -> Result<Vec<Outcome>, ConnectorError> {
    let records: Vec<Value> = batch
        .iter()
        .map(|ch| {
            let mut r = Map::new();
            r.insert("attributes".into(), json!({"type": "Lead"}));
            r.insert("id".into(), Value::from(ch.record_id.clone()));
            r.extend(with_owner(ch, owner_property));
            Value::Object(r)
        })
        .collect();
    let vars = TypedVars::from([("records", Value::Array(records))]);
    let reply = match c.call("batch_update", &vars).await {
        Ok(r) => r,
        Err(e) if heals(&e) => return Err(e),
        Err(e) => return Ok(refused_all(&e, batch.len())),
    };
    let answers = reply.body.as_array().cloned().unwrap_or_default();
    Ok(batch
        .iter()
        .enumerate()
        .map(|(i, _)| match answers.get(i) {
            Some(a) if a.get("success").and_then(Value::as_bool) == Some(true) => Outcome::Written,
            Some(a) => {
                let first = a.pointer("/errors/0");
                Outcome::Refused {
                    reason: first
                        .and_then(|e| e.get("statusCode"))
                        .and_then(Value::as_str)
                        .unwrap_or("ERROR")
                        .to_string(),
                    message: mask(
                        first
                            .and_then(|e| e.get("message"))
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    ),
                }
            }
            None => Outcome::Refused {
                reason: "NO_RESULT".into(),
                message: format!(
                    "Salesforce answered {} results for {} records",
                    answers.len(),
                    batch.len()
                ),
            },
        })
        .collect())
}

async fn pipedrive(c: &CrmConnector, change: &Change) -> Result<Outcome, ConnectorError> {
    let mut vars = TypedVars::from([
        ("record_id", Value::from(change.record_id.clone())),
        ("properties", Value::Object(change.properties.clone())),
    ]);
    if let Some(o) = &change.owner {
        vars.insert("owner_id", Value::from(o.clone()));
    }
    match c.call("update", &vars).await {
        Ok(_) => Ok(Outcome::Written),
        Err(e) if heals(&e) => Err(e),
        Err(e) => Ok(refused_all(&e, 1).remove(0)),
    }
}

/// The CRM's words with any email address masked (they reach the summary and the outbox).
fn mask(text: &str) -> String {
    text.split_whitespace()
        .map(|w| {
            if w.contains('@') {
                crate::lead::mask_email(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A record written on its natural key (HubSpot batch upsert by email), for the deliver
/// stage's batches (`crate::crm::batching`).
#[derive(Debug, Clone)]
pub struct Upsert {
    pub email: String,
    /// The lead id, sent as `objectWriteTraceId` to tie each result and error to its input.
    pub trace: String,
    pub properties: Map<String, Value>,
    pub owner: Option<String>,
}

/// HubSpot batch upsert of `batch`: per input, the record id written or the CRM's refusal.
pub async fn upsert_batch(
    c: &CrmConnector,
    owner_property: Option<&str>,
    batch: &[Upsert],
) -> Result<Vec<Result<String, Outcome>>, ConnectorError> {
    let inputs: Vec<Value> = batch
        .iter()
        .map(|u| {
            let mut properties = Map::new();
            properties.insert("email".into(), Value::from(u.email.clone()));
            properties.extend(u.properties.clone());
            if let (Some(o), Some(p)) = (&u.owner, owner_property) {
                set_path(&mut properties, p, Value::from(o.clone()));
            }
            json!({"idProperty": "email", "id": u.email, "objectWriteTraceId": u.trace, "properties": properties})
        })
        .collect();
    let vars = TypedVars::from([("inputs", Value::Array(inputs))]);
    let reply = match c.call("batch_upsert", &vars).await {
        Ok(r) => r,
        Err(e) if heals(&e) => return Err(e),
        Err(e) => return Ok(refused_all(&e, batch.len()).into_iter().map(Err).collect()),
    };
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    for r in reply
        .body
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = r.get("id").and_then(id_text);
        let key = r
            .get("objectWriteTraceId")
            .and_then(id_text)
            .or_else(|| r.pointer("/properties/email").and_then(id_text));
        if let (Some(id), Some(key)) = (id, key) {
            written.insert(key.to_lowercase(), id);
        }
    }
    let mut refused: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut unnamed: Option<Outcome> = None;
    for e in reply
        .body
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let outcome = Outcome::Refused {
            reason: e
                .get("category")
                .and_then(Value::as_str)
                .unwrap_or("ERROR")
                .to_string(),
            message: mask(e.get("message").and_then(Value::as_str).unwrap_or_default()),
        };
        let mut keys: Vec<String> = e
            .pointer("/context/ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(id_text)
            .collect();
        keys.extend(e.get("objectWriteTraceId").and_then(id_text));
        if keys.is_empty() {
            unnamed.get_or_insert(outcome);
        } else {
            for k in keys {
                refused.insert(k.to_lowercase(), outcome.clone());
            }
        }
    }
    Ok(batch
        .iter()
        .map(|u| {
            let (trace, email) = (u.trace.to_lowercase(), u.email.to_lowercase());
            if let Some(o) = refused.get(&trace).or_else(|| refused.get(&email)) {
                return Err(o.clone());
            }
            if let Some(id) = written.get(&trace).or_else(|| written.get(&email)) {
                return Ok(id.clone());
            }
            Err(unnamed.clone().unwrap_or_else(|| Outcome::Refused {
                reason: "NO_RESULT".into(),
                message: format!(
                    "HubSpot answered HTTP {} without a result for this contact",
                    reply.status
                ),
            }))
        })
        .collect())
}
