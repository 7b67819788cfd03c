//! The console's API (issue 24) against a real daemon on 127.0.0.1 with a temp SQLite file:
//! the leads list and its cursor, the review queue worked to delivery, overrides, stats, and
//! the bad input each refuses without changing anything.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};

const ADMIN: &str = "admin-token-for-the-console";
const VIEWER: &str = "viewer-token-for-the-console";

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

async fn send(
    client: &reqwest::Client,
    d: &Daemon,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client
        .request(method.parse().unwrap(), d.url(path))
        .header("authorization", auth(ADMIN));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post_lead(client: &reqwest::Client, d: &Daemon, lead: Value) -> String {
    let (status, body) = send(client, d, "POST", "/v1/leads", Some(lead)).await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_string()
}

fn authed_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", auth(ADMIN).parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Waits until the lead's decisions number `n` (a resolution or a re-arrival recorded).
async fn wait_for_decisions(client: &reqwest::Client, d: &Daemon, id: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = send(client, d, "GET", &format!("/v1/leads/{id}"), None).await;
        if body["history"].as_array().map_or(0, Vec::len) >= n
            && body["status"] != "queued"
            && body["status"] != "processing"
        {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "lead {id} never had {n} decisions: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_console_api_lists_works_the_review_queue_overrides_and_refuses_bad_input() {
    let (_dir, db) = temp_db();
    scenario(&format!("sqlite://{}", db.display())).await;
}

#[cfg(feature = "postgres-tests")]
#[tokio::test]
async fn the_console_api_does_the_same_on_postgresql() {
    scenario(&support::fresh_postgres_db().await).await;
}

async fn scenario(url: &str) {
    let tokens = format!("{ADMIN},{VIEWER}");
    let d = Daemon::start_with_store(
        url,
        2,
        &[
            ("LEADGATE__SERVER__API_TOKENS", &tokens),
            ("LEADGATE__SERVER__PII_TOKENS", ADMIN),
        ],
    );
    let client = authed_client();
    let student = post_lead(
        &client,
        &d,
        json!({"email": "sam@uni-example.edu", "title": "Student"}),
    )
    .await;
    let ops = post_lead(
        &client,
        &d,
        json!({"email": "ops@acme.io", "title": "RevOps Manager"}),
    )
    .await;
    let other = post_lead(
        &client,
        &d,
        json!({"email": "kim@globex.io", "title": "VP Sales"}),
    )
    .await;
    wait_for_status(&client, &d, &student, &["review"]).await;
    for id in [&ops, &other] {
        wait_for_status(&client, &d, id, &["done", "review"]).await;
    }

    // The list: newest first, full emails for a PII token, masked for another.
    let (status, page) = send(&client, &d, "GET", "/v1/leads", None).await;
    assert_eq!(status, 200, "{page}");
    let rows = page["leads"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let row = |rows: &[Value], id: &str| rows.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(row(rows, &student)["email"], "sam@uni-example.edu");
    let times: Vec<&str> = rows
        .iter()
        .map(|r| r["decided_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let masked: Value = reqwest::Client::new()
        .get(d.url("/v1/leads"))
        .header("authorization", auth(VIEWER))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        row(masked["leads"].as_array().unwrap(), &student)["email"],
        "s***@uni-example.edu"
    );
    let (_, review_only) = send(
        &client,
        &d,
        "GET",
        "/v1/leads?status=review&route=students",
        None,
    )
    .await;
    assert_eq!(
        review_only["leads"].as_array().unwrap().len(),
        1,
        "{review_only}"
    );
    assert_eq!(review_only["leads"][0]["id"], student.as_str());
    let (_, by_q) = send(&client, &d, "GET", "/v1/leads?q=ACME", None).await;
    assert_eq!(by_q["leads"][0]["id"], ops.as_str());
    assert_eq!(by_q["leads"].as_array().unwrap().len(), 1);

    // Keyset paging: two pages of one and two, no row twice.
    let (_, first) = send(&client, &d, "GET", "/v1/leads?limit=1", None).await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a full page has a cursor")
        .to_string();
    let (status, second) = send(
        &client,
        &d,
        "GET",
        &format!("/v1/leads?limit=5&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let second_ids: Vec<&Value> = second["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert_eq!(second_ids.len(), 2);
    assert!(!second_ids.contains(&&first["leads"][0]["id"]));
    assert!(second["next_cursor"].is_null());

    // Bad filters: named, 400.
    for (path, field) in [
        ("/v1/leads?grade=Z", "grade"),
        ("/v1/leads?status=lost", "status"),
        ("/v1/leads?route=nowhere", "route"),
        ("/v1/leads?since=yesterday", "since"),
        ("/v1/leads?limit=0", "limit"),
        ("/v1/leads?colour=red", "colour"),
        ("/v1/leads?cursor=%21%21garbled", "cursor"),
        (
            &format!("/v1/leads?grade=hot&cursor={cursor}") as &str,
            "cursor",
        ),
        ("/v1/stats?bucket=hour", "bucket"),
    ] {
        let (status, body) = send(&client, &d, "GET", path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
    let (_, stale) = send(
        &client,
        &d,
        "GET",
        &format!("/v1/leads?grade=hot&cursor={cursor}"),
        None,
    )
    .await;
    assert!(
        stale["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stale"),
        "{stale}"
    );

    // The review queue: the student, claimed by Ann; Bob cannot resolve it.
    let (_, queue) = send(&client, &d, "GET", "/v1/review", None).await;
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{queue}");
    assert_eq!(items[0]["lead_id"], student.as_str());
    assert!(
        items[0]["reason"].as_str().unwrap().contains("student"),
        "{queue}"
    );
    let claim = format!("/v1/review/{student}/claim");
    let resolve = format!("/v1/review/{student}/resolve");
    let (status, body) = send(&client, &d, "POST", &claim, Some(json!({"by": "ann"}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(&client, &d, "POST", &claim, Some(json!({"by": "bob"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &resolve,
        Some(json!({"action": "assign", "owner": "41629779", "reason": "real buyer", "by": "bob"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("ann"),
        "{body}"
    );
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &resolve,
        Some(json!({"action": "teleport", "reason": "x", "by": "ann"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("action")),
        "{body}"
    );
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &resolve,
        Some(json!({"action": "assign", "reason": "x", "by": "ann"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("owner")),
        "{body}"
    );
    let store = leadgate::store::Store::open(url).await.unwrap();
    let before = store.decision_count().await.unwrap();
    assert_eq!(before, 3, "refused resolutions decided nothing");

    let (status, body) = send(&client, &d, "POST", &resolve, Some(json!({"action": "assign", "owner": "41629779", "reason": "a real buyer after all", "by": "ann"}))).await;
    assert_eq!(status, 200, "{body}");
    let resolved = wait_for_decisions(&client, &d, &student, 2).await;
    assert_eq!(resolved["status"], "done", "{resolved}");
    assert_eq!(resolved["route"]["action"], "assign");
    assert_eq!(resolved["route"]["owner"], "41629779");
    assert!(resolved["route"]["reason"]
        .as_str()
        .unwrap()
        .contains("review resolved by ann"));
    let (_, queue) = send(&client, &d, "GET", "/v1/review", None).await;
    assert_eq!(queue["items"].as_array().unwrap().len(), 0, "{queue}");
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &resolve,
        Some(json!({"action": "disqualify", "reason": "again", "by": "ann"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already resolved by ann"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.decision_count().await.unwrap(),
        4,
        "delivered exactly once"
    );

    // An override: in the lead's record, wins over the next automatic decision, then cleared.
    let over = format!("/v1/leads/{ops}/override");
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &over,
        Some(json!({"grade": "Q", "reason": "x", "by": "cy"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("grade")),
        "{body}"
    );
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &over,
        Some(json!({"route": "assign:", "reason": "x", "by": "cy"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (400, json!("route")),
        "{body}"
    );
    let (status, body) = send(&client, &d, "POST", &over, Some(json!({"grade": "hot", "route": "assign:41629781", "reason": "strategic account", "by": "cy"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["override"]["by"], "cy");
    let (_, lead) = send(&client, &d, "GET", &format!("/v1/leads/{ops}"), None).await;
    assert_eq!(lead["override"]["grade"], "hot", "{lead}");
    assert!(lead["override"]["replaced"]["grade"].is_string());
    post_lead(
        &client,
        &d,
        json!({"email": "ops@acme.io", "title": "RevOps Manager"}),
    )
    .await;
    let again = wait_for_decisions(&client, &d, &ops, 2).await;
    assert_eq!(again["grade"], "hot", "{again}");
    assert_eq!(again["route"]["owner"], "41629781");
    assert_eq!(again["route"]["rule"], "override");
    assert!(again["route"]["reason"]
        .as_str()
        .unwrap()
        .contains("human override by cy"));
    let (status, _) = send(&client, &d, "DELETE", &over, Some(json!({"by": "cy"}))).await;
    assert_eq!(status, 200);
    let (status, body) = send(&client, &d, "DELETE", &over, Some(json!({"by": "cy"}))).await;
    assert_eq!(status, 409, "nothing left to clear: {body}");
    let labels = store.override_labels().await.unwrap();
    assert!(
        labels.is_empty(),
        "a cleared override is no label: {labels:?}"
    );

    // An erased person cannot be overridden; nothing is written.
    let (status, _) = send(&client, &d, "DELETE", "/v1/leads?email=kim@globex.io", None).await;
    assert_eq!(status, 200);
    let (status, body) = send(
        &client,
        &d,
        "POST",
        &format!("/v1/leads/{other}/override"),
        Some(json!({"grade": "hot", "reason": "x", "by": "cy"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(store.overrides(&other).await.unwrap().is_empty());

    // Stats: what the charts draw.
    let (status, stats) = send(
        &client,
        &d,
        "GET",
        "/v1/stats?since=2020-01-01&bucket=day",
        None,
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    let graded: i64 = stats["by_grade"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["leads"].as_i64().unwrap())
        .sum();
    assert!(graded >= 4, "{stats}");
    assert!(
        !stats["by_provider"].as_array().unwrap().is_empty(),
        "{stats}"
    );
}
