//! CRM webhooks against the real daemon: signatures computed here, independently of
//! leadgate's code; bad or stale signatures get 401 and queue nothing; redeliveries are
//! queued once.

mod support;

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{temp_db, Daemon};

const SECRET: &str = "hs-client-secret";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LEADGATE__WEBHOOKS__HUBSPOT__CLIENT_SECRET", SECRET),
        ("LEADGATE__WEBHOOKS__PIPEDRIVE__USERNAME", "pd"),
        (
            "LEADGATE__WEBHOOKS__PIPEDRIVE__PASSWORD",
            "pd-pass-0123456789",
        ),
        (
            "LEADGATE__WEBHOOKS__SALESFORCE__ORGANIZATION_ID",
            "00D000000000001AAA",
        ),
        (
            "LEADGATE__WEBHOOKS__SALESFORCE__TOKEN",
            "sf-token-0123456789",
        ),
    ]
}

fn hubspot_signature(url: &str, body: &str, ts: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("POST{url}{body}{ts}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

async fn depth(db: &Path) -> HashMap<String, i64> {
    let store = leadgate::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store.queue_depth().await.unwrap()
}

#[tokio::test]
async fn hubspot_signatures_are_verified_and_redeliveries_queued_once() {
    let (_dir, db) = temp_db();
    let env = env();
    // Intake only, so the queue can be counted as the webhooks left it.
    let d = Daemon::start(&db, 0, &env);
    let client = reqwest::Client::new();
    let url = d.url("/v1/webhooks/hubspot");
    let body = r#"[{"eventId":100,"subscriptionId":1,"portalId":62515,"appId":1,"occurredAt":1711234567890,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":512,"changeFlag":"CREATED","changeSource":"CRM_UI"},
                   {"eventId":101,"subscriptionId":2,"portalId":62515,"appId":1,"occurredAt":1711234567999,"subscriptionType":"deal.creation","attemptNumber":0,"objectId":9,"changeSource":"CRM_UI"}]"#;
    let post = |sig: String, ts: String, body: &'static str| {
        client
            .post(&url)
            .header("content-type", "application/json")
            .header("X-HubSpot-Signature-v3", sig)
            .header("X-HubSpot-Request-Timestamp", ts)
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp_millis().to_string();

    let res = post(hubspot_signature(&url, body, &now), now.clone(), body)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(
        answer,
        json!({"queued": 1, "duplicates": 0, "failed": 0, "suppressed": 0, "ignored": 1})
    );

    // HubSpot redelivers the same event: acknowledged, not queued again.
    let res = post(hubspot_signature(&url, body, &now), now.clone(), body)
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["duplicates"], 1);

    // Tampered body, wrong secret, stale timestamp: 401, nothing queued.
    let tampered = r#"[{"eventId":102,"subscriptionType":"contact.creation","objectId":513}]"#;
    let res = post(hubspot_signature(&url, body, &now), now.clone(), tampered)
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let old = (chrono::Utc::now().timestamp_millis() - 301_000).to_string();
    let res = post(hubspot_signature(&url, tampered, &old), old, tampered)
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client.post(&url).body(tampered).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    assert_eq!(depth(&db).await.get("queued"), Some(&1));
}

