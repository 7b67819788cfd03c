//! The HTTP API, in process (router tests without a socket) and as a real daemon (restart,
//! kill -9, SIGTERM). Every request goes to 127.0.0.1.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use leadgate::pipeline::Pipeline;
use leadgate::server::{app, AppState};
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};
use tower::ServiceExt;

async fn state(db: &Path, tokens: Vec<String>) -> Arc<AppState> {
    state_with_edge(db, tokens, Default::default()).await
}

async fn state_with_edge(
    db: &Path,
    tokens: Vec<String>,
    edge: leadgate::server::Edge,
) -> Arc<AppState> {
    let settings = Settings::load(Path::new("config/leadgate.toml")).unwrap();
    let services = Services::new(
        Pipeline::build(&settings).unwrap(),
        Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap(),
    );
    services
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Arc::new(AppState {
        services: Arc::new(services),
        dry_run_state: Default::default(),
        api_tokens: tokens,
        pii_tokens: vec![],
        body_limit: 4096,
        webhooks: Default::default(),
        edge,
    })
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app(state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn bad_requests_get_json_4xx_errors_that_name_the_problem() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let (status, body) = call(&s, "POST", "/v1/leads", "{not json", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_json");

    let (status, body) = call(&s, "POST", "/v1/leads", r#"{"first_name": "Ann"}"#, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "invalid_lead");
    assert_eq!(body["error"]["field"], "email");

    let (status, body) = call(&s, "POST", "/v1/leads", r#"{"email": 42}"#, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "email");

    let (status, _) = call(&s, "POST", "/v1/leads", "[1,2]", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let huge = json!({"email": "a@acme.io", "note": "x".repeat(10_000)}).to_string();
    let (status, body) = call(&s, "POST", "/v1/leads", &huge, &[]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");

    let (status, body) = call(&s, "GET", "/v1/leads/nope", "", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");

    // Nothing was queued by any of these.
    assert!(s.store.queue_depth().await.unwrap().is_empty());
}

#[tokio::test]
async fn idempotency_key_and_same_person_give_one_lead_record() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let lead = r#"{"email": " Ada@Acme.io ", "title": "VP Sales"}"#;
    let (status, first) = call(&s, "POST", "/v1/leads", lead, &[("idempotency-key", "k-1")]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first["status"], "queued");
    let (_, retry) = call(&s, "POST", "/v1/leads", lead, &[("idempotency-key", "k-1")]).await;
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(
        retry["job_id"], first["job_id"],
        "a retry must not queue a second job"
    );

    // The same person again (other case, new key): same lead id, a second arrival.
    let (_, again) = call(
        &s,
        "POST",
        "/v1/leads",
        r#"{"email": "ada@ACME.io"}"#,
        &[("idempotency-key", "k-2")],
    )
    .await;
    assert_eq!(again["id"], first["id"]);
    assert_ne!(again["job_id"], first["job_id"]);
    let (_, view) = call(
        &s,
        "GET",
        &format!("/v1/leads/{}", first["id"].as_str().unwrap()),
        "",
        &[],
    )
    .await;
    assert_eq!(view["arrivals"].as_array().unwrap().len(), 2);
    assert_eq!(s.store.queue_depth().await.unwrap()["queued"], 2);
}

#[tokio::test]
async fn evaluate_returns_the_full_decision_and_changes_nothing() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let lead = json!({"email": "cto@acme.io", "title": "CTO", "events": [
        {"type": "form_submit", "at": chrono::Utc::now().to_rfc3339(), "form": "demo-request"}]});
    let (status, d) = call(&s, "POST", "/v1/evaluate", &lead.to_string(), &[]).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    assert_eq!(
        d["enrichment"]["fields"]["company.industry"]["provider"],
        "local_file"
    );
    assert!(d["score"].as_i64().unwrap() > 0);
    assert!(!d["factors"].as_array().unwrap().is_empty());
    assert!(d["route"]["rule"].is_string());
    let sum: f64 = d["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["points"].as_f64().unwrap())
        .sum();
    assert_eq!(
        sum.round().clamp(0.0, 100.0) as i64,
        d["score"].as_i64().unwrap()
    );
    assert!(s.store.queue_depth().await.unwrap().is_empty());
    assert!(s.store.rotation_positions().await.unwrap().is_empty());
}

#[tokio::test]
async fn api_tokens_guard_the_v1_routes_but_not_the_probes() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec!["s3cret".into()]).await;
    let (status, _) = call(&s, "POST", "/v1/evaluate", r#"{"email":"a@acme.io"}"#, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &s,
        "POST",
        "/v1/evaluate",
        r#"{"email":"a@acme.io"}"#,
        &[("authorization", "Bearer s3cret")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Intake too, and a refused lead is not queued.
    let (status, _) = call(&s, "POST", "/v1/leads", r#"{"email":"a@acme.io"}"#, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(s.store.queue_depth().await.unwrap().is_empty());
    let (status, _) = call(&s, "GET", "/healthz", "", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_daemon_processes_queued_leads_and_serves_probes_and_metrics() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 2, &[]);
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(d.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client.get(d.url("/readyz")).send().await.unwrap().status(),
        200
    );
    let res = client
        .post(d.url("/v1/leads"))
        .json(&json!({"email": "ops@acme.io", "title": "RevOps Manager"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_for_status(&client, &d, &id, &["done", "review"]).await;
    assert_eq!(done["email"], "ops@acme.io");
    assert!(done["route"]["rule"].is_string(), "{done}");
    let metrics = d.metrics().await;
    assert!(
        metrics.contains("leadgate_leads_accepted_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_lead_accepted_before_kill_9_is_processed_after_restart() {
    let (_dir, db) = temp_db();
    // Intake only: nothing is processed before the kill.
    let d = Daemon::start(&db, 0, &[]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..20 {
        let res = client
            .post(d.url("/v1/leads"))
            .json(&json!({"email": format!("p{i}@acme.io")}))
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
    d.kill9();

    let d = Daemon::start(&db, 4, &[]);
    for id in &ids {
        let v = wait_for_status(&client, &d, id, &["done", "review"]).await;
        assert_eq!(
            v["history"].as_array().unwrap().len(),
            1,
            "processed exactly once: {v}"
        );
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly_losing_nothing() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 2, &[]);
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..50 {
        let res = client
            .post(d.url("/v1/leads"))
            .json(&json!({"email": format!("t{i}@acme.io")}))
            .send()
            .await
            .unwrap();
        ids.push(
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        d.terminate(Duration::from_secs(20)),
        "serve must exit 0 on SIGTERM"
    );

    // Whatever was not finished before the drain is still queued and finishes now.
    let d = Daemon::start(&db, 2, &[]);
    for id in &ids {
        wait_for_status(&client, &d, id, &["done", "review"]).await;
    }
}

#[test]
fn serve_refuses_a_public_address_without_tokens() {
    let (_dir, db) = temp_db();
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env(
            "LEADGATE__STORAGE__URL",
            format!("sqlite://{}", db.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api_tokens"));
}

/// The value of one unlabelled series in a Prometheus text page.
fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{page}"))
}

#[tokio::test]
async fn metrics_show_how_many_leads_each_intake_transaction_wrote() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 0, &[]);
    let client = reqwest::Client::new();
    let posts = (0..40).map(|i| {
        let (client, url) = (client.clone(), d.url("/v1/leads"));
        async move {
            let res = client
                .post(url)
                .json(&json!({"email": format!("p{i}@acme.io")}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 202);
        }
    });
    futures::future::join_all(posts).await;
    let page = d.metrics().await;
    // Every accepted lead was written in exactly one batch, and every batch was timed.
    assert_eq!(series(&page, "leadgate_intake_batch_leads_sum"), 40.0);
    let batches = series(&page, "leadgate_intake_batch_leads_count");
    assert!((1.0..=40.0).contains(&batches), "{batches} batches");
    assert_eq!(
        series(&page, "leadgate_intake_batch_seconds_count"),
        batches
    );
    assert!(series(&page, "leadgate_intake_batch_seconds_sum") > 0.0);
    assert!(
        page.contains("# HELP leadgate_intake_batch_leads"),
        "{page}"
    );
}

/// One request as given (no Content-Type added), with its status and JSON body.
async fn send(state: &Arc<AppState>, req: Request<Body>) -> (StatusCode, Value) {
    let res = app(state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn post(uri: &str, content_type: Option<&str>) -> axum::http::request::Builder {
    let mut b = Request::builder().method("POST").uri(uri);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b
}

#[tokio::test]
async fn json_routes_refuse_a_body_that_is_not_declared_json_with_415() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let lead = r#"{"email": "ann@acme.io"}"#;
    for uri in ["/v1/leads", "/v1/evaluate", "/v1/outcomes"] {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let req = post(uri, ct).body(Body::from(lead)).unwrap();
            let (status, body) = send(&s, req).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri} {ct:?}");
            assert_eq!(body["error"]["code"], "unsupported_media_type");
        }
    }
    let pause = r#"{"reason": "holiday"}"#;
    let req = post("/v1/pools/p/members/o/pause", Some("text/plain"))
        .body(Body::from(pause))
        .unwrap();
    assert_eq!(send(&s, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(s.store.queue_depth().await.unwrap().is_empty());
    // Declared JSON (with a charset) is served.
    let req = post("/v1/leads", Some("application/json; charset=utf-8"))
        .body(Body::from(lead))
        .unwrap();
    assert_eq!(send(&s, req).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn without_tokens_a_foreign_host_or_origin_is_refused() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let lead = r#"{"email": "ann@acme.io"}"#;
    for (header, value) in [
        ("host", "attacker.example"),
        ("host", "attacker.example:8080"),
        ("origin", "http://attacker.example"),
        ("origin", "null"),
    ] {
        let req = post("/v1/leads", Some("application/json"))
            .header(header, value)
            .body(Body::from(lead))
            .unwrap();
        let (status, body) = send(&s, req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header}: {value}");
        assert_eq!(body["error"]["code"], "forbidden");
        // Pausing a pool member from a foreign page is refused too.
        let req = post("/v1/pools/p/members/o/pause", None)
            .header(header, value)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&s, req).await.0, StatusCode::FORBIDDEN, "{header}");
    }
    assert!(s.store.queue_depth().await.unwrap().is_empty());
    let req = post("/v1/leads", Some("application/json"))
        .header("host", "127.0.0.1:8080")
        .header("origin", "http://localhost:8080")
        .body(Body::from(lead))
        .unwrap();
    assert_eq!(send(&s, req).await.0, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_reused_key_with_a_different_lead_is_a_conflict_naming_both() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let ann = r#"{"email": "ann@acme.io"}"#;
    let bob = r#"{"email": "bob@acme.io"}"#;
    let (status, first) = call(&s, "POST", "/v1/leads", ann, &[("idempotency-key", "k-9")]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = call(&s, "POST", "/v1/leads", bob, &[("idempotency-key", "k-9")]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "idempotency_conflict");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("k-9"), "{message}");
    assert!(message.contains(first["id"].as_str().unwrap()), "{message}");
    // The same body again is still a duplicate with the same id; spacing and case do not count.
    let again = r#"{"email": " ANN@acme.io "}"#;
    let (status, dup) = call(
        &s,
        "POST",
        "/v1/leads",
        again,
        &[("idempotency-key", "k-9")],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(dup["duplicate"], true);
    assert_eq!(dup["id"], first["id"]);

    // external_id is a key as well.
    let x1 = r#"{"email": "cy@acme.io", "external_id": "crm-1"}"#;
    let x2 = r#"{"email": "di@acme.io", "external_id": "crm-1"}"#;
    assert_eq!(
        call(&s, "POST", "/v1/leads", x1, &[]).await.0,
        StatusCode::ACCEPTED
    );
    let (status, body) = call(&s, "POST", "/v1/leads", x2, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["field"], "external_id");
    assert!(body["error"]["message"].as_str().unwrap().contains("crm-1"));
    // Ann once and Cy once: nothing from Bob or Di was queued.
    assert_eq!(s.store.queue_depth().await.unwrap()["queued"], 2);
}

#[tokio::test]
async fn an_api_lead_cannot_queue_a_crm_fetch_job() {
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let lead = r#"{"email": "ann@acme.io", "_fetch": {"connector": "hubspot", "object": "contact", "id": "1"}}"#;
    let (status, body) = call(&s, "POST", "/v1/leads", lead, &[]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "_fetch");
    assert!(s.store.queue_depth().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_is_408() {
    let (_dir, db) = temp_db();
    let s = state_with_edge(
        &db,
        vec![],
        leadgate::server::Edge {
            body_read_timeout: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await;
    use futures::StreamExt;
    // Half a lead, then nothing.
    let stalled = futures::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"email\": "))
    })
    .chain(futures::stream::pending());
    let req = post("/v1/leads", Some("application/json"))
        .body(Body::from_stream(stalled))
        .unwrap();
    let (status, body) = send(&s, req).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body["error"]["code"], "request_timeout");
}

#[tokio::test]
async fn refusals_are_counted_by_route_template_and_code_and_webhook_names_are_not_labels() {
    let handle = leadgate::server::prometheus();
    let (_dir, db) = temp_db();
    let s = state(&db, vec![]).await;
    let (status, _) = call(&s, "GET", "/v1/leads/no-such-lead-42", "", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&s, "GET", "/no/such/route-77", "", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for i in 0..5 {
        let (status, _) = call(
            &s,
            "POST",
            &format!("/v1/webhooks/forged-{i}%0Aline"),
            "[]",
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let page = handle.render();
    let refused = |route: &str, code: &str| {
        page.lines().any(|l| {
            l.starts_with("leadgate_requests_refused_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("code=\"{code}\""))
        })
    };
    assert!(refused("/v1/leads/{id}", "not_found"), "{page}");
    assert!(refused("unmatched", "not_found"), "{page}");
    assert!(refused("/v1/webhooks/{connector}", "not_found"), "{page}");
    assert!(page.contains("leadgate_webhooks_refused_total{connector=\"unknown\"}"));
    assert!(
        !page.contains("forged"),
        "a path name became a label:\n{page}"
    );
    assert!(!page.contains("no-such-lead"), "{page}");
}

#[tokio::test]
async fn a_webhook_flood_from_one_address_is_limited() {
    let (_dir, db) = temp_db();
    // One a second, three back to back.
    let s = state_with_edge(&db, vec![], leadgate::server::Edge::new(None, 1, 3)).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(call(&s, "POST", "/v1/webhooks/nope", "[]", &[]).await.0);
    }
    assert_eq!(&statuses[..3], [StatusCode::NOT_FOUND; 3]);
    assert!(
        statuses[3..].contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    // Other routes are not limited by it.
    assert_eq!(call(&s, "GET", "/healthz", "", &[]).await.0, StatusCode::OK);
}
