//! Events as a per-person history (issue 25): the events of every arrival and of
//! `POST /v1/events` are kept per lead (migration 0016), deduplicated, and scoring reads the
//! whole history instead of the latest arrival's events alone.
//!
//! This module holds what both backends and the HTTP routes share: the dedupe key and the
//! parsing of a body of events. Storing is in `store/{sqlite,postgres}/events.rs`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::Digest;
use thiserror::Error;

use crate::lead::Event;

/// Most events one request may carry: a larger batch is split by the sender.
pub const MAX_BATCH: usize = 1000;

/// A request's event that cannot be kept, with where it is.
#[derive(Debug, Error, PartialEq)]
#[error("{field}: {message}")]
pub struct BadEvent {
    /// `events[3].at`, `type` ...: the JSON path of the offending value.
    pub field: String,
    pub message: String,
}

/// Events kept for a person: the lead they belong to, and how many were new.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub lead_id: String,
    pub added: u64,
}

/// The key that makes a replayed event the same event: its `id` when the sender gave one,
/// else a digest of its type, time and every other key.
pub fn event_key(event: &Event) -> String {
    id_key(event).unwrap_or_else(|| digest_key(&serde_json::to_vec(event).unwrap_or_default()))
}

/// An event's dedupe key ([`event_key`]) and its JSON body as stored, serialized once: the
/// digest is of the same bytes the body holds.
pub fn key_and_body(event: &Event) -> Result<(String, String), serde_json::Error> {
    let body = serde_json::to_string(event)?;
    let key = id_key(event).unwrap_or_else(|| digest_key(body.as_bytes()));
    Ok((key, body))
}

fn id_key(event: &Event) -> Option<String> {
    let id = match event.props.get("id")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(format!("id:{id}"))
}

/// The props map is ordered (serde_json's preserve_order is off: BTreeMap), so the same
/// event always serializes, and digests, the same.
fn digest_key(body: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(body);
    let mut key = String::with_capacity(7 + 64);
    key.push_str("digest:");
    for b in digest {
        let _ = write!(key, "{b:02x}");
    }
    key
}

/// The events of a request body: one event object, or `{"events": [...]}`. The email of
/// `POST /v1/events` is taken out by the caller first.
pub fn parse_body(body: &Value) -> Result<Vec<Event>, BadEvent> {
    let Value::Object(map) = body else {
        return Err(bad(
            "body",
            "must be a JSON object: one event, or {\"events\": [...]}",
        ));
    };
    match map.get("events") {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(bad("events", "is empty: send at least one event"));
            }
            if items.len() > MAX_BATCH {
                return Err(bad(
                    "events",
                    &format!(
                        "has {} events; send at most {MAX_BATCH} per request",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_one(v, &format!("events[{i}]")))
                .collect()
        }
        Some(_) => Err(bad("events", "must be an array of events")),
        None => {
            let mut one = map.clone();
            // The person's address names whose event it is; it is not part of the event.
            one.remove("email");
            parse_one(&Value::Object(one), "").map(|e| vec![e])
        }
    }
}

fn parse_one(v: &Value, at: &str) -> Result<Event, BadEvent> {
    let path = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    let Value::Object(map) = v else {
        return Err(bad(at, "must be an object with `type` and `at`"));
    };
    match map.get("type") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => return Err(bad(&path("type"), "must be a non-empty string")),
        None => return Err(bad(&path("type"), "is missing")),
    }
    match map.get("at") {
        Some(Value::String(s)) => {
            if chrono::DateTime::parse_from_rfc3339(s).is_err() {
                return Err(bad(
                    &path("at"),
                    &format!("`{s}` is not an RFC 3339 time such as 2026-11-23T10:00:00Z"),
                ));
            }
        }
        Some(_) => return Err(bad(&path("at"), "must be an RFC 3339 time string")),
        None => return Err(bad(&path("at"), "is missing")),
    }
    serde_json::from_value::<Event>(v.clone())
        .map_err(|e| bad(if at.is_empty() { "event" } else { at }, &e.to_string()))
}

