//! `leadgate backfill --crm hubspot` over LEADGATE_BENCH_BACKFILL_CONTACTS (100,000) contacts
//! from a mock HubSpot on 127.0.0.1 that enforces its private-app limit the way HubSpot does:
//! 100 requests in any rolling 10 seconds, a 429 TEN_SECONDLY_ROLLING beyond it; the CRM
//! search endpoint has its own limit, 5 in any rolling second per token, a 429 SECONDLY
//! beyond it, and no rate headers on its answers (reference §0, §1.6). Whether HubSpot also
//! counts searches in the 10-second window is not documented: LEADGATE_BENCH_SEARCH_IN_BURST=1
//! counts them there too. Every 429 is counted: leadgate's own pacing should cause none.
//! A search paging past 10,000 results is a 400, as HubSpot's is. Search pages hold 200
//! contacts (`paging.next.after`), batch updates 100 (reference/connector-wire-formats.md
//! §1.6, §1.7, §1.14). The backfill runs in-process against a SQLite store in a temp folder.
//!
//! Prints records/s, the ceiling the limit allows (with and without counting the page
//! reads) and the share reached, the 429s, and the calls made.
//!
//! Run: `cargo bench --bench backfill` (the shipped release profile).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{json, Map, Value};

const LIMIT: usize = 100;
const WINDOW: Duration = Duration::from_secs(10);
const SEARCH_LIMIT: usize = 5;
const SEARCH_WINDOW: Duration = Duration::from_secs(1);

struct Portal {
    /// Contact i has id 10·(i+1) and these properties.
    contacts: Mutex<Vec<Map<String, Value>>>,
    window: Mutex<VecDeque<Instant>>,
    search_window: Mutex<VecDeque<Instant>>,
    search_in_burst: bool,
    searches: AtomicUsize,
    batches: AtomicUsize,
    written: AtomicUsize,
    throttled: AtomicUsize,
}

impl Portal {
    fn new(n: usize) -> Self {
        let contacts = (0..n)
            .map(|i| {
                let mut m = Map::new();
                m.insert(
                    "email".into(),
                    json!(format!("p{i}@company-{}.io", i % 500)),
                );
                m.insert("firstname".into(), json!("Ada"));
                m.insert("company".into(), json!(format!("company-{}.io", i % 500)));
                m.insert("jobtitle".into(), json!("VP Sales"));
                m.insert("lastmodifieddate".into(), json!("2026-11-01T10:00:00.000Z"));
                m
            })
            .collect();
        Self {
            contacts: Mutex::new(contacts),
            window: Mutex::new(VecDeque::new()),
            search_window: Mutex::new(VecDeque::new()),
            search_in_burst: std::env::var("LEADGATE_BENCH_SEARCH_IN_BURST")
                .is_ok_and(|v| v == "1"),
            searches: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
            written: AtomicUsize::new(0),
            throttled: AtomicUsize::new(0),
        }
    }

    /// Takes one search from the search endpoint's own rolling second: `Err` is its 429.
    fn admit_search(&self) -> Result<(), Box<Response>> {
        let now = Instant::now();
        let mut w = self.search_window.lock().unwrap();
        while w
            .front()
            .is_some_and(|t| now.duration_since(*t) >= SEARCH_WINDOW)
        {
            w.pop_front();
        }
        if w.len() >= SEARCH_LIMIT {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            let body = json!({"status": "error", "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT", "correlationId": "bench", "policyName": "SECONDLY"});
            return Err(Box::new(
                (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response(),
            ));
        }
        w.push_back(now);
        Ok(())
    }

    /// Takes one request from the rolling window: `Err` is HubSpot's 429.
    fn admit(&self) -> Result<HeaderMap, Box<Response>> {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap();
        while w.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            w.pop_front();
        }
        let mut h = HeaderMap::new();
        h.insert("X-HubSpot-RateLimit-Max", HeaderValue::from(LIMIT));
        h.insert(
            "X-HubSpot-RateLimit-Interval-Milliseconds",
            HeaderValue::from(10_000),
        );
        if w.len() >= LIMIT {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            h.insert("X-HubSpot-RateLimit-Remaining", HeaderValue::from(0));
            let body = json!({"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT", "correlationId": "bench", "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": "publicapi:private_app-api-calls-ten-secondly:1:1"});
            return Err(Box::new(
                (StatusCode::TOO_MANY_REQUESTS, h, axum::Json(body)).into_response(),
            ));
        }
        w.push_back(now);
        h.insert(
            "X-HubSpot-RateLimit-Remaining",
            HeaderValue::from(LIMIT - w.len()),
        );
        Ok(h)
    }
}

