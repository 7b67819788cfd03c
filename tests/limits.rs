//! Limits shared across replicas (`resilience::shared`): three independent stacks — each
//! its own waterfall, HTTP client and connection to the shared place — against one mock
//! vendor on 127.0.0.1 that counts calls. Together they spend no more than the day's request
//! cap or credit budget, a restart does not begin the day again, and a 429 `Retry-After`
//! seen by one pauses all. Through the SQLite store (always) and Redis (`postgres-tests`,
//! the services scripts/test.sh starts).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use leadgate::enrich::{build, Waterfall};
use leadgate::lead::{EnrichedLead, ProviderOutcome, RawLead};
use leadgate::normalize::Normalizer;
use leadgate::settings::Settings;
use serde_json::json;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A People Data Labs–shaped vendor (wire-formats §4.2): a company for the `website` asked
/// for; the first `throttle` calls answer 429 with `Retry-After`. Records when each call came.
#[derive(Clone, Default)]
struct Vendor {
    calls: Arc<Mutex<Vec<Instant>>>,
    throttle: usize,
    retry_after_secs: u64,
}

impl Respond for Vendor {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Instant::now());
            calls.len()
        };
        if n <= self.throttle {
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", self.retry_after_secs.to_string().as_str())
                .set_body_json(json!({"status": 429, "error": {"type": "rate_limit_error", "message": "An error occurred due to requests hitting the API too quick"}}));
        }
        let domain = r
            .url
            .query_pairs()
            .find(|(k, _)| k == "website")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        ResponseTemplate::new(200).set_body_json(json!({
            "status": 200, "likelihood": 9, "display_name": "Acme", "name": "acme",
            "website": domain, "employee_count": 120
        }))
    }
}

impl Vendor {
    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }
}

/// The shipped PDL manifest under a fresh id, so runs sharing one Redis never meet.
fn connectors_dir(dir: &Path) -> String {
    let id = format!("pdl_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors/peopledatalabs.toml"),
    )
    .unwrap()
    .replace("id = \"peopledatalabs\"", &format!("id = \"{id}\""));
    let connectors = dir.join("connectors");
    std::fs::create_dir_all(&connectors).unwrap();
    std::fs::write(connectors.join(format!("{id}.toml")), text).unwrap();
    id
}

/// One replica: a waterfall built as `leadgate` builds it from its own copy of the config.
struct Replica {
    _dir: tempfile::TempDir,
    waterfall: Waterfall,
}

impl Replica {
    async fn enrich(&self, domain: &str) -> EnrichedLead {
        let raw = RawLead(
            json!({ "email": format!("ana@{domain}") })
                .as_object()
                .unwrap()
                .clone(),
        );
        let lead = Normalizer::default().normalize(&raw).unwrap();
        self.waterfall.enrich(lead, Utc::now()).await
    }
}

/// The installation the replicas share: a store (and maybe Redis), a vendor, a connector.
struct Cluster {
    dir: tempfile::TempDir,
    id: String,
    store_url: String,
    redis: Option<String>,
    provider: String,
    _store: leadgate::store::Store,
}

impl Cluster {
    async fn new(server: &MockServer, provider_extra: &str, redis: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let id = connectors_dir(dir.path());
        let store_url = format!("sqlite://{}", dir.path().join("leadgate.db").display());
        // The store is opened (and migrated) once, as the daemon does before its replicas.
        let store = leadgate::store::Store::open(&store_url).await.unwrap();
        let provider = format!(
            "[providers.{id}]\napi_key = \"test_key\"\nbase_url = \"{}/v5\"\n{provider_extra}\n",
            server.uri()
        );
        Self {
            dir,
            id,
            store_url,
            redis,
            provider,
            _store: store,
        }
    }

    fn replica(&self) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let redis = self
            .redis
            .as_ref()
            .map(|u| format!("[rate_limit]\nredis = \"{u}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "connectors = {:?}\n[storage]\nurl = \"{}\"\n{redis}[enrichment]\nwaterfall = [\"{}\"]\n{}\n",
            self.dir.path().join("connectors"),
            self.store_url,
            self.id,
            self.provider
        );
        let file = dir.path().join("leadgate.toml");
        std::fs::write(&file, text).unwrap();
        let settings = Settings::load_with_env(&file, Default::default()).unwrap();
        let built = build::providers(&settings).unwrap_or_else(|e| panic!("{e:?}"));
        let stop_when = settings.config.enrichment.stop_when.clone();
        Replica {
            _dir: dir,
            waterfall: Waterfall::new(built.providers, stop_when, Default::default())
                .with_validation(built.validation),
        }
    }
}

async fn vendor(v: &Vendor) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v5/company/enrich"))
        .respond_with(v.clone())
        .mount(&server)
        .await;
    server
}

fn outcome(e: &EnrichedLead) -> (ProviderOutcome, String) {
    let p = &e.enrichment.providers[0];
    (p.outcome, p.reason.clone().unwrap_or_default())
}

