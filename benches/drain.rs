//! Queue fairness (issue #28 item 5): how long the queue takes to drain 4,000 leads at one
//! company against 4,000 at distinct companies, each lead claimed, decided by the shipped
//! pipeline (its account roll-up included) and recorded as a worker does, by eight
//! concurrent workers on a SQLite file. Before the running account totals (migration 0013)
//! every lead read all of its domain's decisions, so the one-company queue was quadratic.
//!
//! `cargo bench --bench drain`; LEADGATE_BENCH_DRAIN_LEADS (4000) and
//! LEADGATE_BENCH_DRAIN_WORKERS (8). Prints figures; asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use leadgate::lead::RawLead;
use leadgate::pipeline::Pipeline;
use leadgate::settings::Settings;
use leadgate::store::Store;

const LEASE: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Queues `leads` arrivals (at one domain or each at its own), then drains the queue with
/// `workers` concurrent claim → decide → complete loops; answers the drain's time.
async fn drain(leads: usize, workers: usize, one_domain: bool) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("drain.db");
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.insert(
        "LEADGATE__STORAGE__URL".into(),
        format!("sqlite://{}", db.display()),
    );
    let settings = Settings::load_with_env(Path::new("config/leadgate.toml"), env).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    let pipeline = std::sync::Arc::new(Pipeline::build(&settings).unwrap());
    let arrivals: Vec<RawLead> = (0..leads)
        .map(|i| {
            let domain = if one_domain {
                "kestrel-data.io".to_string()
            } else {
                format!("company-{i}.io")
            };
            let v = serde_json::json!({"email": format!("p{i}@{domain}"), "title": "VP Sales"});
            RawLead(v.as_object().unwrap().clone())
        })
        .collect();
    for chunk in arrivals.chunks(256) {
        futures::future::join_all(chunk.iter().map(|raw| {
            let lead = pipeline.normalize(raw).unwrap();
            let store = &store;
            async move { store.accept(&lead, raw, None).await.unwrap() }
        }))
        .await;
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (store, pipeline) = (store.clone(), pipeline.clone());
            tokio::spawn(async move {
                while let Some(job) = store.claim(LEASE).await.unwrap() {
                    let raw: RawLead = serde_json::from_str(&job.payload).unwrap();
                    let lead = pipeline.normalize(&raw).unwrap();
                    let decision = pipeline
                        .decide(lead.clone(), &store.for_job(&job.id), Utc::now())
                        .await
                        .unwrap();
                    store.complete(&job, &lead, &decision).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(store.decision_count().await.unwrap() as usize, leads);
    took
}

fn main() {
    let leads = env_usize("LEADGATE_BENCH_DRAIN_LEADS", 4000);
    let workers = env_usize("LEADGATE_BENCH_DRAIN_WORKERS", 8);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let distinct = runtime.block_on(drain(leads, workers, false));
    let one = runtime.block_on(drain(leads, workers, true));
    println!("drain of {leads} leads, {workers} workers, SQLite file:");
    println!(
        "  distinct domains  {:>8.2} s  {:>7.0} leads/s",
        distinct.as_secs_f64(),
        leads as f64 / distinct.as_secs_f64()
    );
    println!(
        "  one domain        {:>8.2} s  {:>7.0} leads/s",
        one.as_secs_f64(),
        leads as f64 / one.as_secs_f64()
    );
    println!(
        "  one domain / distinct = {:.2}× (issue #28 asks ≤ 2×)",
        one.as_secs_f64() / distinct.as_secs_f64()
    );
}
