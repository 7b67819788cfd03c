//! The HubSpot webhook route's verifier and parser (`WebhooksConfig::handle("hubspot", ..)`)
//! on any body. The fuzzer's bytes are the body; the first byte picks how the request is
//! signed, so both the parser behind a valid signature and the signature gate itself get
//! exercised. Invariants: nothing panics; a request not signed with the configured secret
//! (or outside the 5-minute window) is refused as unauthorized before the body is read; what
//! is accepted is only contact fetches, each with an event id and an object id.

#![no_main]

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use leadgate::webhook::{
    HubspotWebhookConfig, Intake, WebhookError, WebhookRequest, WebhooksConfig,
};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &str = "fuzz-client-secret-0123456789";
const URL: &str = "https://gw.example.com/v1/webhooks/hubspot";
const NOW_MS: i64 = 1_700_000_000_000;

/// HubSpot's v3 signature, computed here from its documentation (not leadgate's code), so a
/// bug in leadgate's own signing cannot make the two agree.
fn sign(secret: &str, body: &[u8], timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(b"POST");
    mac.update(URL.as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let config = WebhooksConfig {
        hubspot: Some(HubspotWebhookConfig {
            client_secret: SECRET.into(),
            url: None,
        }),
        ..Default::default()
    };
    // 0..=3: signed with the secret, the timestamp `mode` minutes off (4 and more is stale);
    // odd high bit: signed with another secret; otherwise the raw bytes' own text as header.
    let minutes_off = i64::from(mode & 0x07);
    let timestamp = (NOW_MS - minutes_off * 60_000 - 1).to_string();
    let forged = mode & 0x80 != 0;
    let secret = if forged {
        "another-secret-0123456789"
    } else {
        SECRET
    };
    let signature = if mode & 0x40 != 0 {
        String::from_utf8_lossy(body).into_owned()
    } else {
        sign(secret, body, &timestamp)
    };
    let headers = HashMap::from([
        ("x-hubspot-signature-v3".to_string(), signature.clone()),
        ("x-hubspot-request-timestamp".to_string(), timestamp.clone()),
    ]);
    let request = WebhookRequest {
        method: "POST",
        url: URL.into(),
        headers: &headers,
        body,
        now_ms: NOW_MS,
    };
    let valid = signature == sign(SECRET, body, &timestamp) && minutes_off < 5;
    match config.handle("hubspot", &request) {
        Ok(verified) => {
            assert!(valid, "accepted a request not signed with the secret");
            assert!(verified.reply.is_none());
            for event in &verified.events {
                assert!(!event.event_id.is_empty());
                match &event.intake {
                    Intake::Fetch { object, id } => {
                        assert_eq!(object, "contact");
                        assert!(!id.is_empty());
                    }
                    Intake::Lead(_) => panic!("HubSpot webhooks carry ids only"),
                }
            }
        }
        Err(WebhookError::Unauthorized(_)) => assert!(!valid, "refused a validly signed request"),
        Err(WebhookError::BadPayload(_)) => assert!(valid, "read the body before the signature"),
        Err(e) => panic!("unexpected refusal: {e}"),
    }
});