/// Three replicas enrich 15 distinct companies at once; returns the outcomes.
async fn fifteen_leads_on_three_replicas(replicas: &[Replica]) -> Vec<(ProviderOutcome, String)> {
    let mut leads = Vec::new();
    for i in 0..15 {
        let r = &replicas[i % replicas.len()];
        leads.push(async move { outcome(&r.enrich(&format!("co{i}.io")).await) });
    }
    futures::future::join_all(leads).await
}

async fn three_replicas_spend_at_most_the_daily_request_cap(redis: Option<String>) {
    let v = Vendor::default();
    let server = vendor(&v).await;
    let cluster = Cluster::new(&server, "daily_limit = 4", redis).await;
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    let outcomes = fifteen_leads_on_three_replicas(&replicas).await;
    let hits = outcomes
        .iter()
        .filter(|(o, _)| *o == ProviderOutcome::Hit)
        .count();
    assert_eq!(
        v.calls().len(),
        4,
        "three replicas, one cap of 4: {outcomes:?}"
    );
    assert_eq!(hits, 4);
    assert!(
        outcomes
            .iter()
            .filter(|(o, _)| *o != ProviderOutcome::Hit)
            .all(|(_, why)| why.contains("daily request cap of 4")),
        "{outcomes:?}"
    );
    // A restart (a fourth process) does not begin the day again.
    let restarted = cluster.replica();
    let (o, why) = outcome(&restarted.enrich("after-restart.io").await);
    assert_ne!(o, ProviderOutcome::Hit, "{why}");
    assert_eq!(v.calls().len(), 4);
}

async fn three_replicas_spend_at_most_the_daily_credit_budget(redis: Option<String>) {
    let v = Vendor::default();
    let server = vendor(&v).await;
    let cluster = Cluster::new(&server, "daily_budget = 3", redis).await;
    let replicas = [cluster.replica(), cluster.replica(), cluster.replica()];
    let outcomes = fifteen_leads_on_three_replicas(&replicas).await;
    assert_eq!(
        v.calls().len(),
        3,
        "three credits for the day: {outcomes:?}"
    );
    let spent: Vec<_> = outcomes
        .iter()
        .filter(|(o, _)| *o == ProviderOutcome::Skipped)
        .collect();
    assert_eq!(spent.len(), 12, "{outcomes:?}");
    assert!(
        spent
            .iter()
            .all(|(_, why)| why.contains("daily budget of 3")),
        "{spent:?}"
    );
    let restarted = cluster.replica();
    assert_eq!(
        outcome(&restarted.enrich("after-restart.io").await).0,
        ProviderOutcome::Skipped
    );
    assert_eq!(v.calls().len(), 3);
}

async fn a_retry_after_seen_by_one_replica_pauses_all(redis: Option<String>) {
    let v = Vendor {
        throttle: 1,
        retry_after_secs: 2,
        ..Default::default()
    };
    let server = vendor(&v).await;
    let cluster = Cluster::new(&server, "", redis).await;
    let replicas = Arc::new([cluster.replica(), cluster.replica(), cluster.replica()]);
    let first = {
        let replicas = replicas.clone();
        tokio::spawn(async move { outcome(&replicas[0].enrich("one.io").await) })
    };
    // Once the vendor has answered the first replica's call with its 429 (and the pause has
    // had a moment to be shared), the two others ask.
    while v.calls().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let others =
        futures::future::join_all([replicas[1].enrich("two.io"), replicas[2].enrich("three.io")])
            .await;
    let first = first.await.unwrap();
    assert_eq!(first.0, ProviderOutcome::Hit, "{first:?}");
    for e in &others {
        assert_eq!(outcome(e).0, ProviderOutcome::Hit, "{:?}", outcome(e));
    }
    let calls = v.calls();
    assert_eq!(calls.len(), 4, "one 429, then one call per lead");
    for later in &calls[1..] {
        let gap = later.duration_since(calls[0]);
        assert!(
            gap >= Duration::from_millis(1900),
            "a replica called {gap:?} after the 429 asked for 2 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_three_replicas_spend_at_most_the_daily_request_cap() {
    three_replicas_spend_at_most_the_daily_request_cap(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_three_replicas_spend_at_most_the_daily_credit_budget() {
    three_replicas_spend_at_most_the_daily_credit_budget(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_a_retry_after_seen_by_one_replica_pauses_all() {
    a_retry_after_seen_by_one_replica_pauses_all(None).await;
}

#[cfg(feature = "postgres-tests")]
fn redis_url() -> Option<String> {
    Some(std::env::var("LEADGATE_TEST_REDIS_URL").expect(
        "LEADGATE_TEST_REDIS_URL is not set: run scripts/test.sh, which starts Redis for these tests",
    ))
}

#[cfg(feature = "postgres-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_three_replicas_spend_at_most_the_daily_request_cap() {
    three_replicas_spend_at_most_the_daily_request_cap(redis_url()).await;
}

#[cfg(feature = "postgres-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_three_replicas_spend_at_most_the_daily_credit_budget() {
    three_replicas_spend_at_most_the_daily_credit_budget(redis_url()).await;
}

#[cfg(feature = "postgres-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_retry_after_seen_by_one_replica_pauses_all() {
    a_retry_after_seen_by_one_replica_pauses_all(redis_url()).await;
}
