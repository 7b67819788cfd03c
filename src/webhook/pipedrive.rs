//! Pipedrive webhooks v2: no signature; authenticated by the HTTP Basic credentials set on
//! the webhook (plus an unguessable URL). The payload carries the person or lead.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{constant_time_eq, Intake, Verified, WebhookError, WebhookEvent, WebhookRequest};
use crate::lead::RawLead;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipedriveWebhookConfig {
    /// `http_auth_user` given when the webhook was created.
    pub username: String,
    /// `http_auth_password` (`${PIPEDRIVE_WEBHOOK_PASSWORD}`).
    pub password: String,
}

pub(super) fn handle(
    cfg: &PipedriveWebhookConfig,
    req: &WebhookRequest,
) -> Result<Verified, WebhookError> {
    if cfg.username.is_empty() || cfg.password.len() < super::MIN_SECRET_LEN {
        return Err(WebhookError::Unauthorized(
            "no usable username and password are configured".into(),
        ));
    }
    let presented = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .ok_or_else(|| WebhookError::Unauthorized("no HTTP Basic credentials".into()))?;
    let expected = format!("{}:{}", cfg.username, cfg.password);
    if !constant_time_eq(&presented, expected.as_bytes()) {
        return Err(WebhookError::Unauthorized(
            "wrong HTTP Basic credentials".into(),
        ));
    }
    let body: Value = serde_json::from_slice(req.body)
        .map_err(|e| WebhookError::BadPayload(format!("not JSON: {e}")))?;
    let meta = body
        .get("meta")
        .ok_or_else(|| WebhookError::BadPayload("no `meta` object".into()))?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("");
    let event_id = text("id").to_string();
    if event_id.is_empty() {
        return Err(WebhookError::BadPayload("meta.id is missing".into()));
    }
    let entity = text("entity");
    let action = text("action");
    let mut out = Verified {
        events: Vec::new(),
        ignored: 0,
        reply: None,
    };
    // Deletes carry no lead; changes made through the API are most likely our own writes.
    let relevant = matches!(entity, "person" | "lead")
        && (action == "create" || (action == "change" && text("change_source") != "api"));
    if !relevant {
        out.ignored = 1;
        return Ok(out);
    }
    let intake = match body.get("data") {
        Some(Value::Object(data)) if entity == "person" => match person_lead(data) {
            Some(lead) => Intake::Lead(lead),
            None => Intake::Fetch {
                object: entity.into(),
                id: text("entity_id").into(),
            },
        },
        _ => Intake::Fetch {
            object: entity.into(),
            id: text("entity_id").into(),
        },
    };
    out.events.push(WebhookEvent { event_id, intake });
    Ok(out)
}

/// A v2 person → canonical lead fields; `None` when it has no email to decide on.
fn person_lead(data: &Map<String, Value>) -> Option<RawLead> {
    let emails = data.get("emails").and_then(Value::as_array)?;
    let email = emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)?;
    let mut m = Map::new();
    m.insert("email".into(), Value::from(email));
    for (from, to) in [("first_name", "first_name"), ("last_name", "last_name")] {
        if let Some(v) = data.get(from).and_then(Value::as_str) {
            m.insert(to.into(), Value::from(v));
        }
    }
    if let Some(phone) = data
        .get("phones")
        .and_then(Value::as_array)
        .and_then(|p| p.first())
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
    {
        m.insert("phone".into(), Value::from(phone));
    }
    if let Some(id) = data.get("id") {
        m.insert(
            "external_id".into(),
            Value::from(id.to_string().trim_matches('"')),
        );
    }
    m.insert("crm".into(), Value::from("pipedrive"));
    m.insert("source".into(), Value::from("crm"));
    Some(RawLead(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg() -> PipedriveWebhookConfig {
        PipedriveWebhookConfig {
            username: "pd".into(),
            password: "s3cret-0123456789ab".into(),
        }
    }

    const BODY: &str = r#"{"meta":{"action":"create","entity":"person","entity_id":"746","id":"0b5f-uuid","change_source":"app","version":"2.0"},
        "data":{"id":746,"first_name":"Jane","last_name":"Smith","emails":[{"value":"jane@acme.io","primary":true,"label":"work"}]},"previous":null}"#;

    fn run(auth: &str) -> Result<Verified, WebhookError> {
        let headers = HashMap::from([("authorization".to_string(), auth.to_string())]);
        handle(
            &cfg(),
            &WebhookRequest {
                method: "POST",
                url: String::new(),
                headers: &headers,
                body: BODY.as_bytes(),
                now_ms: 0,
            },
        )
    }

    #[test]
    fn basic_auth_gates_the_payload_which_carries_the_person() {
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("pd:s3cret-0123456789ab")
        );
        let v = run(&good).unwrap();
        assert_eq!(v.events[0].event_id, "0b5f-uuid");
        let Intake::Lead(lead) = &v.events[0].intake else {
            panic!("expected a lead")
        };
        assert_eq!(lead.0["email"], "jane@acme.io");
        assert_eq!(lead.0["external_id"], "746");
        let bad = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("pd:wrong")
        );
        assert!(matches!(run(&bad), Err(WebhookError::Unauthorized(_))));
        assert!(matches!(run(""), Err(WebhookError::Unauthorized(_))));
    }

    #[test]
    fn empty_configured_credentials_never_match_an_empty_basic_auth() {
        let empty = PipedriveWebhookConfig {
            username: String::new(),
            password: String::new(),
        };
        let headers = HashMap::from([("authorization".to_string(), "Basic Og==".to_string())]);
        let req = WebhookRequest {
            method: "POST",
            url: String::new(),
            headers: &headers,
            body: BODY.as_bytes(),
            now_ms: 0,
        };
        assert!(matches!(
            handle(&empty, &req),
            Err(WebhookError::Unauthorized(_))
        ));
    }
}
