//! Erasure (GDPR / CCPA): `DELETE /v1/leads?email=` removes the person from every table that
//! holds lead data and suppresses the address, so a later API call or webhook is refused.

mod support;

use base64::Engine;
use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};

#[tokio::test]
async fn erasing_a_person_removes_every_trace_and_suppresses_later_arrivals() {
    let (_dir, db) = temp_db();
    let env = [
        ("LEADGATE__WEBHOOKS__PIPEDRIVE__USERNAME", "pd"),
        ("LEADGATE__WEBHOOKS__PIPEDRIVE__PASSWORD", "pw"),
    ];
    let d = Daemon::start(&db, 2, &env);
    let client = reqwest::Client::new();

    // Two arrivals of the person, and a neighbour who must be left alone.
    let mut ids = Vec::new();
    for (email, key) in [
        ("Ada.Erase@acme.io", "k1"),
        ("ada.erase@ACME.io", "k2"),
        ("keep.me@acme.io", "k3"),
    ] {
        let res = client
            .post(d.url("/v1/leads"))
            .header("Idempotency-Key", key)
            .json(&json!({"email": email, "title": "CTO"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        wait_for_status(&client, &d, id, &["done", "review"]).await;
    }
    let res = client
        .post(d.url("/v1/outcomes"))
        .json(&json!({"email": "ada.erase@acme.io", "converted": true}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    let res = client
        .delete(d.url("/v1/leads?email=ADA.ERASE@acme.io"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["erased"]["leads"], 1, "{body}");
    assert_eq!(body["erased"]["rows"]["jobs"], 2, "{body}");
    assert_eq!(body["erased"]["rows"]["decisions"], 2, "{body}");
    assert_eq!(body["erased"]["rows"]["outcomes"], 1, "{body}");

    let store = leadgate::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(store.rows_mentioning("ada.erase@acme.io").await.unwrap(), 0);
    assert!(
        store.rows_mentioning("keep.me@acme.io").await.unwrap() > 0,
        "the neighbour is kept"
    );
    assert_eq!(
        client
            .get(d.url(&format!("/v1/leads/{}", ids[0])))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // A later arrival is refused through the API and ignored through a webhook.
    let res = client
        .post(d.url("/v1/leads"))
        .json(&json!({"email": "ada.erase@acme.io"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "suppressed"
    );
    let hook = json!({"meta": {"action": "create", "entity": "person", "entity_id": "9", "id": "ev-1"},
                      "data": {"id": 9, "emails": [{"value": "ada.erase@acme.io", "primary": true}]}});
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("pd:pw")
    );
    let res = client
        .post(d.url("/v1/webhooks/pipedrive"))
        .header("authorization", auth)
        .json(&hook)
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["suppressed"], 1, "{answer}");
    assert_eq!(answer["queued"], 0, "{answer}");
    assert_eq!(store.rows_mentioning("ada.erase@acme.io").await.unwrap(), 0);

    // The suppression list keeps a hash, not the address.
    assert!(store.is_suppressed(" Ada.Erase@Acme.io ").await.unwrap());
}

#[tokio::test]
async fn erasure_needs_an_email() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 0, &[]);
    let client = reqwest::Client::new();
    let res = client.delete(d.url("/v1/leads")).send().await.unwrap();
    assert_eq!(res.status(), 422);
    let res = client
        .delete(d.url("/v1/leads?email=not-an-email"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

/// A burst of arrivals shares one intake transaction (group commit): the erased person's
/// arrivals in it are refused, their neighbours in the same batch are kept, and nothing of
/// the erased person is written.
#[tokio::test]
async fn an_erased_person_is_refused_inside_a_batch_and_the_neighbours_are_kept() {
    let (_dir, db) = temp_db();
    let store = leadgate::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    store.erase_person("gone@acme.io").await.unwrap();
    let normalizer = leadgate::normalize::Normalizer::default();
    let arrivals: Vec<(String, leadgate::lead::RawLead)> = (0..40)
        .map(|i| {
            let email = if i % 4 == 0 {
                " Gone@ACME.io ".to_string()
            } else {
                format!("kept{i}@acme.io")
            };
            let raw = json!({"email": email, "title": "CTO"});
            (
                format!("k{i}"),
                leadgate::lead::RawLead(raw.as_object().unwrap().clone()),
            )
        })
        .collect();
    let answers = futures::future::join_all(arrivals.iter().map(|(key, raw)| {
        let lead = normalizer.normalize(raw).unwrap();
        let store = &store;
        async move { store.accept(&lead, raw, Some(key)).await }
    }))
    .await;
    for (i, a) in answers.iter().enumerate() {
        match (i % 4 == 0, a) {
            (true, Err(leadgate::store::StoreError::Suppressed)) => {}
            (false, Ok(accepted)) => assert!(!accepted.duplicate),
            (erased, other) => panic!("arrival {i} (erased: {erased}): {other:?}"),
        }
    }
    assert_eq!(store.rows_mentioning("gone@acme.io").await.unwrap(), 0);
    assert_eq!(store.rows_mentioning("kept1@acme.io").await.unwrap(), 2);
}
