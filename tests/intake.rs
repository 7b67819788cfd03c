//! Durable intake on SQLite: concurrent accepts share one transaction on the intake writer's
//! own connection (group commit), and a burst keeps the semantics of arrivals one at a time.

mod support;

use leadgate::lead::RawLead;
use leadgate::normalize::Normalizer;
use leadgate::store::{Accepted, Store, StoreError};
use serde_json::json;
use support::{open_store, temp_db};

fn raw(v: serde_json::Value) -> RawLead {
    RawLead(v.as_object().unwrap().clone())
}

/// Accepts every arrival at once, so they meet in the writer's queue.
async fn burst(
    store: &Store,
    arrivals: &[(Option<String>, RawLead)],
) -> Vec<Result<Accepted, StoreError>> {
    let normalizer = Normalizer::default();
    futures::future::join_all(arrivals.iter().map(|(key, raw)| {
        let lead = normalizer.normalize(raw).unwrap();
        async move { store.accept(&lead, raw, key.as_deref()).await }
    }))
    .await
}

#[tokio::test]
async fn a_burst_keeps_idempotency_and_identity_as_if_one_at_a_time() {
    let (_dir, db) = temp_db();
    let store = open_store(&db).await;
    // 60 arrivals: every third repeats key "retry" with the same lead (a client retrying;
    // the same key with another lead is a conflict, tests/server.rs), the others are fresh
    // people, except that "twice@acme.io" arrives twice without a key.
    let mut arrivals = Vec::new();
    for i in 0..60 {
        let (key, email) = match i % 3 {
            0 => (Some("retry".to_string()), "retry@acme.io".to_string()),
            1 if i < 5 => (None, "twice@acme.io".to_string()),
            _ => (Some(format!("k{i}")), format!("p{i}@acme.io")),
        };
        arrivals.push((key, raw(json!({"email": email, "title": "CTO"}))));
    }
    let answers: Vec<Accepted> = burst(&store, &arrivals)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // The first "retry" queued a job; every later one answers the same ids as a duplicate.
    let retries: Vec<&Accepted> = answers.iter().step_by(3).collect();
    assert!(!retries[0].duplicate);
    for r in &retries[1..] {
        assert!(r.duplicate, "{r:?}");
        assert_eq!((&r.id, &r.job_id), (&retries[0].id, &retries[0].job_id));
    }
    // The person who came twice is one lead with two jobs.
    let (a, b) = (&answers[1], &answers[4]);
    assert_eq!(a.id, b.id);
    assert_ne!(a.job_id, b.job_id);
    assert!(!a.duplicate && !b.duplicate);
    let view = store.lead(&a.id).await.unwrap().unwrap();
    assert_eq!(view.arrivals.len(), 2);
    // Jobs queued: one for "retry", two for "twice", and one for each other arrival.
    let others = answers.len() - retries.len() - 2;
    let depth = store.queue_depth().await.unwrap();
    assert_eq!(depth.get("queued").copied(), Some((1 + 2 + others) as i64));

    // A key stored by an earlier batch is answered from the store, not queued again.
    let again = burst(&store, &arrivals[..1]).await.remove(0).unwrap();
    assert!(again.duplicate);
    assert_eq!(again.job_id, retries[0].job_id);
}

/// The writer opens its own connection: a `:memory:` store must be the same database.
#[tokio::test]
async fn an_in_memory_store_accepts_and_reads_back() {
    let store = Store::open("sqlite://:memory:").await.unwrap();
    let arrivals = vec![(None, raw(json!({"email": "mem@acme.io"})))];
    let accepted = burst(&store, &arrivals).await.remove(0).unwrap();
    let view = store.lead(&accepted.id).await.unwrap().unwrap();
    assert_eq!(view.arrivals.len(), 1);
    assert_eq!(view.status, "queued");
}

/// A store the writer cannot open answers each arrival with an error; nothing hangs.
#[tokio::test]
async fn a_broken_store_answers_each_arrival_with_an_error() {
    let (dir, db) = temp_db();
    let store = open_store(&db).await;
    // The file disappears under the daemon (a volume unmounted): the writer's own
    // connection cannot be opened read-write on a path whose folder is gone.
    drop(dir);
    let arrivals: Vec<_> = (0..3)
        .map(|i| (None, raw(json!({"email": format!("x{i}@acme.io")}))))
        .collect();
    for a in burst(&store, &arrivals).await {
        assert!(a.is_err(), "{a:?}");
    }
}

/// While another connection holds SQLite's write lock, a batch waits for it without holding
/// the runtime: on a single-threaded runtime the accept is still pending after 100 ms, the
/// runtime keeps running other tasks meanwhile, and the accept lands once the lock is let go.
#[tokio::test(flavor = "current_thread")]
async fn an_accept_waits_for_the_write_lock_without_holding_the_runtime() {
    let (_dir, db) = temp_db();
    let store = open_store(&db).await;
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let raw = raw(json!({"email": "locked@acme.io"}));
    let lead = Normalizer::default().normalize(&raw).unwrap();
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.accept(&lead, &raw, None).await }
    });
    let ticks = tokio::spawn(async {
        let mut n = 0;
        for _ in 0..10 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            n += 1;
        }
        n
    });
    assert_eq!(ticks.await.unwrap(), 10, "the runtime kept running");
    assert!(
        !waiting.is_finished(),
        "accepted while the write lock was held"
    );

    other.execute_batch("COMMIT").unwrap();
    let accepted = waiting.await.unwrap().unwrap();
    assert_eq!(
        store.lead(&accepted.id).await.unwrap().unwrap().status,
        "queued"
    );
}
