//! Issue #28 item 8: `kill -9` a daemon on SQLite while it is both accepting leads and
//! deciding them, start it again on the same file, and every lead it answered `202` for is
//! decided exactly once — none lost, none decided twice.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::Connection;
use support::{temp_db, Daemon};

/// Posts leads one after another until `stop`, keeping every job id answered `202`.
async fn post_until(
    d_url: String,
    stop: tokio::sync::watch::Receiver<bool>,
    from: usize,
) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut accepted = Vec::new();
    let mut i = from;
    while !*stop.borrow() {
        let res = client
            .post(format!("{d_url}/v1/leads"))
            .json(&json!({"email": format!("crash{i}@acme-{}.io", i % 7), "title": "CTO"}))
            .send()
            .await;
        i += 1;
        // A request cut by the kill has no answer: the lead was not promised.
        if let Ok(res) = res {
            if res.status() == 202 {
                if let Ok(body) = res.json::<Value>().await {
                    accepted.push(body["job_id"].as_str().unwrap().to_string());
                }
            }
        }
    }
    accepted
}

#[tokio::test]
async fn a_daemon_killed_while_accepting_and_deciding_loses_and_repeats_nothing() {
    let (_dir, db) = temp_db();
    let first = Daemon::start(&db, 2, &[]);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let posters: Vec<_> = (0..4)
        .map(|p| tokio::spawn(post_until(first.base.clone(), stop_rx.clone(), p * 100_000)))
        .collect();

    // Kill it once it has both decided some leads and has more queued or in hand.
    let url = format!("sqlite://{}", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (decided, open): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM decisions),
                    (SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'processing'))",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if decided >= 50 && open > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon never got busy");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill9();
    let _ = stop_tx.send(true);
    let mut accepted = Vec::new();
    for p in posters {
        accepted.extend(p.await.unwrap());
    }
    assert!(accepted.len() >= 50, "only {} accepted", accepted.len());

    // The next daemon on the file picks up what the first left.
    let second = Daemon::start(&db, 2, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'processing')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} jobs never finished after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jobs: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT j.id, j.status, (SELECT COUNT(*) FROM decisions d WHERE d.job_id = j.id) FROM jobs j")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let by_id: std::collections::HashMap<&str, (&str, i64)> = jobs
        .iter()
        .map(|(id, status, n)| (id.as_str(), (status.as_str(), *n)))
        .collect();
    let unique: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "a job id answered twice");
    for job in &accepted {
        let (status, decisions) = by_id
            .get(job.as_str())
            .unwrap_or_else(|| panic!("accepted job {job} was lost"));
        assert!(
            matches!(*status, "done" | "review"),
            "job {job} ended {status}"
        );
        assert_eq!(*decisions, 1, "job {job} decided {decisions} times");
    }
    // Nothing was decided that nobody asked for, and every stored decision is one job's.
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(total as usize >= accepted.len());
    assert_eq!(total as usize, jobs.len(), "one decision per stored job");
    drop(second);
}
