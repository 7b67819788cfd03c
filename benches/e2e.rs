//! The end-to-end benchmark: one command (`cargo bench --bench e2e`) that starts the real
//! `leadgate serve` on loopback against a local mock upstream, drives it with a load
//! generator, and prints each figure beside the limit measured in the same run.
//!
//! Environment knobs: LEADGATE_BENCH_LEADS (default 20000), LEADGATE_BENCH_CONCURRENCY (64),
//! LEADGATE_BENCH_COMPANIES (1000); for the end-to-end run through CRM delivery,
//! LEADGATE_BENCH_E2E_LEADS (the smaller of LEADS and 5000), LEADGATE_BENCH_WORKERS (8, the
//! shipped default), LEADGATE_BENCH_CRM_LATENCY_MS (20) and LEADGATE_BENCH_CRM_BATCH_WAIT
//! (`[crm] batch_wait`, e.g. `50ms`; unset: one CRM write per lead), LEADGATE_BENCH_E2E_PACED_RATE
//! (the paced run's leads/s; half the flood's when unset); LEADGATE_BENCH_BIN runs another
//! leadgate binary (an earlier build) under the same load; LEADGATE_BENCH_STAGES (a comma
//! list of intake, evaluate, events, cold, e2e, hostile, memory; all by default) runs only some stages, for
//! profiling one of them; LEADGATE_BENCH_CONFIG (a leadgate.toml) serves intake and evaluate
//! from another config; LEADGATE_BENCH_ROUNDS (5) is how many rounds intake, evaluate and events
//! each run, every round between two runs of the trivial handler, the table reading the
//! median round; for `hostile`, LEADGATE_BENCH_PER_ADDRESS (1000 connections held from each
//! of 20 loopback addresses), LEADGATE_BENCH_REOPEN_MS (1000: how soon an attacker opens a
//! closed connection again) and LEADGATE_BENCH_FLOOD_RATE (1000 bad-webhook requests/s).
//! Nothing here is asserted:
//! benchmarks report, tests judge.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;

#[path = "e2e/hostile.rs"]
mod hostile;
use serde_json::json;

/// The leadgate binary under test: this build's, or LEADGATE_BENCH_BIN (another build's, to
/// compare two trees with the same load generator in the same minute on a noisy machine).
fn bin() -> String {
    std::env::var("LEADGATE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_leadgate").into())
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Zipf(s = 1.1) over `n` ranks by inverse CDF; fastrand has no Zipf and this is 10 lines.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += 1.0 / (k as f64).powf(s);
            cdf.push(total);
        }
        cdf.iter_mut().for_each(|c| *c /= total);
        Self { cdf }
    }

    fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        self.cdf.partition_point(|c| *c < u).min(self.cdf.len() - 1)
    }
}

/// What one load run measured.
struct Run {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    /// When each successful answer arrived, with its body (only when asked to keep them).
    answers: Vec<(Instant, axum::body::Bytes)>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
}

/// Posts `n` bodies made by `body(i)` to `url` from `concurrency` connections.
async fn load(
    url: &str,
    n: usize,
    concurrency: usize,
    body: Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>,
) -> Run {
    load_with(url, n, concurrency, body, false).await
}

/// [`load`], keeping every successful answer's body and arrival time when `keep` is set.
async fn load_with(
    url: &str,
    n: usize,
    concurrency: usize,
    body: Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>,
    keep: bool,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, errors, url, body) = (
            client.clone(),
            next.clone(),
            errors.clone(),
            url.to_string(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut answers = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                match client.post(&url).json(&body(i)).send().await {
                    Ok(r) if r.status().is_success() => {
                        let bytes = r.bytes().await;
                        if let (true, Ok(b)) = (keep, bytes) {
                            answers.push((Instant::now(), b));
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            (lat, answers)
        }));
    }
    let mut latencies_us = Vec::with_capacity(n);
    let mut answers = Vec::new();
    for t in tasks {
        let (lat, a) = t.await.unwrap();
        latencies_us.extend(lat);
        answers.extend(a);
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Run {
        requests: n,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latencies_us,
        answers,
    }
}

/// The intake writer's batches over one round, from leadgate's own `/metrics`: how many
/// accepts shared a transaction and how long one took to be durable.
struct GroupCommit {
    leads: f64,
    batches: f64,
    seconds: f64,
}

impl GroupCommit {
    async fn read(base: &str) -> Self {
        let page = match reqwest::get(format!("{base}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let series = |name: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        Self {
            leads: series("leadgate_intake_batch_leads_sum"),
            batches: series("leadgate_intake_batch_leads_count"),
            seconds: series("leadgate_intake_batch_seconds_sum"),
        }
    }
}

impl std::fmt::Display for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let batches = self.batches.max(1.0);
        write!(
            f,
            "{:.0} leads, {:.2} ms",
            self.leads / batches,
            self.seconds * 1e3 / batches
        )
    }
}

