//! Enrichment benchmarks against a local mock vendor (127.0.0.1 only).
//!
//! 1. Cache + coalescing: a Zipf-distributed stream of leads (a few domains are very common,
//!    most are rare), enriched concurrently; upstream calls vs unique domains (target: equal).
//! 2. Limiter under saturation: far more lookups than the quota allows; the request rate the
//!    vendor sees vs the configured quota (target: 95–100%), and 429s caused by us (target: 0).
//! 3. Criterion micro-benchmark: mapping a vendor answer through a manifest's response map.
//!
//! Run: `cargo bench --bench enrichment` (figures are printed before criterion's output).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, Criterion};
use futures::StreamExt;
use leadgate::connector::http::template::Vars;
use leadgate::enrich::{build, Waterfall};
use leadgate::lead::RawLead;
use leadgate::normalize::Normalizer;
use leadgate::settings::Settings;
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const LEADS: usize = 5_000;
const DOMAINS: usize = 1_000;
const ZIPF_S: f64 = 1.1;
const CONCURRENCY: usize = 64;
const QUOTA_PER_SECOND: u32 = 40;
const SATURATION_SECONDS: u64 = 5;

fn company(domain: &str) -> Value {
    json!({"name": "Acme", "domain": domain, "category": {"industry": "Software"},
           "metrics": {"employees": 250}, "geo": {"countryCode": "US"}})
}

/// A vendor that counts arrivals in a sliding one-second window and answers 429 past its quota.
#[derive(Clone)]
struct Vendor {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    rejected: Arc<Mutex<usize>>,
    quota: usize,
    delay: Duration,
}

impl Respond for Vendor {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut a = self.arrivals.lock().unwrap();
        a.push(now);
        if a.iter()
            .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
            .count()
            > self.quota
        {
            *self.rejected.lock().unwrap() += 1;
            return ResponseTemplate::new(429).insert_header("retry-after", "1");
        }
        let domain = r
            .url
            .query_pairs()
            .find(|(k, _)| k == "domain")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        ResponseTemplate::new(200)
            .set_body_json(company(&domain))
            .set_delay(self.delay)
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    waterfall: Arc<Waterfall>,
    vendor: Vendor,
    _server: MockServer,
}

async fn harness(provider_extra: &str, quota: usize, delay: Duration) -> Harness {
    let vendor = Vendor {
        arrivals: Arc::default(),
        rejected: Arc::default(),
        quota,
        delay,
    };
    let server = MockServer::start().await;
    Mock::given(path("/v2/companies/find"))
        .respond_with(vendor.clone())
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let connectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
    let text = format!(
        "connectors = {connectors:?}\n[enrichment]\nwaterfall = [\"clearbit\"]\n[providers.clearbit]\napi_key = \"bench\"\nbase_url = \"{}\"\n{provider_extra}\n",
        server.uri()
    );
    std::fs::write(dir.path().join("leadgate.toml"), text).unwrap();
    let settings =
        Settings::load_with_env(&dir.path().join("leadgate.toml"), Default::default()).unwrap();
    let built = build::providers(&settings).unwrap();
    Harness {
        _dir: dir,
        waterfall: Arc::new(
            Waterfall::new(built.providers, vec![], Default::default())
                .with_validation(built.validation),
        ),
        vendor,
        _server: server,
    }
}

/// Ranks 1..=n drawn with probability ∝ 1/rank^s (inverse CDF over the precomputed table).
fn zipf_stream(n: usize, draws: usize, s: f64, seed: u64) -> Vec<usize> {
    let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..draws)
        .map(|_| {
            let u = rng.f64();
            cdf.partition_point(|c| *c < u).min(n - 1)
        })
        .collect()
}

fn lead(email: &str) -> leadgate::lead::Lead {
    let raw = RawLead(json!({ "email": email }).as_object().unwrap().clone());
    Normalizer::default().normalize(&raw).unwrap()
}