type S = State<Arc<Portal>>;

async fn search(State(p): S, axum::Json(body): axum::Json<Value>) -> Response {
    if let Err(r) = p.admit_search() {
        return *r;
    }
    let headers = if p.search_in_burst {
        match p.admit() {
            Ok(h) => h,
            Err(r) => return *r,
        }
    } else {
        HeaderMap::new()
    };
    p.searches.fetch_add(1, Ordering::Relaxed);
    let after_id: usize = body["filterGroups"][0]["filters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["propertyName"] == "hs_object_id")
        .and_then(|f| f["value"].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit = body["limit"].as_u64().unwrap_or(10).min(200) as usize;
    let offset: usize = body["after"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    if offset + limit > 10_000 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "error",
            "message": "paging past 10,000 results", "category": "VALIDATION_ERROR"})),
        )
            .into_response();
    }
    let wanted: Vec<String> = body["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let contacts = p.contacts.lock().unwrap();
    let first = after_id / 10; // ids are 10·(i+1): the first index with a larger id
    let total = contacts.len().saturating_sub(first);
    let results: Vec<Value> = contacts
        .iter()
        .enumerate()
        .skip(first)
        .take(limit)
        .map(|(i, c)| {
            let id = (10 * (i + 1)).to_string();
            let mut props = Map::new();
            for w in &wanted {
                props.insert(w.clone(), c.get(w).cloned().unwrap_or(Value::Null));
            }
            props.insert("hs_object_id".into(), json!(id));
            json!({"id": id, "properties": props, "createdAt": "2026-01-01T00:00:00Z",
                   "updatedAt": "2026-11-01T10:00:00Z", "archived": false})
        })
        .collect();
    let mut answer = json!({"total": total, "results": results});
    if total > limit {
        answer["paging"] = json!({"next": {"after": limit.to_string()}});
    }
    (headers, axum::Json(answer)).into_response()
}

async fn batch_update(State(p): S, axum::Json(body): axum::Json<Value>) -> Response {
    let headers = match p.admit() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    p.batches.fetch_add(1, Ordering::Relaxed);
    let inputs = body["inputs"].as_array().cloned().unwrap_or_default();
    if inputs.len() > 100 {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "error",
            "message": "too many inputs", "category": "VALIDATION_ERROR"})),
        )
            .into_response();
    }
    let mut contacts = p.contacts.lock().unwrap();
    let mut results = Vec::with_capacity(inputs.len());
    for input in &inputs {
        let id: usize = input["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some(c) = id
            .checked_div(10)
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| contacts.get_mut(i))
        {
            for (k, v) in input["properties"].as_object().into_iter().flatten() {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                c.insert(k.clone(), json!(text));
            }
            p.written.fetch_add(1, Ordering::Relaxed);
            results.push(json!({"id": id.to_string(), "properties": {}, "archived": false}));
        }
    }
    let answer = json!({"status": "COMPLETE", "results": results,
        "startedAt": "2026-12-07T10:00:00Z", "completedAt": "2026-12-07T10:00:00Z"});
    (headers, axum::Json(answer)).into_response()
}