/// The trivial handler: axum answering 202 with a small JSON body, in its own process, so
/// the load generator measures the same stack leadgate's intake sits on.
async fn trivial_server() {
    let app = axum::Router::new().route(
        "/v1/leads",
        post(|| async {
            (
                axum::http::StatusCode::ACCEPTED,
                axum::Json(json!({"id": "x", "status": "queued"})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "leadgate listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.unwrap();
}

/// The trivial handler's rate around one stage: measured just before and just after it.
struct Ceiling {
    before: f64,
    after: f64,
}

impl Ceiling {
    fn mean(&self) -> f64 {
        (self.before + self.after) / 2.0
    }
}

impl std::fmt::Display for Ceiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trivial {:.0}/s ({:.0} before, {:.0} after)",
            self.mean(),
            self.before,
            self.after
        )
    }
}

/// The machine's CPU time, in ticks, from /proc/stat: (stolen by the hypervisor for other
/// tenants, idle or waiting on the disk, all). This VM loses 10-47% of its CPU to
/// neighbours in some minutes; idle time under load means a stage waits, not computes.
fn cpu_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are in user.
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    (at(7), at(3) + at(4), ticks.iter().take(8).sum())
}

/// One round of a stage: its load, leadgate's CPU a lead, and the trivial rate around it.
struct Round {
    run: Run,
    cpu_us: f64,
    limit: Ceiling,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.run.rate() / self.limit.mean()
    }
}

/// A stage's rounds, in the order they ran.
struct Rounds(Vec<Round>, Machine);

/// The shares of the machine's CPU time stolen by other tenants and left idle while a
/// stage ran (its rounds and the trivial runs between them).
struct Machine {
    steal: f64,
    idle: f64,
}

impl Machine {
    fn between(before: (u64, u64, u64), after: (u64, u64, u64)) -> Self {
        let total = after.2.saturating_sub(before.2).max(1) as f64;
        Self {
            steal: after.0.saturating_sub(before.0) as f64 / total,
            idle: after.1.saturating_sub(before.1) as f64 / total,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU idle {:.0}%, stolen {:.0}%",
            self.idle * 100.0,
            self.steal * 100.0
        )
    }
}

impl Rounds {
    /// The round whose ratio is the median (the lower middle one for an even count).
    fn median(&self) -> &Round {
        let mut by_ratio: Vec<&Round> = self.0.iter().collect();
        by_ratio.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        by_ratio[(by_ratio.len() - 1) / 2]
    }

    fn errors(&self) -> usize {
        self.0.iter().map(|r| r.run.errors).sum()
    }

    /// Every round's ratio, in order: `0.48/0.52/0.51`.
    fn ratios(&self) -> String {
        let all: Vec<String> = self.0.iter().map(|r| format!("{:.2}", r.ratio())).collect();
        all.join("/")
    }

    /// Every round's CPU a lead, in order.
    fn cpu(&self) -> String {
        let all: Vec<String> = self.0.iter().map(|r| format!("{:.0}", r.cpu_us)).collect();
        all.join("/")
    }
}

struct Proc {
    child: std::process::Child,
    base: String,
}

impl Proc {
    fn spawn(cmd: std::process::Command) -> Proc {
        Self::spawn_until(cmd, "leadgate listening on ")
    }

    /// Spawns `cmd` and waits for its line starting with `prefix`; `base` is the rest of it.
    fn spawn_until(mut cmd: std::process::Command, prefix: &str) -> Proc {
        use std::io::{BufRead, BufReader};
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("process exited").unwrap();
            if let Some(u) = line.strip_prefix(prefix) {
                break u.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Proc { child, base }
    }

    /// CPU seconds (user + system) the process has used so far: per lead, a figure that
    /// the other work on a shared machine disturbs far less than leads/s.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
        let ticks: f64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|t| t.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0);
        ticks / 100.0 // USER_HZ
    }

    /// Peak resident set size (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn leadgate(db: &std::path::Path, workers: usize) -> Proc {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    // Another config folder (e.g. one whose scoring.toml blends in a gbm model).
    if let Ok(config) = std::env::var("LEADGATE_BENCH_CONFIG") {
        cmd.args(["--config", &config]);
    }
    cmd.env(
        "LEADGATE__STORAGE__URL",
        format!("sqlite://{}", db.display()),
    )
    .env("LEADGATE__SERVER__WORKERS", workers.to_string())
    .env("RUST_LOG", "error");
    Proc::spawn(cmd)
}

/// A mock Clearbit (`GET /v2/companies/find?domain=`) with a fixed latency and a quota it
/// enforces like the vendor: past `quota` requests in a second it answers 429 with
/// Retry-After. Counts what it saw.
#[derive(Default)]
struct Upstream {
    calls: AtomicUsize,
    rejected: AtomicUsize,
    window: std::sync::Mutex<(u64, u32)>,
}

async fn mock_clearbit(quota: u32, latency: Duration) -> (String, Arc<Upstream>) {
    use axum::extract::{Query, State};
    use std::collections::HashMap;
    let seen = Arc::new(Upstream::default());
    let app = axum::Router::new()
        .route(
            "/v2/companies/find",
            axum::routing::get(|State((seen, quota, latency)): State<(Arc<Upstream>, u32, Duration)>, Query(q): Query<HashMap<String, String>>| async move {
                let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let over = {
                    let mut w = seen.window.lock().unwrap();
                    if w.0 != second {
                        *w = (second, 0);
                    }
                    w.1 += 1;
                    w.1 > quota
                };
                if over {
                    seen.rejected.fetch_add(1, Ordering::Relaxed);
                    return (axum::http::StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], axum::Json(json!({"error": {"type": "rate_limit"}})));
                }
                seen.calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(latency).await;
                let d = q.get("domain").cloned().unwrap_or_default();
                (axum::http::StatusCode::OK, [("retry-after", "0")], axum::Json(json!({
                    "name": format!("Company {d}"), "domain": d, "category": {"industry": "Software"},
                    "metrics": {"employees": 250, "annualRevenue": 25000000}, "geo": {"countryCode": "US", "stateCode": "CA"},
                    "tech": ["salesforce", "aws"], "foundedYear": 2015
                })))
            }),
        )
        .with_state((seen.clone(), quota, latency));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// leadgate with Clearbit (pointed at the mock) as its only provider, at `rate` requests/s.
