//! Events as a per-person history (issue 25): events accumulate across arrivals and
//! `POST /v1/events`, a replay is kept once, bad events are refused with where they are, and
//! erasure deletes the history.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};

/// Waits until lead `id` has `n` decided arrivals, and returns its view.
async fn decided(client: &reqwest::Client, d: &Daemon, id: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = wait_for_status(client, d, id, &["done", "review"]).await;
        let done = body["arrivals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|j| j["status"] == "done" || j["status"] == "review")
                    .count()
            })
            .unwrap_or(0);
        if done >= n {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "lead {id} never had {n} decided arrivals: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn events_accumulate_across_arrivals_and_the_score_does_not_fall() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 1, &[]);
    let client = reqwest::Client::new();
    let now = chrono::Utc::now();
    let at = |hours: i64| (now - chrono::Duration::hours(hours)).to_rfc3339();
    let person = json!({"email": "ada@acme-events.io", "title": "VP Sales", "budget": "50k+", "timeline": "now"});
    let mut first = person.clone();
    first["events"] = json!([{"type": "form_submit", "form": "demo-request", "at": at(2)}]);
    let res = client
        .post(d.url("/v1/leads"))
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let one = decided(&client, &d, &id, 1).await;
    let mut second = person.clone();
    second["events"] = json!([{"type": "page_view", "path": "/pricing", "at": at(1)}]);
    let res = client
        .post(d.url("/v1/leads"))
        .json(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let two = decided(&client, &d, &id, 2).await;
    let rules: Vec<&str> = two["scores"]["lead"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"demo-request"),
        "the first call's demo points are kept: {rules:?}"
    );
    assert!(rules.contains(&"pricing-page"), "{rules:?}");
    assert!(
        two["score"].as_f64().unwrap() > one["score"].as_f64().unwrap(),
        "the score must not fall: {} then {}",
        one["score"],
        two["score"]
    );
    assert_eq!(two["grade"], "hot", "{}", two["score"]);
}

#[tokio::test]
async fn posted_events_are_kept_once_refused_with_their_index_and_erased_with_the_person() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 1, &[]);
    let client = reqwest::Client::new();
    let email = "grace@events-erase.io";
    let res = client
        .post(d.url("/v1/leads"))
        .json(&json!({"email": email, "title": "CTO"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_status(&client, &d, &id, &["done", "review"]).await;

    let batch = json!({"email": email, "events": [
        {"type": "page_view", "path": "/pricing", "at": "2026-12-01T10:00:00Z"},
        {"type": "webinar_attended", "id": "web-7", "at": "2026-12-02T10:00:00Z"}
    ]});
    let body: Value = client
        .post(d.url("/v1/events"))
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["stored"], 2, "{body}");
    // A replay, and the webinar again by id with a different body: nothing new.
    let body: Value = client
        .post(d.url("/v1/events"))
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["stored"].clone(), body["duplicates"].clone()),
        (json!(0), json!(2)),
        "{body}"
    );
    let res = client
        .post(d.url(&format!("/v1/leads/{id}/events")))
        .json(&json!({"type": "webinar_attended", "id": "web-7", "at": "2026-12-03T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["stored"], 0);

    let res = client
        .post(d.url("/v1/events"))
        .json(&json!({"email": email, "events": [{"type": "page_view", "at": "2026-12-01T10:00:00Z"}, {"type": "page_view", "at": "soon"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["field"], "events[1].at", "{err}");
    let res = client
        .post(d.url("/v1/events"))
        .json(&json!({"email": "nobody@events-erase.io", "type": "page_view", "at": "2026-12-01T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let store = support::open_store(&db).await;
    assert_eq!(
        store.person_events(&id).await.unwrap().len(),
        2,
        "the refused batch kept nothing"
    );
    let res = client
        .delete(d.url(&format!("/v1/leads?email={email}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(store.person_events(&id).await.unwrap().is_empty());
    let res = client
        .post(d.url("/v1/events"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "an erased person's events are refused");
}

/// The PostgreSQL twin keeps, dedupes and drops events as SQLite does.
#[cfg(feature = "postgres-tests")]
#[tokio::test]
async fn postgres_keeps_each_event_once_and_drops_expired_ones() {
    let store = leadgate::store::Store::open(&support::fresh_postgres_db().await)
        .await
        .expect("open the PostgreSQL store");
    let events: Vec<leadgate::lead::Event> = serde_json::from_value(json!([
        {"type": "page_view", "path": "/pricing", "at": "2026-12-01T10:00:00Z"},
        {"type": "webinar_attended", "id": "web-7", "at": "2026-12-02T10:00:00Z"}
    ]))
    .unwrap();
    assert_eq!(store.append_events("lead-pg", &events).await.unwrap(), 2);
    assert_eq!(store.append_events("lead-pg", &events).await.unwrap(), 0);
    let kept = store.person_events("lead-pg").await.unwrap();
    assert_eq!(kept, events, "oldest first, as sent");
    let key = leadgate::events::event_key(&events[0]);
    assert_eq!(store.drop_events("lead-pg", &[key]).await.unwrap(), 1);
    assert_eq!(store.person_events("lead-pg").await.unwrap().len(), 1);
    assert!(store
        .person_events("someone-else")
        .await
        .unwrap()
        .is_empty());
}

/// A routing rule may read the event list itself: the arrival path must then give rules the
/// whole history (the scorer alone does not read it, so the list is built for the router).
#[tokio::test]
async fn a_routing_rule_reads_the_stored_event_history_on_arrival() {
    let routing = r#"
[[rule]]
id = "webinar-attendees"
when = "lead.events.exists(e, e.type == 'webinar_attended')"
review = { reason = "attended a webinar", queue = "events" }

[fallback]
review = { reason = "the rest", queue = "ops" }
"#;
    let (_cfg, config) = support::shipped_config(routing, "");
    let (_dir, db) = temp_db();
    let d = Daemon::start_with_config(&config, &db, 1, &[]);
    let client = reqwest::Client::new();
    let email = "lin@events-routing.io";
    let post = |body: Value| {
        let client = client.clone();
        let url = d.url("/v1/leads");
        async move {
            let res = client.post(url).json(&body).send().await.unwrap();
            assert_eq!(res.status(), 202);
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let id = post(json!({"email": email})).await;
    let first = decided(&client, &d, &id, 1).await;
    assert_eq!(first["route"]["rule"], "fallback", "{}", first["route"]);
    // The event comes on its own; the next arrival carries none, so only the stored history
    // can match the rule.
    let res = client
        .post(d.url("/v1/events"))
        .json(&json!({"email": email, "events": [
            {"type": "webinar_attended", "id": "web-1", "at": chrono::Utc::now().to_rfc3339()}
        ]}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    post(json!({"email": email})).await;
    let second = decided(&client, &d, &id, 2).await;
    assert_eq!(
        second["route"]["rule"], "webinar-attendees",
        "{}",
        second["route"]
    );
}
