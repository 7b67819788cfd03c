//! Scale-out reliability: several real `leadgate serve` processes share one real PostgreSQL
//! (the throwaway server scripts/test.sh starts on 127.0.0.1) and drain a batch of leads
//! together, while a fault is injected: none, a replica killed with SIGKILL mid-batch and
//! restarted, PostgreSQL restarted mid-run.
//!
//! What is checked, from the store itself once the queue is drained:
//! - lost = accepted arrivals (idempotency keys sent) without a job, or whose job never
//!   reached a final status with its decision — must be 0;
//! - duplicates = arrivals with more than one decision, and jobs beyond one per key — must
//!   be 0;
//! - counts exact across replicas: every owner's shared assignment counter equals the
//!   decisions assigning a lead to them, and members of a round-robin pool differ by at most
//!   one lead.
//!
//! Delivery to a CRM is another issue's work; until it lands, decisions in the store are
//! what is counted (one decision per arrival).
//!
//! Leads per test: `LEADGATE_REPLICA_LEADS` (default 2000; the full run is 5000).
//! Each test prints one `replicas:` line with its figures (run with `--nocapture`).
//! Built only with `--features postgres-tests`; run through scripts/test.sh.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use support::{fresh_postgres_db, restart_postgres, Daemon};

/// Leads per test unless `LEADGATE_REPLICA_LEADS` says otherwise.
const DEFAULT_LEADS: usize = 2000;
/// Workers per replica: several per process, so claims race inside and across processes.
const WORKERS: usize = 4;
/// Lease in these tests: short, so a killed replica's jobs come back within the test.
const LEASE: &str = "3s";
/// Requests in flight from the test client.
const CLIENTS: usize = 24;

/// One replica test at a time: they share the PostgreSQL server, and one restarts it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn leads_per_test() -> usize {
    std::env::var("LEADGATE_REPLICA_LEADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_LEADS)
}

/// Bound for a whole test's drain: generous for a 2-core CI machine.
fn drain_deadline(n: usize) -> Duration {
    Duration::from_secs(120 + (n as u64) / 10)
}

fn domains() -> Vec<String> {
    let text =
        std::fs::read_to_string("config/firmographics.csv").expect("read config/firmographics.csv");
    text.lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(str::to_string)
        .collect()
}

const TITLES: [&str; 6] = [
    "VP Sales",
    "Head of Revenue Operations",
    "Software Engineer",
    "Marketing Manager",
    "Chief Executive Officer",
    "Sales Director",
];

fn lead(i: usize, domains: &[String]) -> Value {
    let domain = &domains[i % domains.len()];
    json!({
        "email": format!("person{i}@{domain}"),
        "first_name": "Test",
        "last_name": format!("Lead{i}"),
        "title": TITLES[i % TITLES.len()],
        "source": "replica-test",
        "events": [{ "type": "page_view", "path": "/pricing", "at": chrono::Utc::now().to_rfc3339() }],
    })
}

/// The replicas the client may post to; a killed replica is taken out, a restarted one added.
#[derive(Clone, Default)]
struct Targets(Arc<RwLock<Vec<String>>>);

impl Targets {
    fn set(&self, bases: Vec<String>) {
        *self.0.write().unwrap() = bases;
    }
    fn pick(&self, i: usize) -> Option<String> {
        let t = self.0.read().unwrap();
        (!t.is_empty()).then(|| t[i % t.len()].clone())
    }
}

/// Posts `n` leads with idempotency keys, spread over the targets, each retried (on a
/// connection error or a 5xx, on the next replica) until accepted or the deadline passes.
/// Returns how many requests had to be retried.
async fn post_all(targets: Targets, n: usize, deadline: Instant) -> usize {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let domains = Arc::new(domains());
    let retries: usize = stream::iter(0..n)
        .map(|i| {
            let (client, targets, domains) = (client.clone(), targets.clone(), domains.clone());
            async move {
                let body = lead(i, &domains);
                let mut attempt = 0;
                loop {
                    let sent = match targets.pick(i + attempt) {
                        Some(base) => Some(
                            client
                                .post(format!("{base}/v1/leads"))
                                .header("Idempotency-Key", format!("replica-test-{i}"))
                                .json(&body)
                                .send()
                                .await
                                .map(|r| r.status()),
                        ),
                        None => None,
                    };
                    match &sent {
                        Some(Ok(s)) if s.as_u16() == 202 || s.as_u16() == 200 => return attempt,
                        Some(Ok(s)) if s.is_client_error() => panic!("lead {i} rejected with {s}"),
                        _ => {}
                    }
                    attempt += 1;
                    assert!(
                        Instant::now() < deadline,
                        "lead {i} was never accepted (last: {sent:?})"
                    );
                    tokio::time::sleep(Duration::from_millis(100 * attempt.min(10) as u64)).await;
                }
            }
        })
        .buffer_unordered(CLIENTS)
        .fold(0, |acc, a| async move { acc + usize::from(a > 0) })
        .await;
    retries
}