fn leadgate_with_clearbit(db: &std::path::Path, base: &str, rate: u32) -> Proc {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "LEADGATE__STORAGE__URL",
            format!("sqlite://{}", db.display()),
        )
        .env("LEADGATE__SERVER__WORKERS", "0")
        .env("LEADGATE__ENRICHMENT__WATERFALL", "clearbit")
        .env("LEADGATE__PROVIDERS__CLEARBIT__API_KEY", "sk_bench")
        .env("LEADGATE__PROVIDERS__CLEARBIT__BASE_URL", base)
        .env(
            "LEADGATE__PROVIDERS__CLEARBIT__RATE_LIMIT_PER_SECOND",
            rate.to_string(),
        )
        .env("LEADGATE__PROVIDERS__CLEARBIT__DAILY_BUDGET", "100000000")
        .env("LEADGATE__CACHE__CAPACITY", "200000")
        .env("RUST_LOG", "error");
    Proc::spawn(cmd)
}

/// What the mock CRM saw: every write with the time it arrived, keyed by the lead id
/// leadgate sends as `objectWriteTraceId`, and every enrollment.
#[derive(Default)]
struct CrmSeen {
    searches: AtomicUsize,
    writes: AtomicUsize,
    enrollments: AtomicUsize,
    /// Every request, for the CRM round trips per lead.
    calls: AtomicUsize,
    written_at: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// A mock HubSpot (reference/connector-wire-formats.md §1.6, §1.7, §1.11) with a fixed
/// latency per call: search finds no contact, so each lead is written once by batch upsert
/// (by email); enroll-routed leads are then checked for an enrollment (404) and enrolled.
async fn mock_hubspot(latency: Duration) -> (String, Arc<CrmSeen>) {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::routing::get;
    type S = State<(Arc<CrmSeen>, Duration)>;
    let seen = Arc::new(CrmSeen::default());
    let app = axum::Router::new()
        .route(
            "/crm/v3/objects/contacts/search",
            post(|State((seen, latency)): S| async move {
                seen.calls.fetch_add(1, Ordering::Relaxed);
                seen.searches.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(latency).await;
                axum::Json(json!({"total": 0, "results": []}))
            }),
        )
        .route(
            "/crm/v3/objects/contacts/batch/upsert",
            post(|State((seen, latency)): S, axum::Json(body): axum::Json<serde_json::Value>| async move {
                let arrived = Instant::now();
                seen.calls.fetch_add(1, Ordering::Relaxed);
                let mut results = Vec::new();
                for input in body["inputs"].as_array().into_iter().flatten() {
                    let n = seen.writes.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Some(lead) = input["objectWriteTraceId"].as_str() {
                        seen.written_at.lock().unwrap().entry(lead.to_string()).or_insert(arrived);
                    }
                    results.push(json!({"id": n.to_string(), "new": true, "properties": input["properties"],
                        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "archived": false,
                        "objectWriteTraceId": input["objectWriteTraceId"]}));
                }
                tokio::time::sleep(latency).await;
                axum::Json(json!({"status": "COMPLETE", "results": results,
                    "startedAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:00Z"}))
            }),
        )
        .route(
            "/automation/v4/sequences/enrollments/contact/{id}",
            get(|State((seen, latency)): S, Path(_id): Path<String>| async move {
                seen.calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(latency).await;
                (StatusCode::NOT_FOUND, axum::Json(json!({"status": "error", "message": "not enrolled", "category": "OBJECT_NOT_FOUND"})))
            }),
        )
        .route(
            "/automation/v4/sequences/enrollments",
            post(|State((seen, latency)): S| async move {
                seen.calls.fetch_add(1, Ordering::Relaxed);
                let n = seen.enrollments.fetch_add(1, Ordering::Relaxed) + 1;
                tokio::time::sleep(latency).await;
                axum::Json(json!({"id": n.to_string(), "toEmail": "x@example.com",
                    "enrolledAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}))
            }),
        )
        .with_state((seen.clone(), latency));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

/// leadgate processing its queue with `workers` workers: enrichment from the local file,
/// then the mock Clearbit; delivery to the mock HubSpot (write-back, owner, sequences).
/// The HubSpot and Clearbit quotas are lifted so the figure is leadgate's, not a vendor's.
fn leadgate_delivering(dir: &std::path::Path, clearbit: &str, crm: &str, workers: usize) -> Proc {
    let repo = |p: &str| format!("{}/{p}", env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        r#"scoring = "{scoring}"
routing = "{routing}"
connectors = "{connectors}"
[server]
workers = {workers}
[storage]
url = "sqlite://{db}"
[normalize]
free_email_domains = "{free}"
disposable_email_domains = "{disposable}"
[enrichment]
waterfall = ["local_file", "clearbit"]
stop_when = ["company.industry", "company.employees"]
[providers.local_file]
file = "{firmographics}"
[providers.clearbit]
api_key = "sk_bench"
base_url = "{clearbit}"
rate_limit_per_second = 100000
daily_budget = 100000000
[providers.hubspot]
api_key = "pat-bench"
base_url = "{crm}"
rate_limit_per_second = 100000
burst = 1000
daily_limit = 100000000
{batching}[delivery]
target = "hubspot"
[[delivery.field]]
canonical = "company.industry"
property = "industry"
[[delivery.field]]
canonical = "score"
property = "leadgate_score"
policy = "overwrite"
[[delivery.field]]
canonical = "grade"
property = "leadgate_grade"
[[delivery.sequence]]
name = "mid-funnel"
id = "987654"
user_id = "9586504"
sender_email = "rep@example.com"
[[delivery.sequence]]
name = "awareness"
id = "987655"
user_id = "9586504"
sender_email = "rep@example.com"
"#,
        scoring = repo("config/scoring.toml"),
        routing = repo("config/routing.toml"),
        connectors = repo("connectors"),
        db = dir.join("e2e.db").display(),
        free = repo("config/free-email-domains.txt"),
        disposable = repo("config/disposable-email-domains.txt"),
        firmographics = repo("config/firmographics.csv"),
        // LEADGATE_BENCH_CRM_BATCH_WAIT (`50ms`): the deliver stage's batched writes.
        batching = std::env::var("LEADGATE_BENCH_CRM_BATCH_WAIT")
            .map(|w| format!("[crm]\nbatch_wait = \"{w}\"\nbatch_size = 100\n"))
            .unwrap_or_default(),
    );
    let file = dir.join("e2e.toml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .env("RUST_LOG", "error");
    Proc::spawn(cmd)
}

/// Waits until the mock CRM has seen `expected` writes, or until writes stop coming for a
/// while (a lead leadgate failed); returns when the last write arrived.
fn wait_for_writes(crm: &CrmSeen, expected: usize) -> Instant {
    const STALL: Duration = Duration::from_secs(30);
    let (mut seen, mut moved) = (crm.writes.load(Ordering::Relaxed), Instant::now());
    while seen < expected && moved.elapsed() < STALL {
        std::thread::sleep(Duration::from_millis(20));
        let now = crm.writes.load(Ordering::Relaxed);
        if now != seen {
            (seen, moved) = (now, Instant::now());
        }
    }
    crm.written_at
        .lock()
        .unwrap()
        .values()
        .max()
        .copied()
        .unwrap_or_else(Instant::now)
}

/// Milliseconds from each 202 (its arrival at the client) to its lead's CRM write, sorted.
fn accept_to_write(crm: &CrmSeen, answers: &[(Instant, axum::body::Bytes)]) -> Vec<f64> {
    let written = crm.written_at.lock().unwrap();
    let mut ms: Vec<f64> = answers
        .iter()
        .filter_map(|(at, body)| {
            let v: serde_json::Value = serde_json::from_slice(body).ok()?;
            let w = written.get(v["id"].as_str()?)?;
            Some(w.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Posts `n` bodies `body(first..first + n)` at a steady `rate` per second (open loop: a
/// slow answer does not delay the next request). Each latency runs from the tick that sent
/// its request, so answers queued behind a slow one count their wait.
async fn load_paced(
    url: &str,
    first: usize,
    n: usize,
    rate: f64,
    body: Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>,
) -> Run {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::with_capacity(n);
    let started = Instant::now();
    for i in first..first + n {
        tick.tick().await;
        let (client, url, b) = (client.clone(), url.to_string(), body(i));
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client.post(&url).json(&b).send().await.ok()?;
            if !r.status().is_success() {
                return None;
            }
            let bytes = r.bytes().await.ok()?;
            let at = Instant::now();
            Some((at.duration_since(sent).as_micros() as u64, (at, bytes)))
        }));
    }
    let (mut latencies_us, mut answers) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for t in tasks {
        if let Some((us, answer)) = t.await.ok().flatten() {
            latencies_us.push(us);
            answers.push(answer);
        }
    }
    latencies_us.sort_unstable();
    Run {
        requests: n,
        errors: n - answers.len(),
        elapsed: started.elapsed(),
        latencies_us,
        answers,
    }
}

fn row(name: &str, value: String, limit: String, verdict: &str) {
    println!("| {name:<44} | {value:>26} | {limit:>42} | {verdict:<6} |");
}

/// Whether LEADGATE_BENCH_STAGES (all stages when unset) names `stage`.
fn stage(stage: &str) -> bool {
    std::env::var("LEADGATE_BENCH_STAGES")
        .map(|s| s.split(',').any(|s| s.trim() == stage))
        .unwrap_or(true)
}

fn main() {
    if std::env::var("LEADGATE_BENCH_ROLE").as_deref() == Ok("holder") {
        let target = std::env::var("LEADGATE_BENCH_TARGET")
            .unwrap()
            .parse()
            .unwrap();
        let first = env_usize("LEADGATE_BENCH_FIRST", 2) as u8;
        let per_address = env_usize("LEADGATE_BENCH_PER_ADDRESS", 1_000);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(hostile::hold(
                target,
                first,
                10,
                per_address,
                Duration::from_millis(env_usize("LEADGATE_BENCH_REOPEN_MS", 1_000) as u64),
            ));
        return;
    }
    if std::env::var("LEADGATE_BENCH_ROLE").as_deref() == Ok("trivial") {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(trivial_server());
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs us with no such flag and
    // only wants to know we build.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env_usize("LEADGATE_BENCH_LEADS", 20_000);
    let conc = env_usize("LEADGATE_BENCH_CONCURRENCY", 64);
    let companies = env_usize("LEADGATE_BENCH_COMPANIES", 1_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Domains the shipped firmographics file knows, drawn Zipf-wise.
    let domains: Vec<String> = std::fs::read_to_string("config/firmographics.csv")
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect();
    let zipf = Arc::new(Zipf::new(domains.len().min(companies), 1.1));
    let domains = Arc::new(domains);
    let lead_body = {
        let (zipf, domains) = (zipf.clone(), domains.clone());
        Arc::new(move |i: usize| {
            let mut rng = fastrand::Rng::with_seed(i as u64);
            let d = &domains[zipf.sample(&mut rng)];
            json!({"email": format!("person{i}@{d}"), "title": "VP Sales", "source": "webform"})
        }) as Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>
    };

    println!(
        "\nleadgate end-to-end benchmark — {n} leads, {conc} connections, {} CPU(s)\n",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!(
        "| {:<44} | {:>26} | {:>42} | {:<6} |",
        "figure", "leadgate", "limit (same run)", "target"
    );
    println!("|{:-<46}|{:-<28}|{:-<44}|{:-<8}|", "", "", "", "");

    // 1. The trivial handler: the ceiling for this machine and generator.
    // It stays up for the whole run: each ratio below divides by the trivial rate measured
    // just before and just after its stage (their mean), because this machine's speed moves
    // by 1.5-2x within minutes and one measurement at the start let a slow minute make a
    // stage look better (or worse) than it is.
    let trivial_proc = {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.env("LEADGATE_BENCH_ROLE", "trivial");
        Proc::spawn(cmd)
    };
    let trivial_url = format!("{}/v1/leads", trivial_proc.base);
    let ceiling = || {
        rt.block_on(load(&trivial_url, n, conc, lead_body.clone()))
            .rate()
    };
    let trivial = {
        let cpu = trivial_proc.cpu_seconds();
        let run = rt.block_on(load(&trivial_url, n, conc, lead_body.clone()));
        (run, (trivial_proc.cpu_seconds() - cpu) * 1e6 / n as f64)
    };
    let (trivial, trivial_cpu_us) = trivial;
    row(
        "trivial axum handler (requests/s)",
        format!(
            "{:.0} ({trivial_cpu_us:.0} µs CPU, p99 {:.1} ms)",
            trivial.rate(),
            trivial.pct(0.99)
        ),
        "the ceiling: this machine and generator".into(),
        "",
    );

    // One stage measured in rounds, each bracketed by the trivial handler: trivial, stage,
    // trivial, stage, ..., trivial. Each round's ratio divides by the mean of the trivial
    // runs on either side of it, and the table reads the median round. Another tenant's
    // CPU steal on this VM (vmstat `st` at 10-47% in one run) moves a single ratio by ±0.1
    // from one second to the next; the median of five moves far less.
    let rounds = env_usize("LEADGATE_BENCH_ROUNDS", 5).max(1);
    let measure = |stage: &mut dyn FnMut() -> (Run, f64)| {
        let machine = cpu_ticks();
        let mut before = ceiling();
        let mut all = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let (run, cpu_us) = stage();
            let after = ceiling();
            all.push(Round {
                run,
                cpu_us,
                limit: Ceiling { before, after },
            });
            before = after;
        }
        Rounds(all, Machine::between(machine, cpu_ticks()))
    };
    // One load against `url`, with leadgate's CPU a lead.
    let load_measuring_cpu = |p: &Proc, url: &str| {
        let cpu = p.cpu_seconds();
        let run = rt.block_on(load(url, n, conc, lead_body.clone()));
        (run, (p.cpu_seconds() - cpu) * 1e6 / n as f64)
    };

    if stage("intake") {
        // 2. Durable intake, each round on a new store, so every round does the same work.
        let mut round = 0;
        let mut commits = Vec::with_capacity(rounds);
        let intake = measure(&mut || {
            round += 1;
            let p = leadgate(&dir.path().join(format!("intake-{round}.db")), 0);
            let measured = load_measuring_cpu(&p, &format!("{}/v1/leads", p.base));
            commits.push(rt.block_on(GroupCommit::read(&p.base)));
            measured
        });
        let median = intake.median();
        let median_round = intake.0.iter().position(|r| std::ptr::eq(r, median));
        let met = if median.ratio() >= 0.5 {
            "met"
        } else {
            "missed"
        };
        row(
            "durable intake POST /v1/leads (leads/s)",
            format!(
                "{:.0} (p99 {:.1} ms, {} err)",
                median.run.rate(),
                median.run.pct(0.99),
                intake.errors()
            ),
            median.limit.to_string(),
            met,
        );
        row(
            "  ratio to the trivial handler",
            format!("{:.2} (median of {})", median.ratio(), rounds),
            format!("≥ 0.50; rounds {}", intake.ratios()),
            met,
        );
        row(
            "  leadgate CPU per lead (µs)",
            format!("{:.0}", median.cpu_us),
            format!("rounds {}; {}", intake.cpu(), intake.1),
            "",
        );
        let each: Vec<String> = commits.iter().map(ToString::to_string).collect();
        row(
            "  group commit (a batch, its time to disk)",
            median_round
                .and_then(|i| commits.get(i))
                .map_or_else(String::new, ToString::to_string),
            format!("rounds {}", each.join("; ")),
            "",
        );
    }
    if stage("evaluate") {
        // 3. Synchronous evaluate, warm (the local firmographics provider answers from memory).
        let p = leadgate(&dir.path().join("eval.db"), 0);
        let url = format!("{}/v1/evaluate", p.base);
        rt.block_on(load(&url, n.min(2_000), conc, lead_body.clone())); // warm-up
        let evaluate = measure(&mut || load_measuring_cpu(&p, &url));
        let median = evaluate.median();
        let (eval, eratio) = (&median.run, median.ratio());
        let met = if eratio >= 0.5 { "met" } else { "missed" };
        row(
            "evaluate, warm cache (leads/s)",
            format!("{:.0} ({} err)", eval.rate(), evaluate.errors()),
            median.limit.to_string(),
            met,
        );
        row(
            "  ratio to the trivial handler",
            format!("{eratio:.2} (median of {rounds})"),
            format!("≥ 0.50; rounds {}", evaluate.ratios()),
            met,
        );
        // At saturation a closed-loop client's latency is queueing: 64 connections / rate
        // (Little's law), the trivial handler's own p99 included. The target is read below
        // saturation too.
        row(
            "  evaluate p99 at 64 connections (ms)",
            format!(
                "{:.2} (p50 {:.2}, p90 {:.2})",
                eval.pct(0.99),
                eval.pct(0.5),
                eval.pct(0.9)
            ),
            format!(
                "queueing: 64 / rate = {:.2} ms; trivial p99 {:.1}",
                conc as f64 * 1000.0 / eval.rate(),
                trivial.pct(0.99)
            ),
            "",
        );
        // And at 8 connections, a steady load well under saturation, against leadgate and
        // then the trivial handler: a stall of the machine itself shows in both.
        const LIGHT: usize = 8;
        let light_n = n.min(20_000);
        let light = rt.block_on(load(&url, light_n, LIGHT, lead_body.clone()));
        let light_p99 = light.pct(0.99);
        let trivial_light = rt.block_on(load(&trivial_url, light_n, LIGHT, lead_body.clone()));
        row(
            &format!("  evaluate p99 at {LIGHT} connections (ms)"),
            format!(
                "{light_p99:.2} (p50 {:.2}, {:.0}/s)",
                light.pct(0.5),
                light.rate()
            ),
            format!(
                "< 5 ms; trivial at {LIGHT} conns {:.2}",
                trivial_light.pct(0.99)
            ),
            if light_p99 < 5.0 && light.errors == 0 {
                "met"
            } else {
                "missed"
            },
        );
        row(
            "  leadgate CPU per lead (µs)",
            format!("{:.0}", median.cpu_us),
            format!("rounds {}; {}", evaluate.cpu(), evaluate.1),
            "",
        );
        row(
            "  peak RSS of leadgate (MiB)",
            format!("{:.1}", p.peak_rss_mib()),
            "—".into(),
            "",
        );
        drop(p);
    }
    if stage("events") {
        // 3b. `POST /v1/events` by email (issue 25), each round on a new store whose people
        // were sent first through intake, so that every event names a known person and
        // every round does the same work. Each request carries one event.
        let event_body = {
            let (zipf, domains) = (zipf.clone(), domains.clone());
            Arc::new(move |i: usize| {
                let mut rng = fastrand::Rng::with_seed(i as u64);
                let d = &domains[zipf.sample(&mut rng)];
                json!({"email": format!("person{i}@{d}"), "type": "page_view",
                       "at": "2026-12-01T10:00:00Z", "path": format!("/pricing/{}", i % 7)})
            }) as Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>
        };
        let mut round = 0;
        let events = measure(&mut || {
            round += 1;
            let p = leadgate(&dir.path().join(format!("events-{round}.db")), 0);
            // A person intake refused would answer 404 below, and count as an error there.
            rt.block_on(load(
                &format!("{}/v1/leads", p.base),
                n,
                conc,
                lead_body.clone(),
            ));
            let cpu = p.cpu_seconds();
            let run = rt.block_on(load(
                &format!("{}/v1/events", p.base),
                n,
                conc,
                event_body.clone(),
            ));
            (run, (p.cpu_seconds() - cpu) * 1e6 / n as f64)
        });
        let median = events.median();
        let met = if median.ratio() >= 0.5 {
            "met"
        } else {
            "missed"
        };
        row(
            "POST /v1/events, one event (requests/s)",
            format!(
                "{:.0} (p99 {:.1} ms, {} err)",
                median.run.rate(),
                median.run.pct(0.99),
                events.errors()
            ),
            median.limit.to_string(),
            met,
        );
        row(
            "  ratio to the trivial handler",
            format!("{:.2} (median of {})", median.ratio(), rounds),
            format!("≥ 0.50; rounds {}", events.ratios()),
            met,
        );
        row(
            "  leadgate CPU per request (µs)",
            format!("{:.0}", median.cpu_us),
            format!("rounds {}; {}", events.cpu(), events.1),
            "",
        );
    }
    // 4. Cold cache against a provider quota: every company fetched once, at the quota.
    let quota = env_usize("LEADGATE_BENCH_QUOTA", 200) as u32;
    let upstream_rt = tokio::runtime::Runtime::new().unwrap();
    let cold_zipf = Arc::new(Zipf::new(companies, 1.1));
    let picks: Vec<usize> = (0..n)
        .map(|i| cold_zipf.sample(&mut fastrand::Rng::with_seed(i as u64 ^ 0x5eed)))
        .collect();
    let distinct = picks.iter().collect::<std::collections::HashSet<_>>().len();
    let picks = Arc::new(picks);
    if stage("cold") {
        let (base, seen) = upstream_rt.block_on(mock_clearbit(quota, Duration::from_millis(20)));
        let p = leadgate_with_clearbit(&dir.path().join("cold.db"), &base, quota);
        let url = format!("{}/v1/evaluate", p.base);
        let cold_body = {
            let picks = picks.clone();
            Arc::new(
                move |i: usize| json!({"email": format!("p{i}@company-{}.io", picks[i]), "title": "VP Sales"}),
            ) as Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>
        };
        let cold = rt.block_on(load(&url, n, conc, cold_body));
        let calls = seen.calls.load(Ordering::Relaxed);
        let floor = distinct as f64 / f64::from(quota);
        let ratio_t = cold.elapsed.as_secs_f64() / floor;
        row(
            &format!("cold cache: upstream calls ({n} leads)"),
            format!("{calls}"),
            format!("{distinct} distinct companies"),
            if calls == distinct { "met" } else { "missed" },
        );
        row(
            "  429s caused by leadgate",
            format!("{}", seen.rejected.load(Ordering::Relaxed)),
            format!("quota {quota}/s"),
            if seen.rejected.load(Ordering::Relaxed) == 0 {
                "met"
            } else {
                "missed"
            },
        );
        row(
            "  wall time (s)",
            format!(
                "{:.2} ({:.2}× the floor)",
                cold.elapsed.as_secs_f64(),
                ratio_t
            ),
            format!("floor {floor:.2} s = distinct / quota"),
            if ratio_t <= 1.15 { "met" } else { "missed" },
        );
        row(
            "  evaluate p50 / p99 (ms)",
            format!("{:.1} / {:.1}", cold.pct(0.5), cold.pct(0.99)),
            "—".into(),
            "",
        );
        drop(p);
    }
    if stage("e2e") {
        // 5. End to end: intake → queue → enrichment → scoring → routing → CRM delivery, on a
        // mock HubSpot that notes when each lead's write arrives. First a flood (throughput, with
        // the queue backing up), then a paced run at half that rate (latency without a backlog).
        let e2e_n = env_usize("LEADGATE_BENCH_E2E_LEADS", n.min(5_000));
        let workers = env_usize("LEADGATE_BENCH_WORKERS", 8);
        let crm_ms = env_usize("LEADGATE_BENCH_CRM_LATENCY_MS", 20) as u64;
        let (clearbit, _) =
            upstream_rt.block_on(mock_clearbit(1_000_000, Duration::from_millis(20)));
        let (crm_base, crm) = upstream_rt.block_on(mock_hubspot(Duration::from_millis(crm_ms)));
        let e2e_dir = dir.path().join("e2e");
        std::fs::create_dir_all(&e2e_dir).unwrap();
        let p = leadgate_delivering(&e2e_dir, &clearbit, &crm_base, workers);
        let url = format!("{}/v1/leads", p.base);
        let e2e_body = {
            let picks = picks.clone();
            // Every fourth lead writes from a free mailbox: a lower grade, routed to a nurture
            // sequence, so enrollments are delivered too.
            Arc::new(move |i: usize| {
                let company = format!("company-{}.io", picks[i % picks.len()]);
                let email = if i % 4 == 3 {
                    format!("e{i}@gmail.com")
                } else {
                    format!("e{i}@{company}")
                };
                json!({"email": email, "company": company, "first_name": "Ada",
                       "title": "VP Sales", "source": "webform"})
            }) as Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>
        };
        let started = Instant::now();
        let flood = rt.block_on(load_with(&url, e2e_n, conc, e2e_body.clone(), true));
        let accepted = flood.answers.len();
        let last_write = wait_for_writes(&crm, accepted);
        let writes = crm.writes.load(Ordering::Relaxed);
        let e2e_rate = writes as f64 / last_write.duration_since(started).as_secs_f64();
        let flood_lat = accept_to_write(&crm, &flood.answers);
        let calls_per_lead = crm.calls.load(Ordering::Relaxed) as f64 / writes.max(1) as f64;
        let ceiling = workers as f64 / (calls_per_lead * crm_ms as f64 / 1000.0);
        // LEADGATE_BENCH_E2E_PACED_RATE fixes the paced run's rate (leads/s), to compare
        // latency at one load across builds; unset, half the flood's rate.
        let paced_rate = std::env::var("LEADGATE_BENCH_E2E_PACED_RATE")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or((e2e_rate / 2.0).max(1.0));
        let paced_n = ((paced_rate * 10.0) as usize).clamp(50, e2e_n.max(50));
        let paced = rt
            .block_on(load_paced(&url, e2e_n, paced_n, paced_rate, e2e_body))
            .answers;
        wait_for_writes(&crm, accepted + paced.len());
        let paced_lat = accept_to_write(&crm, &paced);
        row(
            &format!("end to end, {e2e_n} leads → CRM write (leads/s)"),
            format!("{e2e_rate:.0} ({} err)", flood.errors),
            format!(
                "{ceiling:.0}/s: {workers} workers, {calls_per_lead:.1} CRM calls × {crm_ms} ms"
            ),
            "",
        );
        row(
            "  CRM writes counted / leads accepted",
            format!(
                "{writes} / {accepted} (+{} enrolled)",
                crm.enrollments.load(Ordering::Relaxed)
            ),
            "writes = leads".into(),
            if writes == accepted { "met" } else { "missed" },
        );
        row(
            "  accept → CRM write p50 / p99, flood (ms)",
            format!("{:.0} / {:.0}", pct(&flood_lat, 0.5), pct(&flood_lat, 0.99)),
            "queue wait of the backlog".into(),
            "",
        );
        row(
            &format!("  same, paced at {paced_rate:.0}/s (ms)"),
            format!("{:.1} / {:.1}", pct(&paced_lat, 0.5), pct(&paced_lat, 0.99)),
            format!("{crm_ms} ms: the CRM search before the write"),
            "",
        );
        drop(p);
    }
    if stage("hostile") {
        // 6. The edge under siege (issue 28): two processes hold 20,000 idle or half-sent
        // connections (1,000 from each of 20 loopback addresses, each under the per-address
        // cap, together over the server's connection cap) and a paced flood posts to webhook
        // connectors that do not exist; intake and /healthz are measured before and during.
        let p = leadgate(&dir.path().join("hostile.db"), 0);
        let base = p.base.clone();
        let intake_url = format!("{base}/v1/leads");
        let probe_for = Duration::from_secs(4);
        let measure_both = |label: &str| {
            let probe = rt.spawn(hostile::probe_healthz(
                base.clone(),
                Duration::from_millis(10),
                probe_for,
            ));
            let cpu = p.cpu_seconds();
            let run = rt.block_on(load(&intake_url, n, conc, lead_body.clone()));
            let cpu_us = (p.cpu_seconds() - cpu) * 1e6 / n as f64;
            let (healthz, failed) = rt.block_on(probe).unwrap();
            println!(
                "|   {label}: intake {:.0}/s ({} err, {cpu_us:.0} µs CPU), /healthz p99 {:.1} ms ({failed} failed)",
                run.rate(),
                run.errors,
                pct(&healthz, 0.99)
            );
            (run, pct(&healthz, 0.99), failed)
        };
        let per_address = env_usize("LEADGATE_BENCH_PER_ADDRESS", 1_000);
        let reopen_ms = env_usize("LEADGATE_BENCH_REOPEN_MS", 1_000);
        let before = ceiling();
        let (calm, calm_p99, _) = measure_both("unloaded");
        let addr = base.trim_start_matches("http://").to_string();
        let holders: Vec<Proc> = [2u8, 12]
            .iter()
            .map(|first| {
                let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
                cmd.env("LEADGATE_BENCH_ROLE", "holder")
                    .env("LEADGATE_BENCH_TARGET", &addr)
                    .env("LEADGATE_BENCH_FIRST", first.to_string())
                    .env("LEADGATE_BENCH_PER_ADDRESS", per_address.to_string())
                    .env("LEADGATE_BENCH_REOPEN_MS", reopen_ms.to_string());
                Proc::spawn_until(cmd, "holding ")
            })
            .collect();
        let held: usize = holders
            .iter()
            .map(|h| h.base.parse::<usize>().unwrap_or(0))
            .sum();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = Arc::new(hostile::Flood::default());
        let flood_rate = env_usize("LEADGATE_BENCH_FLOOD_RATE", 1_000) as u32;
        let flooding = rt.spawn(hostile::flood_bad_webhooks(
            base.clone(),
            40,
            flood_rate,
            stop.clone(),
            flood.clone(),
        ));
        std::thread::sleep(Duration::from_secs(1));
        let metrics_page = || {
            rt.block_on(async {
                reqwest::get(format!("{base}/metrics"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            })
        };
        let open_before = hostile::metric(&metrics_page(), "leadgate_http_connections");
        let (siege, siege_p99, siege_failed) = measure_both("under siege");
        let page = metrics_page();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = rt.block_on(flooding);
        drop(holders);
        // The machine's speed moves within minutes: unloaded intake again, once the siege
        // is lifted, and the ratio divides by the mean of the two.
        std::thread::sleep(Duration::from_secs(2));
        let (calm_after, _, _) = measure_both("unloaded again");
        let after = ceiling();
        let calm_rate = (calm.rate() + calm_after.rate()) / 2.0;
        let ratio = siege.rate() / calm_rate;
        let met = if ratio >= 0.9 && siege.errors == 0 {
            "met"
        } else {
            "missed"
        };
        row(
            "siege: intake while 20,000 conns are held (leads/s)",
            format!("{:.0} ({} err)", siege.rate(), siege.errors),
            format!(
                "unloaded {:.0}; trivial {:.0}→{:.0}",
                calm.rate(),
                before,
                after
            ),
            met,
        );
        row(
            "  ratio to unloaded intake",
            format!("{ratio:.2}"),
            "≥ 0.90".into(),
            met,
        );
        row(
            "  /healthz p99 (ms)",
            format!("{siege_p99:.1} ({siege_failed} failed)"),
            format!("unloaded {calm_p99:.1}"),
            "",
        );
        let load = |name: &str| hostile::metric(&page, name);
        row(
            "  connections: held open by the attackers / by leadgate",
            format!("{held} / {open_before:.0} (reopened after {reopen_ms} ms)"),
            format!(
                "evicted {:.0}, refused {:.0}",
                load("leadgate_connections_evicted_total"),
                load("leadgate_connections_refused_total")
            ),
            "",
        );
        let f = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
        row(
            "  bad-webhook flood: sent (404 / 429 / 503 / other)",
            format!(
                "{} ({} / {} / {} / {})",
                f(&flood.sent),
                f(&flood.not_found),
                f(&flood.limited),
                f(&flood.refused),
                f(&flood.other)
            ),
            format!("paced at {flood_rate}/s"),
            "",
        );
        row(
            "  leadgate peak RSS (MiB)",
            format!("{:.1}", p.peak_rss_mib()),
            "—".into(),
            "",
        );
        drop(p);
    }
    if stage("memory") {
        // 6. Memory with many cached companies.
        let many = env_usize("LEADGATE_BENCH_MEMORY_COMPANIES", 100_000);
        let (base, _seen) =
            upstream_rt.block_on(mock_clearbit(1_000_000, Duration::from_millis(1)));
        let p = leadgate_with_clearbit(&dir.path().join("mem.db"), &base, 100_000);
        let url = format!("{}/v1/evaluate", p.base);
        let mem_body = Arc::new(|i: usize| json!({"email": format!("m{i}@company-{i}.io")}))
            as Arc<dyn Fn(usize) -> serde_json::Value + Send + Sync>;
        let mem = rt.block_on(load(&url, many, conc, mem_body));
        let rss = p.peak_rss_mib();
        row(
            &format!("memory: peak RSS, {many} cached companies (MiB)"),
            format!("{rss:.1} ({:.0} leads/s)", mem.rate()),
            "< 250 MiB".into(),
            if rss < 250.0 { "met" } else { "missed" },
        );
        drop(p);
    }
    println!();
}