fn bad(field: &str, message: &str) -> BadEvent {
    BadEvent {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// The history with `own` (this arrival's events) added, each event once, oldest first.
pub fn merge(history: Vec<Event>, own: &[Event]) -> Vec<Event> {
    let mut seen: std::collections::HashSet<String> = history.iter().map(event_key).collect();
    let mut all = history;
    for e in own {
        if seen.insert(event_key(e)) {
            all.push(e.clone());
        }
    }
    all.sort_by_key(|e| e.at);
    all
}

/// `lead` with its person's whole history as its events: this arrival's events are kept
/// first (so a crash after this loses none), then the stored history is read back.
///
/// Events older than their type's `retention` (see [`crate::score::Scorer::retention`]) are dropped, not
/// compacted: by then their decayed points are near zero for any sane half-life, and a
/// compacted sum could not be re-scored under changed rules.
pub async fn with_history(
    store: &crate::store::Store,
    scorer: &crate::score::Scorer,
    lead_id: &str,
    mut lead: crate::lead::Lead,
    now: DateTime<Utc>,
) -> Result<crate::lead::Lead, crate::store::StoreError> {
    store.append_events(lead_id, &lead.events).await?;
    let history = store.person_events(lead_id).await?;
    let mut expired = Vec::new();
    let mut all = merge(history, &lead.events);
    all.retain(|e| {
        let keep = !is_expired(scorer, e, now);
        if !keep {
            expired.push(event_key(e));
        }
        keep
    });
    if !expired.is_empty() {
        store.drop_events(lead_id, &expired).await?;
    }
    lead.events = all;
    Ok(lead)
}

/// Whether `event` is past its type's retention at `now`.
pub fn is_expired(scorer: &crate::score::Scorer, event: &Event, now: DateTime<Utc>) -> bool {
    scorer
        .retention(&event.kind)
        .is_some_and(|r| chrono::Duration::from_std(r).is_ok_and(|r| event.at + r < now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_batch_names_the_bad_event_by_index() {
        let body = json!({"events": [
            {"type": "page_view", "at": "2026-11-23T10:00:00Z"},
            {"type": "page_view", "at": "yesterday"}
        ]});
        let err = parse_body(&body).unwrap_err();
        assert_eq!(err.field, "events[1].at");
        assert!(err.message.contains("yesterday"));
    }

    #[test]
    fn one_event_without_a_type_is_refused() {
        let err =
            parse_body(&json!({"email": "a@b.co", "at": "2026-11-23T10:00:00Z"})).unwrap_err();
        assert_eq!(err.field, "type");
    }

    #[test]
    fn the_same_event_keys_the_same_and_an_id_wins() {
        let a = parse_body(
            &json!({"type": "page_view", "at": "2026-11-23T10:00:00Z", "path": "/pricing"}),
        )
        .unwrap();
        let b = parse_body(
            &json!({"path": "/pricing", "at": "2026-11-23T10:00:00Z", "type": "page_view"}),
        )
        .unwrap();
        assert_eq!(event_key(&a[0]), event_key(&b[0]));
        let c = parse_body(
            &json!({"type": "page_view", "at": "2026-11-23T10:00:00Z", "path": "/docs"}),
        )
        .unwrap();
        assert_ne!(event_key(&a[0]), event_key(&c[0]));
        let d =
            parse_body(&json!({"type": "x", "at": "2026-11-23T10:00:00Z", "id": "ev-1"})).unwrap();
        assert_eq!(event_key(&d[0]), "id:ev-1");
        for e in [&a[0], &c[0], &d[0]] {
            let (key, body) = key_and_body(e).unwrap();
            assert_eq!(key, event_key(e));
            assert_eq!(body, serde_json::to_string(e).unwrap());
        }
    }

    #[test]
    fn merge_keeps_each_event_once_oldest_first() {
        let old =
            parse_body(&json!({"type": "demo_request", "at": "2026-11-20T10:00:00Z"})).unwrap();
        let new = parse_body(&json!({"events": [
            {"type": "page_view", "at": "2026-11-23T10:00:00Z"},
            {"type": "demo_request", "at": "2026-11-20T10:00:00Z"}
        ]}))
        .unwrap();
        let all = merge(old, &new);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].kind, "demo_request");
    }

    #[test]
    fn retention_takes_the_longest_rule_of_a_type_and_expires_older_events() {
        use crate::rules::RuleFile;
        let rules = r#"
[[event]]
id = "short"
type = "page_view"
points = 1
retention = "10d"

[[event]]
id = "long"
type = "page_view"
points = 1
retention = "30d"

[[event]]
id = "forever"
type = "webinar_attended"
points = 1
"#;
        let scorer =
            crate::score::Scorer::from_file(&RuleFile::from_text("scoring.toml", rules)).unwrap();
        assert_eq!(
            scorer.retention("page_view"),
            Some(std::time::Duration::from_secs(30 * 86400))
        );
        assert_eq!(scorer.retention("webinar_attended"), None);
        let now: DateTime<Utc> = "2026-12-07T00:00:00Z".parse().unwrap();
        let old = parse_body(&json!({"events": [
            {"type": "page_view", "at": "2026-11-01T00:00:00Z"},
            {"type": "page_view", "at": "2026-11-20T00:00:00Z"},
            {"type": "webinar_attended", "at": "2020-01-01T00:00:00Z"}
        ]}))
        .unwrap();
        let expired: Vec<bool> = old.iter().map(|e| is_expired(&scorer, e, now)).collect();
        assert_eq!(expired, [true, false, false]);
    }

    #[test]
    fn a_retention_that_is_not_a_duration_is_a_config_error() {
        let rules = "[[event]]\nid = \"x\"\ntype = \"page_view\"\npoints = 1\nretention = \"half a year\"\n";
        let err = crate::score::Scorer::from_file(&crate::rules::RuleFile::from_text(
            "scoring.toml",
            rules,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("retention"), "{err}");
    }
}