async fn zipf_figures() {
    let h = harness(
        "rate_limit_per_second = 5000\nburst = 100",
        usize::MAX,
        Duration::from_millis(20),
    )
    .await;
    let stream = zipf_stream(DOMAINS, LEADS, ZIPF_S, 42);
    let mut unique: Vec<usize> = stream.clone();
    unique.sort_unstable();
    unique.dedup();
    let started = Instant::now();
    futures::stream::iter(stream.iter().enumerate())
        .map(|(i, d)| {
            let w = h.waterfall.clone();
            async move {
                w.enrich(lead(&format!("p{i}@company{d}.io")), Utc::now())
                    .await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let calls = h.vendor.arrivals.lock().unwrap().len();
    println!(
        "zipf stream: {LEADS} leads over {} unique domains (s = {ZIPF_S}, {CONCURRENCY} concurrent): {calls} upstream calls — {:.3} calls per unique domain (target 1.000), {:.1} s",
        unique.len(),
        calls as f64 / unique.len() as f64,
        started.elapsed().as_secs_f64()
    );
}

async fn saturation_figures() {
    let h = harness(
        &format!("rate_limit_per_second = {QUOTA_PER_SECOND}"),
        QUOTA_PER_SECOND as usize,
        Duration::from_millis(5),
    )
    .await;
    let demand = QUOTA_PER_SECOND as usize * SATURATION_SECONDS as usize * 3;
    let deadline = Instant::now() + Duration::from_secs(SATURATION_SECONDS);
    let domains: Vec<String> = (0..demand).map(|i| format!("p@sat{i}.io")).collect();
    futures::stream::iter(domains.iter())
        .take_while(|_| std::future::ready(Instant::now() < deadline))
        .map(|email| {
            let w = h.waterfall.clone();
            async move { w.enrich(lead(email), Utc::now()).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let arrivals = h.vendor.arrivals.lock().unwrap().clone();
    let rejected = *h.vendor.rejected.lock().unwrap();
    // The steady-state rate: requests after the first, over the time they span.
    let span = arrivals
        .last()
        .unwrap()
        .duration_since(arrivals[0])
        .as_secs_f64();
    let rate = (arrivals.len() - 1) as f64 / span;
    let peak = (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|t| t.duration_since(arrivals[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "saturation: quota {QUOTA_PER_SECOND}/s, {CONCURRENCY} concurrent callers for {SATURATION_SECONDS} s: {} requests at {rate:.2}/s = {:.1}% of quota (target 95–100%), busiest 1-s window {peak}, 429s caused by us: {rejected} (target 0)",
        arrivals.len(),
        100.0 * rate / f64::from(QUOTA_PER_SECOND)
    );
}

fn figures() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(zipf_figures());
    rt.block_on(saturation_figures());
}

fn mapping(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors");
    let pdl = leadgate::connector::registry::load_file(&dir.join("peopledatalabs.toml")).unwrap();
    let hunter = leadgate::connector::registry::load_file(&dir.join("hunter.toml")).unwrap();
    let pdl_op = &pdl.operations["company_enrich"];
    let hunter_op = &hunter.operations["domain_search"];
    let pdl_body = json!({"status": 200, "likelihood": 6, "display_name": "People Data Labs", "name": "people data labs",
        "website": "peopledatalabs.com", "employee_count": 83, "founded": 2015, "industry": "computer software",
        "location": {"locality": "san francisco", "region": "california", "country": "united states"},
        "inferred_revenue": "$50M-$100M", "total_funding_raised": 55250000});
    let emails: Vec<Value> = (0..10)
        .map(|i| json!({"value": format!("p{i}@acme.io"), "position": "VP Sales", "seniority": "executive", "department": "sales"}))
        .collect();
    let hunter_body =
        json!({"data": {"domain": "acme.io", "organization": "Acme", "emails": emails}});
    let no_vars = Vars::new();
    let lead_vars = Vars::from([("email", "p7@acme.io".to_string())]);
    let mut g = c.benchmark_group("response_map");
    g.bench_function("pdl_company_10_fields", |b| {
        b.iter(|| pdl_op.map(std::hint::black_box(&pdl_body), &no_vars))
    });
    g.bench_function("hunter_templated_jsonpath", |b| {
        b.iter(|| hunter_op.map(std::hint::black_box(&hunter_body), &lead_vars))
    });
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = mapping
}

fn main() {
    figures();
    micro();
    Criterion::default().configure_from_args().final_summary();
}
