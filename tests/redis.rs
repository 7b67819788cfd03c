//! Redis shared by replicas (real Redis from scripts/test.sh, on 127.0.0.1): the L2 cache
//! means a second replica never pays for an enrichment the first one made; the shared GCRA
//! keeps several replicas together under one vendor quota; and without Redis each falls back.
//! Needs the `postgres-tests` feature (the services scripts/test.sh starts).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use leadgate::connector::http::{Answer, Body};
use leadgate::resilience::cache::{AnswerCache, CachePolicy, Freshness, MokaCache};
use leadgate::resilience::limit::RateLimit;
use leadgate::resilience::redis::{RedisLink, SharedGcra, TieredCache};
use serde_json::json;
use tokio::time::Instant;

fn redis_url() -> String {
    std::env::var("LEADGATE_TEST_REDIS_URL").expect("LEADGATE_TEST_REDIS_URL is not set: run scripts/test.sh, which starts Redis for these tests")
}

fn policy() -> CachePolicy {
    CachePolicy {
        capacity: 1000,
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(10),
    }
}

fn replica_cache(link: &Arc<RedisLink>) -> TieredCache<Answer> {
    TieredCache::new(MokaCache::new(policy()), link.clone())
}

fn upstream(calls: &Arc<AtomicUsize>) -> BoxFuture<'static, Result<(Answer, Freshness), String>> {
    let calls = calls.clone();
    Box::pin(async move {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok((
            Answer::Found(Body::from_value(&json!({"name": "Acme"}))),
            Freshness::Positive,
        ))
    })
}

#[tokio::test]
async fn a_second_replica_reads_the_first_replicas_enrichment_from_redis() {
    let link = RedisLink::new(&redis_url()).unwrap();
    let (a, b) = (replica_cache(&link), replica_cache(&link));
    let key = format!(
        "clearbit\u{1f}GET https://127.0.0.1/v2/companies/find?domain=acme-{}.io",
        uuid::Uuid::new_v4()
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let first = AnswerCache::<Answer, String>::get_or_fetch(&a, key.clone(), upstream(&calls))
        .await
        .unwrap();
    assert!(!first.cached);
    let second = AnswerCache::<Answer, String>::get_or_fetch(&b, key.clone(), upstream(&calls))
        .await
        .unwrap();
    assert!(second.cached, "served from Redis");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one upstream call for two replicas"
    );
    assert!(matches!(second.value, Answer::Found(v) if v.value()["name"] == "Acme"));

    // Erasure reaches the shared cache too.
    let gone = AnswerCache::<Answer, String>::invalidate_containing(&a, "acme-").await;
    assert!(gone >= 2, "both the local entry and the Redis key: {gone}");
    let c = replica_cache(&link);
    let again = AnswerCache::<Answer, String>::get_or_fetch(&c, key, upstream(&calls))
        .await
        .unwrap();
    assert!(!again.cached);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_quota_through_redis() {
    let link = RedisLink::new(&redis_url()).unwrap();
    // The vendor allows 40 requests per second; three replicas try to send as fast as they can.
    let quota = 40u32;
    let provider = format!("vendor-{}", uuid::Uuid::new_v4());
    let limit = RateLimit::per(quota, Duration::from_secs(1));
    let started = Instant::now();
    let run_for = Duration::from_secs(3);
    let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        // Each replica has its own gate object and its own connection, as separate processes would.
        let gate = Arc::new(SharedGcra::new(
            RedisLink::new(&redis_url()).unwrap(),
            &provider,
            &limit,
            3,
        ));
        for _ in 0..4 {
            let (gate, stamps) = (gate.clone(), stamps.clone());
            tasks.push(tokio::spawn(async move {
                while started.elapsed() < run_for {
                    if gate.acquire(Instant::now() + Duration::from_secs(1)).await
                        && started.elapsed() < run_for
                    {
                        stamps.lock().unwrap().push(started.elapsed());
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(link);
    let mut stamps = stamps.lock().unwrap().clone();
    stamps.sort();
    // Never more than the quota in any one-second window.
    let mut worst = 0;
    for (i, s) in stamps.iter().enumerate() {
        let in_window = stamps[i..]
            .iter()
            .take_while(|t| **t < *s + Duration::from_secs(1))
            .count();
        worst = worst.max(in_window);
    }
    let expected = quota as f64 * run_for.as_secs_f64();
    println!("shared limiter: {} permits in {:?} (quota {quota}/s → {expected}), busiest 1 s window {worst}", stamps.len(), run_for);
    assert!(
        worst <= quota as usize,
        "busiest window {worst} > quota {quota}"
    );
    assert!(
        stamps.len() as f64 >= 0.9 * expected,
        "only {} of {expected} permits used",
        stamps.len()
    );
}
