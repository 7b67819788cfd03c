//! Polling intake, for teams without webhooks: every `interval`, ask the CRM for leads
//! modified since the cursor (the manifest's `poll_OBJECT` operation: HubSpot search on
//! `lastmodifieddate`, Salesforce SOQL on `LastModifiedDate`), queue each, and move the
//! cursor (kept in the store) to the newest modification seen.
//!
//! Neither misses nor repeats across restarts: the query asks for `>=` the cursor (a change
//! at the cursor's own instant is not lost), and each change is queued under the key
//! `poll:CONNECTOR:RECORD:MODIFIED`, so the store takes one seen before as a duplicate.
//! A change within `echo_window` of leadgate's own write to that record is its echo and is
//! not queued (it would loop). Records are mapped with the connector's `fetch_OBJECT` map.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::body::{text_vars, TypedVars};
use super::fetch::record_lead;
use super::{Crm, PollSpec};
use crate::connector::ConnectorError;
use crate::services::Services;
use crate::store::StoreError;

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollReport {
    pub seen: usize,
    pub queued: usize,
    pub duplicates: usize,
    pub echoes: usize,
    /// Records of people who asked to be erased: not queued.
    pub suppressed: usize,
    pub cursor: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("{0}")]
    Connector(#[from] ConnectorError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Setup(String),
}

/// Polls until `shutdown` turns true.
pub async fn run(
    state: Arc<Services>,
    crm: Arc<Crm>,
    spec: PollSpec,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match poll_once(&state, &crm, &spec, Utc::now()).await {
            Ok(r) if r.queued > 0 => {
                tracing::info!(connector = %spec.connector, queued = r.queued, duplicates = r.duplicates, echoes = r.echoes, suppressed = r.suppressed, "polled the CRM")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(connector = %spec.connector, error = %e, "polling the CRM failed; trying again next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(spec.interval) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One poll: fetch the changes since the cursor, queue them, advance the cursor.
pub async fn poll_once(
    state: &Services,
    crm: &Crm,
    spec: &PollSpec,
    now: DateTime<Utc>,
) -> Result<PollReport, PollError> {
    let id = spec.connector.as_str();
    let c = crm
        .connector(id)
        .ok_or_else(|| PollError::Setup(format!("connector `{id}` is not configured")))?;
    let op = c
        .manifest()
        .operations
        .keys()
        .find(|k| k.starts_with("poll_"))
        .cloned()
        .ok_or_else(|| {
            PollError::Setup(format!("connector `{id}` has no poll_OBJECT operation"))
        })?;
    let object = op.trim_start_matches("poll_").to_string();
    let map = c
        .manifest()
        .operations
        .get(&format!("fetch_{object}"))
        .cloned()
        .ok_or_else(|| {
            PollError::Setup(format!(
                "connector `{id}` has {op} but no fetch_{object} to map its records with"
            ))
        })?;

    let since = match state
        .store
        .poll_cursor(id)
        .await?
        .as_deref()
        .and_then(parse_time)
    {
        Some(t) => t,
        None => {
            let start = spec.start.unwrap_or(now);
            state.store.set_poll_cursor(id, &start.to_rfc3339()).await?;
            start
        }
    };
    let vars = TypedVars::from([
        (
            "since_ms",
            Value::from(since.timestamp_millis().to_string()),
        ),
        (
            "since_iso",
            Value::from(since.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ),
    ]);
    let reply = c.call(&op, &vars).await?;
    let records = match reply.fields.get("records") {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let text = text_vars(&vars);
    let mut report = PollReport {
        seen: records.len(),
        ..PollReport::default()
    };
    let mut newest = since;
    for record in &records {
        let fields = map.map(record, &text).fields;
        let record_id = match fields.get("record_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        let modified = fields.get("modified_at").and_then(value_time);
        if let Some(m) = modified {
            newest = newest.max(m);
            if let Some(wrote) = state.store.outbox_last_write(id, &record_id).await? {
                let gap = (m - wrote).num_milliseconds().unsigned_abs();
                if u128::from(gap) <= spec.echo_window.as_millis() {
                    report.echoes += 1;
                    continue;
                }
            }
        }
        let stamp = modified.map_or_else(|| "-".to_string(), |m| m.timestamp_millis().to_string());
        let key = format!("poll:{id}:{record_id}:{stamp}");
        let raw = record_lead(id, &record_id, &fields);
        let accepted = match state.pipeline.normalize(&raw) {
            Ok(lead) => match state.store.accept(&lead, &raw, Some(&key)).await {
                // The store refuses an erased person in the transaction that would keep them.
                Err(StoreError::Suppressed) => {
                    report.suppressed += 1;
                    continue;
                }
                other => other?,
            },
            Err(invalid) => {
                let identity = format!("crm:{id}:{object}:{record_id}");
                state
                    .store
                    .accept_record(&identity, &raw, &key, Some(&invalid.to_string()))
                    .await?
            }
        };
        if accepted.duplicate {
            report.duplicates += 1;
        } else {
            report.queued += 1;
        }
    }
    if newest > since {
        state
            .store
            .set_poll_cursor(id, &newest.to_rfc3339())
            .await?;
    }
    report.cursor = Some(newest);
    if report.queued > 0 {
        state.queued.notify_waiters();
        metrics::counter!("leadgate_leads_accepted_total").increment(report.queued as u64);
    }
    Ok(report)
}

/// A CRM timestamp: RFC 3339 (HubSpot), `+0000` offsets (Salesforce), or epoch ms.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn value_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => parse_time(s),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn reads_each_crms_timestamps() {
        let want = parse_time("2026-05-01T10:00:00.250Z").unwrap();
        assert_eq!(parse_time("2026-05-01T10:00:00.250+0000"), Some(want));
        assert_eq!(parse_time(&want.timestamp_millis().to_string()), Some(want));
    }
}