fn main() {
    let n: usize = std::env::var("LEADGATE_BENCH_BACKFILL_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let portal = Arc::new(Portal::new(n));
    let base = rt.block_on(async {
        let app = axum::Router::new()
            .route("/crm/v3/objects/contacts/search", post(search))
            .route("/crm/v3/objects/contacts/batch/update", post(batch_update))
            .with_state(portal.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    });

    let dir = tempfile::tempdir().unwrap();
    let repo = |p: &str| format!("{}/{p}", env!("CARGO_MANIFEST_DIR"));
    let config = format!(
        r#"scoring = "{scoring}"
routing = "{routing}"
connectors = "{connectors}"
[storage]
url = "sqlite://{db}"
[normalize]
free_email_domains = "{free}"
disposable_email_domains = "{disposable}"
[enrichment]
waterfall = ["local_file"]
[providers.local_file]
file = "{firmographics}"
[providers.hubspot]
api_key = "pat-bench-token-0001"
base_url = "{base}"
[delivery]
target = "hubspot"
[[delivery.field]]
canonical = "score"
property = "leadgate_score"
policy = "overwrite"
[[delivery.field]]
canonical = "grade"
property = "leadgate_grade"
"#,
        scoring = repo("config/scoring.toml"),
        routing = repo("config/routing.toml"),
        connectors = repo("connectors"),
        db = dir.path().join("backfill.db").display(),
        free = repo("config/free-email-domains.txt"),
        disposable = repo("config/disposable-email-domains.txt"),
        firmographics = repo("config/firmographics.csv"),
    );
    let file = dir.path().join("leadgate.toml");
    std::fs::write(&file, config).unwrap();

    let report = rt.block_on(async {
        let settings = leadgate::settings::Settings::load(&file).unwrap();
        let pipeline = leadgate::pipeline::Pipeline::build(&settings).unwrap();
        let store = leadgate::store::Store::open(&settings.storage_url())
            .await
            .unwrap();
        let crm = leadgate::crm::Crm::build(&settings).unwrap().unwrap();
        let opts = leadgate::crm::backfill::BackfillOptions {
            connector: "hubspot".into(),
            since: None,
            filter: None,
            dry_run: false,
            limit: None,
            progress_every: Duration::from_secs(30),
        };
        let started = Instant::now();
        let r = leadgate::crm::backfill::run(&pipeline, &store, &crm, &opts)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (r, started.elapsed())
    });
    let (r, took) = report;
    let secs = took.as_secs_f64();
    let rate = r.counts.read as f64 / secs;
    let searches = portal.searches.load(Ordering::Relaxed);
    let batches = portal.batches.load(Ordering::Relaxed);
    let calls = searches + batches;
    let per_sec = LIMIT as f64 / WINDOW.as_secs_f64();
    // Records per request: batches of 100 writes only; with the 200-record page reads too.
    let write_ceiling = per_sec * 100.0;
    let all_ceiling = per_sec * r.counts.read as f64 / calls.max(1) as f64;
    println!(
        "backfill of {n} contacts, mock HubSpot at {LIMIT} requests / 10 s, searches {SEARCH_LIMIT}/s {}",
        if portal.search_in_burst { "and in the 10 s window" } else { "on their own" }
    );
    println!(
        "  read {} · written {} · unchanged {} · failed {} · pages {}",
        r.counts.read,
        r.counts.written,
        r.counts.unchanged,
        r.counts.failed_total(),
        r.pages
    );
    println!("  took {secs:.1} s → {rate:.0} records/s");
    println!(
        "  calls: {searches} searches + {batches} batch updates = {calls} ({:.2} req/s; limit {per_sec:.0}/s)",
        calls as f64 / secs
    );
    println!(
        "  ceiling counting only the batch writes: {write_ceiling:.0} records/s → {:.0}% reached",
        100.0 * rate / write_ceiling
    );
    println!(
        "  ceiling counting every call (reads too): {all_ceiling:.0} records/s → {:.0}% reached",
        100.0 * rate / all_ceiling
    );
    println!(
        "  429s from the mock (self-caused): {}",
        portal.throttled.load(Ordering::Relaxed)
    );
    assert_eq!(
        portal.written.load(Ordering::Relaxed) as u64,
        r.counts.written,
        "the mock and the summary disagree on writes"
    );
}
