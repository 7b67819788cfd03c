//! One process owns the workers of a SQLite file (issue #28): a second `leadgate serve` on
//! the same file — an intake-only replica, or one started by mistake — must not requeue the
//! jobs the live daemon is working on, nor claim them: each paid lookup runs once. Two real
//! daemons on one file, a vendor slow enough that the first holds its jobs while the second
//! starts.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;
use support::{temp_db, wait_for_status, Daemon};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The shipped config with Hunter's domain search (at `base`) as the only provider.
fn hunter_config(base: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, file) = support::config_copy();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            r#"waterfall = ["local_file", "clearbit", "peopledatalabs", "apollo", "hunter"]"#,
            r#"waterfall = ["hunter"]"#,
        )
        .replace(
            r#"api_key = "${HUNTER_API_KEY:-}""#,
            &format!("api_key = \"test_key_hunter\"\nbase_url = \"{base}\""),
        );
    assert!(text.contains(r#"waterfall = ["hunter"]"#));
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// Hunter answering every domain search after `delay`, as the vendor shapes it.
async fn slow_hunter(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/domain-search"))
        .respond_with(move |req: &Request| {
            let domain = req
                .url
                .query_pairs()
                .find(|(k, _)| k == "domain")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            ResponseTemplate::new(200)
                .set_delay(delay)
                .set_body_json(json!({"data": {
                    "domain": domain, "organization": "Acme", "pattern": "{first}",
                    "webmail": false, "disposable": false, "accept_all": false, "emails": []},
                    "meta": {"results": 0, "limit": 10, "offset": 0, "params": {"domain": domain}}}))
        })
        .mount(&server)
        .await;
    server
}

/// `leadgate serve` with its log (stderr, at `warn`) kept: the second daemon's refusal to
/// run workers is a log line.
fn serve_with_log(
    config: &std::path::Path,
    db: &std::path::Path,
    workers: usize,
) -> (Daemon, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(support::BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("LEADGATE_CONFIG", config)
        .env(
            "LEADGATE__STORAGE__URL",
            format!("sqlite://{}", db.display()),
        )
        .env("LEADGATE__SERVER__WORKERS", workers.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start leadgate serve");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("leadgate listening on ") {
                    break url.trim().to_string();
                }
            }
            _ => panic!("leadgate serve exited before listening"),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (Daemon { child, base }, rx)
}

async fn post(client: &reqwest::Client, d: &Daemon, email: &str) -> String {
    let res = client
        .post(d.url("/v1/leads"))
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_second_serve_on_the_file_serves_intake_and_leaves_the_owners_jobs_alone() {
    let hunter = slow_hunter(Duration::from_secs(3)).await;
    let (_cfg_dir, cfg) = hunter_config(&hunter.uri());
    let (_dir, db) = temp_db();
    let (owner, _owner_log) = serve_with_log(&cfg, &db, 2);
    let client = reqwest::Client::new();
    let first = [
        post(&client, &owner, "ada@alpha-one.io").await,
        post(&client, &owner, "bo@beta-two.io").await,
    ];

    // Both jobs in the owner's hands (the vendor holds them for 3 s).
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let processing: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'processing'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        if processing == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the owner never claimed its jobs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (second, second_log) = serve_with_log(&cfg, &db, 2);
    let processing: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'processing'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(processing, 2, "the second daemon requeued the owner's jobs");
    // Intake still works there; the owner's workers decide what it queues.
    let third = post(&client, &second, "cy@gamma-three.io").await;
    for id in first.iter().chain([&third]) {
        wait_for_status(&client, &owner, id, &["done", "review"]).await;
    }

    let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM jobs ORDER BY created_at")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(attempts, vec![1, 1, 1], "every job claimed once");
    assert_eq!(
        hunter.received_requests().await.unwrap().len(),
        3,
        "one paid lookup per lead"
    );
    let log: Vec<String> = second_log.try_iter().collect();
    assert!(
        log.iter()
            .any(|l| l.contains("another leadgate process owns the workers")),
        "{log:?}"
    );
    drop(second);

    // Once the owner is gone (even by kill -9), the next daemon owns the workers.
    owner.kill9();
    let (next, next_log) = serve_with_log(&cfg, &db, 1);
    let fourth = post(&client, &next, "di@delta-four.io").await;
    wait_for_status(&client, &next, &fourth, &["done", "review"]).await;
    assert!(!next_log
        .try_iter()
        .any(|l| l.contains("another leadgate process owns the workers")));
}
