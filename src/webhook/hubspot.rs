//! HubSpot app webhooks: a JSON array of events signed with X-HubSpot-Signature-v3
//! (base64 HMAC-SHA256 over method + URL + body + timestamp, 5-minute window).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::{constant_time_eq, Intake, Verified, WebhookError, WebhookEvent, WebhookRequest};

/// HubSpot's own SDKs reject requests older than exactly this.
pub const MAX_AGE_MS: i64 = 300_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotWebhookConfig {
    /// The app's client secret (`${HUBSPOT_CLIENT_SECRET}`).
    pub client_secret: String,
    /// The public URL HubSpot calls; needed behind a proxy that rewrites the host or path.
    #[serde(default)]
    pub url: Option<String>,
}

/// `base64(HMAC-SHA256(secret, method + url + body + timestamp))`.
pub fn signature_v3(secret: &str, method: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(method.to_ascii_uppercase().as_bytes());
    mac.update(url.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) fn handle(
    cfg: &HubspotWebhookConfig,
    req: &WebhookRequest,
) -> Result<Verified, WebhookError> {
    let unauthorized = |why: &str| WebhookError::Unauthorized(why.to_string());
    // Settings refuse a short secret at load; this keeps a hand-built config just as safe.
    if cfg.client_secret.len() < super::MIN_SECRET_LEN {
        return Err(unauthorized("no usable client_secret is configured"));
    }
    let signature = req
        .header("x-hubspot-signature-v3")
        .ok_or_else(|| unauthorized("no X-HubSpot-Signature-v3 header"))?;
    let timestamp = req
        .header("x-hubspot-request-timestamp")
        .ok_or_else(|| unauthorized("no X-HubSpot-Request-Timestamp header"))?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| unauthorized("X-HubSpot-Request-Timestamp is not milliseconds"))?;
    // `abs_diff`: a timestamp near i64::MIN or MAX must not overflow the subtraction.
    if req.now_ms.abs_diff(ts) > MAX_AGE_MS.unsigned_abs() {
        return Err(unauthorized(
            "the request timestamp is more than 5 minutes away from now",
        ));
    }
    let url = cfg.url.as_deref().unwrap_or(&req.url);
    let expected = signature_v3(&cfg.client_secret, req.method, url, req.body, timestamp);
    if !constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()) {
        return Err(unauthorized(
            "X-HubSpot-Signature-v3 does not match the body",
        ));
    }
    let events: Vec<Value> = serde_json::from_slice(req.body)
        .map_err(|e| WebhookError::BadPayload(format!("expected a JSON array of events: {e}")))?;
    let mut out = Verified {
        events: Vec::new(),
        ignored: 0,
        reply: None,
    };
    for e in events {
        let kind = e
            .get("subscriptionType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let source = e.get("changeSource").and_then(Value::as_str).unwrap_or("");
        // Property changes made through the API are most likely leadgate's own write-back:
        // re-deciding on them would loop.
        let relevant = kind == "contact.creation"
            || (kind == "contact.propertyChange" && !matches!(source, "INTEGRATION" | "API"));
        let (Some(event_id), Some(object_id)) =
            (json_id(e.get("eventId")), json_id(e.get("objectId")))
        else {
            out.ignored += 1;
            continue;
        };
        if !relevant {
            out.ignored += 1;
            continue;
        }
        out.events.push(WebhookEvent {
            event_id,
            intake: Intake::Fetch {
                object: "contact".into(),
                id: object_id,
            },
        });
    }
    Ok(out)
}

/// HubSpot sends ids as numbers; accept strings too.
fn json_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    #[test]
    fn matches_the_reference_v3_vector() {
        let sig = signature_v3(
            SECRET,
            "POST",
            "https://gateway.example.com/hubspot/webhook",
            BODY.as_bytes(),
            "1700000000000",
        );
        assert_eq!(sig, "oHRd51QMufRrIPy1ekGc0TmhyeD1tmlw0Lm4+8OhtWQ=");
    }

    fn request<'a>(
        headers: &'a HashMap<String, String>,
        body: &'a [u8],
        now_ms: i64,
    ) -> WebhookRequest<'a> {
        WebhookRequest {
            method: "POST",
            url: "https://gateway.example.com/hubspot/webhook".into(),
            headers,
            body,
            now_ms,
        }
    }

    fn cfg() -> HubspotWebhookConfig {
        HubspotWebhookConfig {
            client_secret: SECRET.into(),
            url: None,
        }
    }

    #[test]
    fn an_extreme_timestamp_is_stale_not_an_overflow() {
        let cfg = HubspotWebhookConfig {
            client_secret: SECRET.into(),
            url: None,
        };
        for ts in [i64::MIN, i64::MAX] {
            let headers = HashMap::from([
                ("x-hubspot-signature-v3".to_string(), "x".to_string()),
                ("x-hubspot-request-timestamp".to_string(), ts.to_string()),
            ]);
            let req = WebhookRequest {
                method: "POST",
                url: "https://x/y".into(),
                headers: &headers,
                body: BODY.as_bytes(),
                now_ms: if ts == i64::MIN { i64::MAX } else { i64::MIN },
            };
            let err = handle(&cfg, &req).unwrap_err();
            assert!(err.to_string().contains("5 minutes"), "{err}");
        }
    }

    #[test]
    fn a_valid_signature_yields_a_fetch_of_the_contact() {
        let headers = HashMap::from([
            (
                "x-hubspot-signature-v3".to_string(),
                "oHRd51QMufRrIPy1ekGc0TmhyeD1tmlw0Lm4+8OhtWQ=".to_string(),
            ),
            (
                "x-hubspot-request-timestamp".to_string(),
                "1700000000000".to_string(),
            ),
        ]);
        let v = handle(
            &cfg(),
            &request(&headers, BODY.as_bytes(), 1_700_000_060_000),
        )
        .unwrap();
        assert_eq!(
            v.events,
            vec![WebhookEvent {
                event_id: "1".into(),
                intake: Intake::Fetch {
                    object: "contact".into(),
                    id: "123".into()
                }
            }]
        );
    }

    #[test]
    fn tampered_or_stale_requests_are_refused() {
        let headers = HashMap::from([
            (
                "x-hubspot-signature-v3".to_string(),
                "oHRd51QMufRrIPy1ekGc0TmhyeD1tmlw0Lm4+8OhtWQ=".to_string(),
            ),
            (
                "x-hubspot-request-timestamp".to_string(),
                "1700000000000".to_string(),
            ),
        ]);
        let tampered = BODY.replace("123", "124");
        assert!(matches!(
            handle(
                &cfg(),
                &request(&headers, tampered.as_bytes(), 1_700_000_000_000)
            ),
            Err(WebhookError::Unauthorized(_))
        ));
        let stale = handle(
            &cfg(),
            &request(
                &headers,
                BODY.as_bytes(),
                1_700_000_000_000 + MAX_AGE_MS + 1,
            ),
        );
        assert!(matches!(stale, Err(WebhookError::Unauthorized(m)) if m.contains("5 minutes")));
    }
}
