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
        (
            "LEADGATE__WEBHOOKS__PIPEDRIVE__PASSWORD",
            "pipedrive-webhook-secret",
        ),
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
        base64::engine::general_purpose::STANDARD.encode("pd:pipedrive-webhook-secret")
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

// ---- issue #28: erase holds on every path --------------------------------------------------

/// A config with Hunter's domain search (pointing at `hunter_base`) as the only provider:
/// its answer for a domain lists the people there, so it is cached by domain, not email.
fn hunter_config(hunter_base: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, file) = support::config_copy();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            r#"waterfall = ["local_file", "clearbit", "peopledatalabs", "apollo", "hunter"]"#,
            r#"waterfall = ["hunter"]"#,
        )
        .replace(
            r#"api_key = "${HUNTER_API_KEY:-}""#,
            &format!("api_key = \"test_key_hunter\"\nbase_url = \"{hunter_base}\""),
        );
    assert!(text.contains("test_key_hunter") && text.contains(r#"waterfall = ["hunter"]"#));
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// Hunter's domain search for acme.io, as the vendor answers it (two people listed).
async fn hunter_mock() -> wiremock::MockServer {
    use wiremock::matchers::{method, path, query_param};
    let server = wiremock::MockServer::start().await;
    let body = json!({"data": {
        "domain": "acme.io", "organization": "Acme", "pattern": "{first}", "webmail": false,
        "disposable": false, "accept_all": false,
        "emails": [
            {"value": "bo@acme.io", "type": "personal", "confidence": 91, "first_name": "Bo",
             "last_name": "Diaz", "position": "CFO", "seniority": "executive", "department": "finance",
             "sources": [], "verification": {"date": null, "status": null}},
            {"value": "Ada.Gone@acme.io", "type": "personal", "confidence": 97, "first_name": "Ada",
             "last_name": "Lovelace", "position": "VP Sales", "seniority": "executive", "department": "sales",
             "sources": [], "verification": {"date": "2026-10-01", "status": "valid"}}
        ]},
        "meta": {"results": 2, "limit": 10, "offset": 0, "params": {"domain": "acme.io"}}});
    wiremock::Mock::given(method("GET"))
        .and(path("/domain-search"))
        .and(query_param("domain", "acme.io"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    server
}

async fn vendor_calls(server: &wiremock::MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

async fn evaluate(client: &reqwest::Client, d: &Daemon, email: &str) -> reqwest::Response {
    client
        .post(d.url("/v1/evaluate"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap()
}

/// Two daemons on one SQLite file each hold Hunter's answer for acme.io, which lists the
/// person. Erasing them through one drops that answer there at once (its value names the
/// person though its key does not) and on the other within a few seconds (the store's
/// erasure counter), and both refuse to evaluate the person afterwards.
#[tokio::test]
async fn every_process_drops_cached_answers_that_list_an_erased_person() {
    let hunter = hunter_mock().await;
    let (_cfg_dir, cfg) = hunter_config(&hunter.uri());
    let (_dir, db) = temp_db();
    let a = Daemon::start_with_config(&cfg, &db, 1, &[]);
    let b = Daemon::start_with_config(&cfg, &db, 0, &[]);
    let client = reqwest::Client::new();

    assert_eq!(evaluate(&client, &b, "bo@acme.io").await.status(), 200);
    assert_eq!(evaluate(&client, &a, "carl@acme.io").await.status(), 200);
    assert_eq!(vendor_calls(&hunter).await, 2, "one lookup per process");
    assert_eq!(evaluate(&client, &b, "bo@acme.io").await.status(), 200);
    assert_eq!(
        vendor_calls(&hunter).await,
        2,
        "then each answers from its cache"
    );

    let res = client
        .delete(a.url("/v1/leads?email=ada.gone@acme.io"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["cache_entries"].as_u64().unwrap() >= 1,
        "the domain's answer lists the person: {body}"
    );
    assert_eq!(evaluate(&client, &a, "carl@acme.io").await.status(), 200);
    assert_eq!(
        vendor_calls(&hunter).await,
        3,
        "the erasing process asked again"
    );

    // The other process learns of the erasure from the store and drops its answers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert_eq!(evaluate(&client, &b, "bo@acme.io").await.status(), 200);
        if vendor_calls(&hunter).await == 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second process kept its cached answer listing the erased person"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    for d in [&a, &b] {
        let res = evaluate(&client, d, "Ada.Gone@acme.io").await;
        assert_eq!(res.status(), 409);
        assert_eq!(
            res.json::<Value>().await.unwrap()["error"]["code"],
            "suppressed"
        );
    }
}

/// `leadgate run` on a file holding an erased person decides and stores the others, and
/// reports the line as `skipped: suppressed` (stderr, summary and `--out`); `leadgate
/// explain` of the person exits 1 saying why.
#[tokio::test]
async fn run_and_explain_refuse_an_erased_person() {
    let (dir, cfg) = support::config_copy();
    let db = dir.path().join("store.db");
    let url = format!("sqlite://{}", db.display());
    let store = leadgate::store::Store::open(&url).await.unwrap();
    store.erase_person("gone@acme.io").await.unwrap();
    let file = dir.path().join("leads.jsonl");
    std::fs::write(
        &file,
        "{\"email\": \"kept@acme.io\"}\n{\"email\": \" Gone@ACME.io\"}\n{\"email\": \"also@acme.io\"}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let cli = |args: &[&str]| {
        std::process::Command::new(support::BIN)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .env("LEADGATE__STORAGE__URL", &url)
            .output()
            .unwrap()
    };
    let res = cli(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr),
    );
    assert!(res.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("line 2: suppressed"), "{stderr}");
    assert!(stdout.contains("2 leads decided"), "{stdout}");
    assert!(stdout.contains("skipped: suppressed · 1 leads"), "{stdout}");
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], json!({"line": 2, "skipped": "suppressed"}));
    assert_eq!(lines[0]["email"], "kept@acme.io");
    assert_eq!(store.rows_mentioning("gone@acme.io").await.unwrap(), 0);
    assert!(store.rows_mentioning("kept@acme.io").await.unwrap() > 0);

    let res = cli(&["explain", "gone@acme.io"]);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&res.stderr).contains("asked to be erased"),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let res = cli(&["explain", "kept@acme.io"]);
    assert!(res.status.success());
}

/// The list holds HMAC digests under a secret the store made at its first start (one per
/// installation); an unkeyed digest from before migration 0012 still refuses its address,
/// and erasing that address again re-keys it.
#[tokio::test]
async fn suppression_digests_are_keyed_per_installation_and_old_digests_still_refuse() {
    use sha2::Digest;
    use sqlx::Connection;
    let (_d1, db1) = temp_db();
    let (_d2, db2) = temp_db();
    let one = support::open_store(&db1).await;
    let two = support::open_store(&db2).await;
    one.erase_person("ada@acme.io").await.unwrap();
    two.erase_person("ada@acme.io").await.unwrap();
    let keyed = |db: std::path::PathBuf| async move {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let rows: Vec<String> = sqlx::query_scalar("SELECT email_hmac FROM suppressions_keyed")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let legacy: Vec<String> = sqlx::query_scalar("SELECT email_sha256 FROM suppressions")
            .fetch_all(&mut c)
            .await
            .unwrap();
        (rows, legacy, c)
    };
    let plain = format!("{:x}", sha2::Sha256::digest(b"old@acme.io"));
    let (k1, l1, mut c1) = keyed(db1.clone()).await;
    let (k2, _, _) = keyed(db2.clone()).await;
    assert_eq!(k1.len(), 1);
    assert!(l1.is_empty(), "nothing is written unkeyed any more");
    assert_ne!(k1, k2, "two installations key the same address differently");
    assert_ne!(k1[0], format!("{:x}", sha2::Sha256::digest(b"ada@acme.io")));

    // A row as an earlier version wrote it.
    sqlx::query("INSERT INTO suppressions (email_sha256, created_at) VALUES (?, 0)")
        .bind(&plain)
        .execute(&mut c1)
        .await
        .unwrap();
    assert!(one.is_suppressed("Old@acme.io").await.unwrap());
    let normalizer = leadgate::normalize::Normalizer::default();
    let raw = leadgate::lead::RawLead(json!({"email": "old@acme.io"}).as_object().unwrap().clone());
    let lead = normalizer.normalize(&raw).unwrap();
    assert!(matches!(
        one.accept(&lead, &raw, None).await,
        Err(leadgate::store::StoreError::Suppressed)
    ));
    one.erase_person("old@acme.io").await.unwrap();
    let (k1, l1, _) = keyed(db1).await;
    assert_eq!(k1.len(), 2);
    assert!(l1.is_empty(), "the old digest was re-keyed");
    assert!(one.is_suppressed("old@acme.io").await.unwrap());
}
