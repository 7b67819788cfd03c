//! The Pipedrive webhook v2 verifier and parser (`WebhooksConfig::handle("pipedrive", ..)`)
//! on any body. The fuzzer's bytes are the body; the first byte picks the Basic credentials
//! (right, wrong, empty `Og==`, or none). Invariants: nothing panics; only the configured
//! credentials get past the gate, whatever the body; an accepted event carries the vendor's
//! event id, and a lead from a person payload has an email and `crm = pipedrive`.

#![no_main]

use std::collections::HashMap;

use base64::Engine;
use leadgate::webhook::{
    Intake, PipedriveWebhookConfig, WebhookError, WebhookRequest, WebhooksConfig,
};
use libfuzzer_sys::fuzz_target;

const USER: &str = "pipedrive";
const PASSWORD: &str = "fuzz-basic-password-0123456789";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let config = WebhooksConfig {
        pipedrive: Some(PipedriveWebhookConfig {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
        ..Default::default()
    };
    let basic = |user_password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_password)
        )
    };
    let (authorization, credentials_ok) = match mode % 4 {
        0 | 1 => (Some(basic(&format!("{USER}:{PASSWORD}"))), true),
        2 => (Some(basic(&format!("{USER}:{PASSWORD}x"))), false),
        // `Og==` is ":" — an empty user and password.
        _ if mode & 0x80 != 0 => (Some("Basic Og==".to_string()), false),
        _ => (None, false),
    };
    let headers: HashMap<String, String> = authorization
        .map(|a| ("authorization".to_string(), a))
        .into_iter()
        .collect();
    let request = WebhookRequest {
        method: "POST",
        url: "https://gw.example.com/v1/webhooks/pipedrive".into(),
        headers: &headers,
        body,
        now_ms: 0,
    };
    match config.handle("pipedrive", &request) {
        Ok(verified) => {
            assert!(credentials_ok, "accepted wrong Basic credentials");
            assert!(verified.events.len() + verified.ignored == 1);
            for event in &verified.events {
                assert!(!event.event_id.is_empty());
                match &event.intake {
                    Intake::Lead(raw) => {
                        assert_eq!(raw.0.get("crm").and_then(|v| v.as_str()), Some("pipedrive"));
                        assert!(raw.0.get("email").is_some_and(|e| e.is_string()));
                    }
                    Intake::Fetch { object, .. } => {
                        assert!(object == "person" || object == "lead", "{object}")
                    }
                }
            }
        }
        Err(WebhookError::Unauthorized(_)) => {}
        Err(WebhookError::BadPayload(_)) => {
            assert!(credentials_ok, "read the body before the credentials")
        }
        Err(e) => panic!("unexpected refusal: {e}"),
    }
});
