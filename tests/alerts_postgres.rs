//! Alert dedupe across replicas on PostgreSQL (issue 25 item 4): two dispatchers on one
//! store, told of the same hot lead at once, send one Slack message; concurrent claims of
//! one (alert, key) grant exactly one. Built only with `--features postgres-tests`.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use leadgate::alert::dispatcher::{Dispatcher, Outcome};
use leadgate::alert::{AlertSet, GradeChange};
use leadgate::store::Store;
use support::fresh_postgres_db;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn two_replicas_send_one_alert_for_the_same_lead() {
    let url = fresh_postgres_db().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/T/B/X"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let set = Arc::new(
        AlertSet::from_text(
            "alerts.toml",
            &format!(
                "[[alert]]\nname = \"hot-leads\"\non = \"lead_hot\"\nto = \"slack\"\nurl = \"{}/services/T/B/X\"\n",
                server.uri()
            ),
            &HashMap::new(),
        )
        .unwrap(),
    );
    let a = Dispatcher::new(set.clone(), Store::open(&url).await.unwrap());
    let b = Dispatcher::new(set.clone(), Store::open(&url).await.unwrap());
    let change = GradeChange {
        lead_id: "01a25098-0000-7000-8000-000000000001".into(),
        previous_grade: Some("warm".into()),
        grade: "hot".into(),
        score: 91,
        factors: vec![],
    };
    let (x, y) = tokio::join!(
        a.grade_changed(&change, None),
        b.grade_changed(&change, None)
    );
    let mut outcomes = vec![x[0].1, y[0].1];
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Deduplicated, Outcome::Sent]);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_claims_grant_one_per_window() {
    let store = Store::open(&fresh_postgres_db().await).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    let claims = futures::future::join_all(
        (0..16).map(|_| store.claim_alert("providers", "clearbit", now, hour)),
    )
    .await;
    assert_eq!(claims.iter().filter(|c| *c.as_ref().unwrap()).count(), 1);
    // Within the window: refused. After it: granted again.
    assert!(!store
        .claim_alert("providers", "clearbit", now + hour - 1, hour)
        .await
        .unwrap());
    assert!(store
        .claim_alert("providers", "clearbit", now + hour, hour)
        .await
        .unwrap());
    // A release gives back only the claim it made.
    store
        .release_alert("providers", "clearbit", now)
        .await
        .unwrap();
    assert!(!store
        .claim_alert("providers", "clearbit", now + hour + 1, hour)
        .await
        .unwrap());
    store
        .release_alert("providers", "clearbit", now + hour)
        .await
        .unwrap();
    assert!(store
        .claim_alert("providers", "clearbit", now + hour + 1, hour)
        .await
        .unwrap());
}