#[tokio::test]
async fn pipedrive_person_webhooks_need_basic_auth_and_are_decided() {
    let (_dir, db) = temp_db();
    let env = env();
    let d = Daemon::start(&db, 2, &env);
    let client = reqwest::Client::new();
    let payload = json!({
        "meta": {"action": "create", "entity": "person", "entity_id": "746", "id": "6f1c-event", "change_source": "app", "version": "2.0"},
        "data": {"id": 746, "first_name": "Jane", "last_name": "Smith", "emails": [{"value": "jane@acme.io", "primary": true}]},
        "previous": null
    });
    let res = client
        .post(d.url("/v1/webhooks/pipedrive"))
        .basic_auth("pd", Some("wrong"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(d.url("/v1/webhooks/pipedrive"))
        .basic_auth("pd", Some("pd-pass-0123456789"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["queued"], 1);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let depth = depth(&db).await;
        if depth.get("done").copied().unwrap_or(0) + depth.get("review").copied().unwrap_or(0) == 1
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never decided: {depth:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn salesforce_outbound_messages_are_acknowledged_in_soap() {
    let (_dir, db) = temp_db();
    let env = env();
    let d = Daemon::start(&db, 0, &env);
    let client = reqwest::Client::new();
    let envelope = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">
  <OrganizationId>00D000000000001AAA</OrganizationId><ActionId>04k000000000001AAA</ActionId>
  <Notification><Id>04l000000000001AAA</Id>
   <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
    <sf:Id>00Q000000000001AAA</sf:Id><sf:Email>ken@acme.io</sf:Email><sf:LastName>Ito</sf:LastName>
   </sObject></Notification>
 </notifications></soapenv:Body></soapenv:Envelope>"#;
    let res = client
        .post(d.url("/v1/webhooks/salesforce?token=nope"))
        .body(envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(d.url("/v1/webhooks/salesforce?token=sf-token-0123456789"))
        .body(envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<Ack>true</Ack>"));
    assert_eq!(depth(&db).await.get("queued"), Some(&1));
}

#[tokio::test]
async fn an_unconfigured_connector_is_not_found() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 0, &[]);
    let res = reqwest::Client::new()
        .post(d.url("/v1/webhooks/hubspot"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// Under load the signature check holds: 300 concurrent deliveries, a third of them signed
/// correctly, a third with a tampered body, a third redeliveries of signed ones. Every signed
/// event is queued exactly once, every tampered delivery gets 401 and queues nothing.
#[tokio::test]
async fn hubspot_signatures_hold_under_concurrent_load() {
    let (_dir, db) = temp_db();
    let mut env = env();
    // 300 deliveries at once from one address is past the per-address webhook limit, which
    // a_webhook_flood_is_limited_per_address tests; here every one must reach the check.
    env.push(("LEADGATE__SERVER__WEBHOOK_RATE_PER_SECOND", "0"));
    let d = Daemon::start(&db, 0, &env);
    let client = reqwest::Client::new();
    let url = d.url("/v1/webhooks/hubspot");
    let now = chrono::Utc::now().timestamp_millis().to_string();
    let body_for = |i: usize| {
        format!(
            r#"[{{"eventId":{},"subscriptionId":1,"portalId":62515,"appId":1,"occurredAt":1711234567890,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":{},"changeFlag":"CREATED","changeSource":"CRM_UI"}}]"#,
            5000 + i,
            9000 + i
        )
    };
    // (body sent, body signed, expected status)
    let deliveries: Vec<(String, String, u16)> = (0..300)
        .map(|i| match i % 3 {
            0 => (body_for(i), body_for(i), 200),
            // A redelivery of the event signed at i - 1.
            1 => (body_for(i - 1), body_for(i - 1), 200),
            _ => (body_for(i), body_for(i - 2), 401),
        })
        .collect();
    let statuses = futures::future::join_all(deliveries.iter().map(|(sent, signed, _)| {
        let (client, url, now) = (&client, &url, &now);
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .header(
                    "X-HubSpot-Signature-v3",
                    hubspot_signature(url, signed, now),
                )
                .header("X-HubSpot-Request-Timestamp", now.as_str())
                .body(sent.clone())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    }))
    .await;
    for (i, ((_, _, expected), got)) in deliveries.iter().zip(&statuses).enumerate() {
        assert_eq!(got, expected, "delivery {i}");
    }
    // 100 distinct signed events, each queued once; nothing from the 100 tampered ones.
    let queued: i64 = depth(&db).await.values().sum();
    assert_eq!(queued, 100);
}

/// A flood of webhooks to random connector names from one address: the daemon answers 404
/// then 429, `/metrics` gains one `unknown` series and no name from a path, and the daemon
/// still serves.
#[tokio::test]
async fn a_webhook_flood_is_limited_per_address() {
    let (_dir, db) = temp_db();
    let mut env = env();
    env.push(("LEADGATE__SERVER__WEBHOOK_RATE_PER_SECOND", "5"));
    env.push(("LEADGATE__SERVER__WEBHOOK_BURST", "10"));
    let d = Daemon::start(&db, 0, &env);
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = client
            .post(d.url(&format!("/v1/webhooks/flood-{i}%0Aforged")))
            .header("content-type", "application/json")
            .body("[]")
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 404), "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 20,
        "{statuses:?}"
    );
    let metrics = d.metrics().await;
    assert!(metrics.contains("leadgate_webhooks_refused_total{connector=\"unknown\"}"));
    assert!(!metrics.contains("flood-"), "{metrics}");
    let health = client.get(d.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