/// Decisions stored so far; `None` while the database is unreachable.
async fn decided(db: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM decisions")
        .fetch_one(db)
        .await
        .ok()
}

async fn wait_for_decisions(db: &PgPool, at_least: i64, deadline: Instant) {
    loop {
        if decided(db).await.is_some_and(|d| d >= at_least) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} decisions before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` jobs exist and none is queued or processing.
async fn wait_drained(db: &PgPool, n: usize, deadline: Instant) {
    loop {
        let open: Result<(i64, i64), sqlx::Error> = async {
            let row = sqlx::query("SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE status IN ('queued', 'processing')) AS open FROM jobs")
                .fetch_one(db)
                .await?;
            Ok((row.get("total"), row.get("open")))
        }
        .await;
        if let Ok((total, 0)) = open {
            if total as usize >= n {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "queue not drained before the deadline: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the store says after a run.
#[derive(Debug)]
struct Report {
    arrivals: usize,
    jobs: usize,
    decisions: usize,
    lost: usize,
    duplicates: usize,
    failed: usize,
    /// Jobs claimed more than once: their lease ran out under a dead or cut-off worker.
    reclaimed: usize,
    /// owner → (assignments the shared counters hold, decisions assigning the lead to them)
    counted: BTreeMap<String, (u64, u64)>,
    /// pool → owner → leads
    owners: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Report {
    fn assigned(&self) -> u64 {
        self.counted.values().map(|(_, decided)| decided).sum()
    }
    /// Assignments counted for which no decision was recorded: picks made by a worker that
    /// died (or lost the store) before recording its decision; the retry picks again.
    fn spent_picks(&self) -> u64 {
        self.counted
            .values()
            .map(|(c, d)| c.saturating_sub(*d))
            .sum()
    }
}

async fn count(db: &PgPool, sql: &str) -> usize {
    let n: i64 = sqlx::query_scalar(sql).fetch_one(db).await.expect(sql);
    usize::try_from(n).unwrap_or(0)
}

async fn report(db: &PgPool, n: usize) -> Report {
    // The API may namespace keys (`key:...`): match on the test's own suffix.
    let keys: HashSet<usize> =
        sqlx::query_scalar::<_, Option<String>>("SELECT idempotency_key FROM jobs")
            .fetch_all(db)
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .filter_map(|k| {
                k.rsplit_once("replica-test-")
                    .and_then(|(_, i)| i.parse().ok())
            })
            .collect();
    let missing_keys = (0..n).filter(|i| !keys.contains(i)).count();
    let jobs = count(db, "SELECT COUNT(*) FROM jobs").await;
    // A job is done when it is closed with its decision (or failed with a reason).
    let undecided = count(
        db,
        "SELECT COUNT(*) FROM jobs j WHERE j.status <> 'failed'
           AND (j.status IN ('queued', 'processing') OR NOT EXISTS (SELECT 1 FROM decisions d WHERE d.job_id = j.id))",
    )
    .await;
    let failed = count(db, "SELECT COUNT(*) FROM jobs WHERE status = 'failed'").await;
    let reclaimed = count(db, "SELECT COUNT(*) FROM jobs WHERE attempts > 1").await;
    let twice = count(
        db,
        "SELECT COUNT(*) FROM (SELECT job_id FROM decisions GROUP BY job_id HAVING COUNT(*) > 1) t",
    )
    .await;
    // A lead decided more often than it arrived.
    let over = count(
        db,
        "SELECT COUNT(*) FROM leads l WHERE (SELECT COUNT(*) FROM decisions d WHERE d.lead_id = l.id) > l.arrivals",
    )
    .await;
    let records: Vec<String> = sqlx::query_scalar("SELECT record FROM decisions")
        .fetch_all(db)
        .await
        .unwrap();
    let mut counted: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut owners: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &records {
        let v: Value = serde_json::from_str(r).unwrap();
        let route = &v["route"];
        let Some(owner) = route["owner"].as_str() else {
            continue;
        };
        if route["action"] != "assign" {
            continue;
        }
        counted.entry(owner.to_string()).or_default().1 += 1;
        if let Some(pool) = route["pool"].as_str() {
            *owners
                .entry(pool.to_string())
                .or_default()
                .entry(owner.to_string())
                .or_default() += 1;
        }
    }
    let rows =
        sqlx::query("SELECT owner, SUM(assigned)::BIGINT AS n FROM route_counts GROUP BY owner")
            .fetch_all(db)
            .await
            .unwrap();
    for r in rows {
        counted.entry(r.get("owner")).or_default().0 =
            u64::try_from(r.get::<i64, _>("n")).unwrap_or(0);
    }
    Report {
        arrivals: n,
        jobs,
        decisions: records.len(),
        lost: missing_keys + undecided,
        duplicates: twice + over + jobs.saturating_sub(n),
        failed,
        reclaimed,
        counted,
        owners,
    }
}

/// The shipped config's round-robin pools (config/routing.toml).
fn round_robin_pools() -> Vec<String> {
    let text = std::fs::read_to_string("config/routing.toml").expect("read config/routing.toml");
    let v: toml::Value = toml::from_str(&text).expect("routing.toml parses");
    v.get("pool")
        .and_then(|p| p.as_array())
        .map(|pools| {
            pools
                .iter()
                .filter(|p| p.get("strategy").and_then(|s| s.as_str()) == Some("round_robin"))
                .filter_map(|p| p.get("id").and_then(|s| s.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_lost_or_doubled(r: &Report) {
    assert_eq!(r.lost, 0, "leads lost: {r:#?}");
    assert_eq!(r.duplicates, 0, "leads decided twice: {r:#?}");
    assert_eq!(r.jobs, r.arrivals, "one job per idempotency key: {r:#?}");
    assert_eq!(r.failed, 0, "every test lead is valid: {r:#?}");
    assert_eq!(r.decisions, r.arrivals, "one decision per arrival: {r:#?}");
}

/// Counts exact across replicas: every owner's shared assignment counter equals the
/// decisions that assigned a lead to them, and a round-robin pool's members differ by at
/// most one lead (members that are unavailable or at capacity get none).
fn assert_round_robin_exact(r: &Report) {
    assert!(r.assigned() > 0, "no lead was assigned to an owner: {r:#?}");
    for (owner, (counted, decided)) in &r.counted {
        assert_eq!(
            counted, decided,
            "owner {owner}: counted assignments vs decisions: {r:#?}"
        );
    }
    for pool in round_robin_pools() {
        if let Some(owners) = r.owners.get(&pool) {
            let max = owners.values().max().copied().unwrap_or(0);
            let min = owners.values().min().copied().unwrap_or(0);
            assert!(
                max - min <= 1,
                "round robin in {pool} is uneven: {owners:?}"
            );
        }
    }
}

fn figures(name: &str, replicas: usize, fault: &str, r: &Report, retried: usize, took: Duration) {
    println!(
        "replicas: test={name} leads={} replicas={replicas} workers_each={WORKERS} fault=\"{fault}\" \
         decisions={} lost={} duplicates={} assigned={} spent_picks={} reclaimed_after_lease={} client_retries={retried} seconds={:.1}",
        r.arrivals,
        r.decisions,
        r.lost,
        r.duplicates,
        r.assigned(),
        r.spent_picks(),
        r.reclaimed,
        took.as_secs_f64()
    );
}

fn start_replicas(url: &str, count: usize) -> Vec<Daemon> {
    (0..count)
        .map(|_| Daemon::start_with_store(url, WORKERS, &[("LEADGATE__SERVER__LEASE", LEASE)]))
        .collect()
}

async fn connect(url: &str) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
        .expect("connect to the test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_drain_every_lead_once_with_exact_round_robin() {
    let _serial = SERIAL.lock().await;
    let n = leads_per_test();
    let url = fresh_postgres_db().await;
    let started = Instant::now();
    let deadline = started + drain_deadline(n);
    let replicas = start_replicas(&url, 3);
    let targets = Targets::default();
    targets.set(replicas.iter().map(|d| d.base.clone()).collect());

    let retried = post_all(targets, n, deadline).await;
    let db = connect(&url).await;
    wait_drained(&db, n, deadline).await;
    let r = report(&db, n).await;
    figures("drain", 3, "none", &r, retried, started.elapsed());
    assert_nothing_lost_or_doubled(&r);
    assert_round_robin_exact(&r);
    for d in replicas {
        assert!(
            d.terminate(Duration::from_secs(30)),
            "a replica did not stop cleanly"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_batch_and_restarted_loses_nothing_and_decides_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let n = leads_per_test();
    let url = fresh_postgres_db().await;
    let started = Instant::now();
    let deadline = started + drain_deadline(n);
    let mut replicas = start_replicas(&url, 3);
    let targets = Targets::default();
    targets.set(replicas.iter().map(|d| d.base.clone()).collect());
    let db = connect(&url).await;

    let posting = tokio::spawn(post_all(targets.clone(), n, deadline));
    // Mid-batch: a quarter decided, the rest still arriving or queued.
    wait_for_decisions(&db, (n / 4) as i64, deadline).await;
    let victim = replicas.remove(0);
    targets.set(replicas.iter().map(|d| d.base.clone()).collect());
    victim.kill9();
    let at_kill = decided(&db).await.unwrap_or(0);
    assert!(
        (at_kill as usize) < n,
        "the batch finished before the kill; raise LEADGATE_REPLICA_LEADS"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = tokio::task::spawn_blocking({
        let url = url.clone();
        move || Daemon::start_with_store(&url, WORKERS, &[("LEADGATE__SERVER__LEASE", LEASE)])
    })
    .await
    .unwrap();
    replicas.push(restarted);
    targets.set(replicas.iter().map(|d| d.base.clone()).collect());

    let retried = posting.await.expect("posting task");
    wait_drained(&db, n, deadline).await;
    let r = report(&db, n).await;
    figures(
        "kill-9",
        3,
        &format!("kill -9 of one replica at {at_kill}/{n} decided, restarted"),
        &r,
        retried,
        started.elapsed(),
    );
    assert_nothing_lost_or_doubled(&r);
    // A job the killed replica held may have made its pick before it died; its retry picks
    // again. At most one pick per worker of the killed replica is spent so.
    assert!(r.spent_picks() <= WORKERS as u64, "{r:#?}");
    assert!(
        r.reclaimed >= 1,
        "the killed replica held no job: nothing was reclaimed after its lease: {r:#?}"
    );
    for (owner, (counted, decided)) in &r.counted {
        assert!(
            counted >= decided,
            "owner {owner}: {counted} counted for {decided} decisions"
        );
    }
    for d in replicas {
        assert!(
            d.terminate(Duration::from_secs(30)),
            "a replica did not stop cleanly"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_mid_run_delays_the_run_but_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let n = leads_per_test();
    let url = fresh_postgres_db().await;
    let started = Instant::now();
    let deadline = started + drain_deadline(n);
    let mut replicas = start_replicas(&url, 2);
    let targets = Targets::default();
    targets.set(replicas.iter().map(|d| d.base.clone()).collect());
    let db = connect(&url).await;

    let posting = tokio::spawn(post_all(targets.clone(), n, deadline));
    wait_for_decisions(&db, (n / 4) as i64, deadline).await;
    let at_restart = decided(&db).await.unwrap_or(0);
    assert!(
        (at_restart as usize) < n,
        "the batch finished before the restart; raise LEADGATE_REPLICA_LEADS"
    );
    tokio::task::spawn_blocking(|| restart_postgres(Duration::from_secs(3)))
        .await
        .unwrap();

    let retried = posting.await.expect("posting task");
    wait_drained(&db, n, deadline).await;
    let r = report(&db, n).await;
    figures(
        "postgres-restart",
        2,
        &format!("PostgreSQL stopped for 3 s at {at_restart}/{n} decided, then started"),
        &r,
        retried,
        started.elapsed(),
    );
    assert_nothing_lost_or_doubled(&r);
    // Both replicas rode it out: still running and ready.
    let client = reqwest::Client::new();
    for d in &mut replicas {
        assert!(
            d.child.try_wait().unwrap().is_none(),
            "a replica exited during the PostgreSQL restart"
        );
        let ready = client.get(d.url("/readyz")).send().await.unwrap().status();
        assert!(
            ready.is_success(),
            "a replica is not ready after PostgreSQL came back: {ready}"
        );
    }
    for (owner, (counted, decided)) in &r.counted {
        assert!(
            counted >= decided,
            "owner {owner}: {counted} counted for {decided} decisions"
        );
    }
    for d in replicas {
        assert!(
            d.terminate(Duration::from_secs(30)),
            "a replica did not stop cleanly"
        );
    }
}
