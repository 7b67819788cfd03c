//! [`RecordSource`] for the CRM connectors: the record a webhook named only by id
//! (`contact` 512 in HubSpot, `Lead` 00Q… in Salesforce, `person` 746 in Pipedrive), read
//! with the manifest's `fetch_OBJECT` operation and mapped to canonical lead fields.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::body::TypedVars;
use super::Crm;
use crate::lead::RawLead;
use crate::webhook::{FetchError, RecordSource};

/// Response-map fields that describe the record rather than the lead.
const RECORD_FIELDS: &[&str] = &["record_id", "modified_at", "properties", "records"];

impl RecordSource for Crm {
    fn fetch<'a>(
        &'a self,
        connector: &'a str,
        object: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<RawLead, FetchError>> {
        Box::pin(async move {
            let c = self
                .connector(connector)
                .ok_or_else(|| FetchError::permanent(format!("connector `{connector}` is not configured: set its credentials in [providers.{connector}]")))?;
            let op = format!("fetch_{}", object.to_ascii_lowercase());
            if !c.has(&op) {
                return Err(FetchError::permanent(format!("connector `{connector}` cannot fetch a {object}: its manifest has no [operations.{op}]")));
            }
            if id.is_empty()
                || !id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'))
            {
                return Err(FetchError::permanent(format!(
                    "`{id}` is not a {connector} record id"
                )));
            }
            let vars = TypedVars::from([("record_id", Value::from(id))]);
            // The vendor refusing the id is final; outages, limits and credentials heal.
            let reply = c.call(&op, &vars).await.map_err(|e| match e.kind {
                crate::connector::ErrorKind::Invalid => FetchError::permanent(e.message),
                _ => FetchError::temporary(e.message),
            })?;
            if !reply.found {
                return Err(FetchError::permanent(format!(
                    "{connector} has no {object} {id} (deleted or merged?)"
                )));
            }
            Ok(record_lead(connector, id, &reply.fields))
        })
    }
}

/// A CRM record's mapped fields as a raw lead, marked with where it came from.
pub fn record_lead(connector: &str, id: &str, fields: &BTreeMap<String, Value>) -> RawLead {
    let mut m = Map::new();
    for (k, v) in fields {
        if RECORD_FIELDS.contains(&k.as_str())
            || v.is_null()
            || v.as_str().is_some_and(|s| s.trim().is_empty())
        {
            continue;
        }
        m.insert(k.clone(), v.clone());
    }
    m.insert("crm".into(), Value::from(connector));
    m.insert("external_id".into(), Value::from(id));
    m.entry("source").or_insert_with(|| Value::from("crm"));
    RawLead(m)
}
