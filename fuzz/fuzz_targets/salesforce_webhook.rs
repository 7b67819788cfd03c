//! The Salesforce Outbound Messaging verifier and SOAP parser
//! (`WebhooksConfig::handle("salesforce", ..)`) on any body. The fuzzer's bytes are the
//! envelope; the first byte picks the endpoint token (right, wrong or absent). Invariants:
//! nothing panics; a wrong or missing token is unauthorized whatever the body; an accepted
//! message answers the SOAP Ack, and every event is a lead (with its record id as
//! `external_id` and `crm = salesforce`) or a fetch of a Lead.

#![no_main]

use std::collections::HashMap;

use leadgate::webhook::{
    Intake, SalesforceWebhookConfig, WebhookError, WebhookRequest, WebhooksConfig,
};
use libfuzzer_sys::fuzz_target;

const ORG: &str = "00D000000000001AAA";
const TOKEN: &str = "fuzz-endpoint-token-0123456789";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let config = WebhooksConfig {
        salesforce: Some(SalesforceWebhookConfig {
            organization_id: ORG.into(),
            token: TOKEN.into(),
        }),
        ..Default::default()
    };
    let (url, token_ok) = match mode % 4 {
        0 | 1 => (
            format!("https://gw.example.com/v1/webhooks/salesforce?token={TOKEN}"),
            true,
        ),
        2 => (
            "https://gw.example.com/v1/webhooks/salesforce?token=guess".to_string(),
            false,
        ),
        _ => (
            "https://gw.example.com/v1/webhooks/salesforce".to_string(),
            false,
        ),
    };
    let headers = HashMap::new();
    let request = WebhookRequest {
        method: "POST",
        url,
        headers: &headers,
        body,
        now_ms: 0,
    };
    match config.handle("salesforce", &request) {
        Ok(verified) => {
            assert!(token_ok, "accepted a request without the endpoint token");
            let (content_type, ack) = verified.reply.expect("Salesforce waits for an Ack");
            assert!(content_type.starts_with("text/xml"));
            assert!(ack.contains("<Ack>true</Ack>"));
            for event in &verified.events {
                match &event.intake {
                    Intake::Lead(raw) => {
                        assert_eq!(
                            raw.0.get("crm").and_then(|v| v.as_str()),
                            Some("salesforce")
                        );
                        assert!(raw.0.contains_key("external_id"));
                        assert!(raw.0.contains_key("email") || raw.0.contains_key("website"));
                    }
                    Intake::Fetch { object, .. } => assert_eq!(object, "Lead"),
                }
            }
        }
        Err(WebhookError::Unauthorized(_)) => {}
        Err(WebhookError::BadPayload(_)) => assert!(token_ok, "read the body before the token"),
        Err(e) => panic!("unexpected refusal: {e}"),
    }
});
