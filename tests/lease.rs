//! Leases while a job is in hand: a live worker renews its lease (the heartbeat in
//! `worker.rs`), so a job that takes longer than the lease is not taken over by another
//! worker and reaches the CRM once; a worker that stops renewing loses the job after the
//! lease; a worker that finds its job taken over stops before delivering it. Every test runs
//! on SQLite; the `*_on_postgres` twins (built with `--features postgres-tests`, run by
//! scripts/test.sh) run the same scenario on a fresh PostgreSQL database. Leases are 1 s, so
//! each test takes a few seconds.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leadgate::crm::Crm;
use leadgate::lead::{LeadStatus, RawLead};
use leadgate::pipeline::Pipeline;
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::{Job, Store, StoreError};
use leadgate::webhook::{fetch_payload, FetchError, RecordSource};
use serde_json::json;
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const LEASE: Duration = Duration::from_secs(1);

/// The shipped stages, one routing rule, and delivery to a HubSpot at `crm`.
fn settings(crm: &str) -> (tempfile::TempDir, Settings) {
    let (dir, file) = support::shipped_config(
        "[[rule]]\nid = \"direct\"\nwhen = \"true\"\nassign = { owner = \"41629779\" }\n\n[fallback]\nreview = { reason = \"unrouted\" }\n",
        &format!(
            r#"[providers.hubspot]
api_key = "pat-test-token"
base_url = "{crm}"
[delivery]
target = "hubspot"
[[delivery.field]]
canonical = "score"
property = "leadgate_score"
policy = "overwrite"
"#
        ),
    );
    let settings = Settings::load(&file).unwrap_or_else(|e| panic!("{e}"));
    (dir, settings)
}

/// A HubSpot that knows no contact and accepts every upsert.
async fn hubspot() -> MockServer {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE",
            "results": [{"id": "901", "new": true, "properties": {}, "objectWriteTraceId": "x"}]})),
        )
        .mount(&crm)
        .await;
    crm
}

async fn crm_requests(crm: &MockServer) -> usize {
    crm.received_requests().await.unwrap_or_default().len()
}

/// The slow step: a CRM record read that takes `delay`, counting its calls. Slower than the
/// lease, it stands for slow enrichment, retries or a parked provider.
struct SlowRecords {
    delay: Duration,
    calls: AtomicUsize,
    /// Set when a read returns.
    returned: AtomicBool,
}

impl RecordSource for SlowRecords {
    fn fetch<'a>(
        &'a self,
        _connector: &'a str,
        _object: &'a str,
        id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<RawLead, FetchError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.returned.store(true, Ordering::SeqCst);
            let v = json!({"email": format!("ada-{id}@kestrel-data.io"), "first_name": "Ada"});
            Ok(RawLead(v.as_object().cloned().unwrap()))
        })
    }
}

struct World {
    _dir: tempfile::TempDir,
    crm: MockServer,
    store: Store,
    records: Arc<SlowRecords>,
    state: Arc<Services>,
    stop: watch::Sender<bool>,
}

async fn world(url: &str, fetch_delay: Duration) -> World {
    let crm = hubspot().await;
    let (dir, settings) = settings(&crm.uri());
    let store = Store::open(url).await.expect("open the store");
    let records = Arc::new(SlowRecords {
        delay: fetch_delay,
        calls: AtomicUsize::new(0),
        returned: AtomicBool::new(false),
    });
    let state = Arc::new(Services {
        records: Some(records.clone() as Arc<dyn RecordSource>),
        delivery: Crm::build(&settings).unwrap_or_else(|e| panic!("{e}")),
        ..Services::new(
            Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}")),
            store.clone(),
        )
    });
    assert!(state.delivery.is_some(), "delivery is configured");
    let (stop, _) = watch::channel(false);
    World {
        _dir: dir,
        crm,
        store,
        records,
        state,
        stop,
    }
}

impl World {
    /// Queues one job that names CRM record `id` (what a webhook queues).
    async fn queue(&self, id: &str) -> String {
        self.store
            .accept_record(
                &format!("hubspot:contact:{id}"),
                &fetch_payload("hubspot", "contact", id),
                &format!("key-{id}"),
                None,
            )
            .await
            .expect("queue a job")
            .job_id
    }

    /// Starts `n` workers with a 1-s lease, as `n` replicas would.
    fn workers(&self, n: usize) {
        for _ in 0..n {
            tokio::spawn(leadgate::worker::run(
                self.state.clone(),
                LEASE,
                self.stop.subscribe(),
            ));
        }
    }

    async fn status(&self, job_id: &str) -> String {
        self.store
            .lead(job_id)
            .await
            .unwrap()
            .expect("the job's lead")
            .status
    }
}

/// Waits (bounded) for `check`.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets any other worker's lease run out now, as if the holder had stalled for a lease.
async fn expire_leases(url: &str) {
    use sqlx::Connection;
    let sql = "UPDATE jobs SET lease_until = 0 WHERE status = 'processing'";
    if leadgate::store::is_postgres_url(url) {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

// ---- the scenarios, per backend -----------------------------------------------------------

/// Two workers, one job whose record read takes 2.5 leases: the holder renews, so the other
/// worker never claims it; the record is read once, one decision, one CRM write.
async fn a_live_worker_keeps_a_job_longer_than_its_lease(url: &str) {
    let w = world(url, LEASE * 5 / 2).await;
    let job_id = w.queue("1").await;
    w.workers(2);
    eventually("the lead is decided", Duration::from_secs(15), async || {
        !["queued", "processing"].contains(&w.status(&job_id).await.as_str())
    })
    .await;
    assert_eq!(w.status(&job_id).await, "done");
    assert_eq!(
        w.records.calls.load(Ordering::SeqCst),
        1,
        "another worker claimed the job while its holder was still working on it"
    );
    assert_eq!(w.store.decision_count().await.unwrap(), 1);
    let upserts = w
        .crm
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == "/crm/v3/objects/contacts/batch/upsert")
        .count();
    assert_eq!(upserts, 1, "one CRM write per lead");
    // Closed: nothing left for a worker to claim, and the heartbeat stopped with the job.
    assert!(w.store.claim(LEASE).await.unwrap().is_none());
    let _ = w.stop.send(true);
}

/// The holder's lease runs out under it and another worker claims the job (attempt 2): the
/// holder's heartbeat finds the job gone and it stops before the CRM; only the newer claim
/// may decide.
async fn a_worker_whose_job_was_taken_over_does_not_deliver_it(url: &str) {
    let w = world(url, Duration::from_millis(1500)).await;
    let job_id = w.queue("2").await;
    w.workers(1);
    eventually(
        "the worker reads the record",
        Duration::from_secs(10),
        async || w.records.calls.load(Ordering::SeqCst) == 1,
    )
    .await;
    // Take the job over, as a worker of another replica would once the lease ran out. The
    // holder's heartbeat may renew between the two statements: try again until the claim wins.
    let mut taken: Option<Job> = None;
    eventually(
        "another worker claims the job",
        Duration::from_secs(5),
        async || {
            expire_leases(url).await;
            taken = w.store.claim(Duration::from_secs(60)).await.unwrap();
            taken.is_some()
        },
    )
    .await;
    let taken = taken.unwrap();
    assert_eq!(taken.id, job_id);
    assert_eq!(taken.attempts, 2);

    // The holder's record read returns; give it two leases to do whatever it will do.
    eventually(
        "the holder's read returns",
        Duration::from_secs(5),
        async || w.records.returned.load(Ordering::SeqCst),
    )
    .await;
    tokio::time::sleep(LEASE * 2).await;
    assert_eq!(
        crm_requests(&w.crm).await,
        0,
        "a worker that lost its job called the CRM"
    );
    assert_eq!(w.store.decision_count().await.unwrap(), 0);
    assert_eq!(
        w.status(&job_id).await,
        "processing",
        "held by the newer claim"
    );
    // The holder's renewals are fenced: attempt 1 may not extend attempt 2's lease.
    let stale = Job {
        attempts: 1,
        ..taken.clone()
    };
    assert!(matches!(
        w.store.renew(&stale, LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let _ = w.stop.send(true);
}

/// The store alone: renewals hold a job past its lease; once they stop, the job is claimed
/// again after the lease, and the old holder can neither renew nor close it.
async fn renewals_hold_a_job_and_a_silent_holder_loses_it(url: &str) {
    let w = world(url, Duration::ZERO).await;
    let job_id = w.queue("3").await;
    let held = w.store.claim(LEASE).await.unwrap().expect("a job");
    assert_eq!((held.id.as_str(), held.attempts), (job_id.as_str(), 1));

    // 2.5 leases of renewals every third of a lease: never claimable meanwhile.
    let until = Instant::now() + LEASE * 5 / 2;
    while Instant::now() < until {
        w.store
            .renew(&held, LEASE)
            .await
            .expect("the holder renews");
        assert!(
            w.store.claim(LEASE).await.unwrap().is_none(),
            "a renewed job was claimed by another worker"
        );
        tokio::time::sleep(LEASE / 3).await;
    }

    // The holder goes silent (dead, or stuck): the job comes back after the lease.
    assert!(w.store.claim(LEASE).await.unwrap().is_none());
    tokio::time::sleep(LEASE + Duration::from_millis(300)).await;
    let again = w
        .store
        .claim(Duration::from_secs(60))
        .await
        .unwrap()
        .expect("reclaimed after the lease");
    assert_eq!((again.id.as_str(), again.attempts), (job_id.as_str(), 2));

    // The old holder wakes up: every write it tries is fenced.
    assert!(matches!(
        w.store.renew(&held, LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert!(matches!(
        w.store.fail(&held, "late").await,
        Err(StoreError::LeaseLost { .. })
    ));
    let raw: RawLead = serde_json::from_value(json!({"email": "ada-3@kestrel-data.io"})).unwrap();
    let lead = w.state.pipeline.normalize(&raw).unwrap();
    let decision = w
        .state
        .pipeline
        .decide(lead.clone(), &w.store, chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(
        w.store.complete(&held, &lead, &decision).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(w.store.decision_count().await.unwrap(), 0);

    // The newer claim renews and decides; a closed job cannot be renewed.
    w.store
        .renew(&again, LEASE)
        .await
        .expect("the new holder renews");
    w.store.complete(&again, &lead, &decision).await.unwrap();
    assert_eq!(w.store.decision_count().await.unwrap(), 1);
    assert!(matches!(
        w.store.renew(&again, LEASE).await,
        Err(StoreError::LeaseLost { .. })
    ));
}

/// A decision the CRM refused closes the job `failed` with the CRM's reason in the same
/// statement (a reader polling for `failed` once saw it without its reason); a later `fail`
/// of the same attempt still goes through the fence (on PostgreSQL it once did not).
async fn a_crm_refusal_keeps_its_reason(url: &str) {
    let w = world(url, Duration::ZERO).await;
    let job_id = w.queue("4").await;
    let job = w.store.claim(LEASE).await.unwrap().expect("a job");
    let raw: RawLead = serde_json::from_value(json!({"email": "ada-4@kestrel-data.io"})).unwrap();
    let lead = w.state.pipeline.normalize(&raw).unwrap();
    let mut decision = w
        .state
        .pipeline
        .decide(lead.clone(), &w.store, chrono::Utc::now())
        .await
        .unwrap();
    decision.status = LeadStatus::Failed;
    decision.delivery.push(
        serde_json::from_value(
            json!({"connector": "hubspot", "op": "write", "status": "failed",
            "detail": "hubspot: leadgate_score does not exist"}),
        )
        .unwrap(),
    );
    w.store.complete(&job, &lead, &decision).await.unwrap();
    let view = w.store.lead(&job_id).await.unwrap().unwrap();
    assert_eq!(view.status, "failed");
    assert_eq!(
        view.error.as_deref(),
        Some("hubspot: leadgate_score does not exist"),
        "the reason is recorded with the status"
    );
    w.store
        .fail(&job, "hubspot: leadgate_score does not exist")
        .await
        .expect("the same attempt records why");
    let view = w.store.lead(&job_id).await.unwrap().unwrap();
    assert_eq!(view.status, "failed");
    assert_eq!(
        view.error.as_deref(),
        Some("hubspot: leadgate_score does not exist")
    );
}

// ---- SQLite (always) ----------------------------------------------------------------------

fn sqlite_url() -> (tempfile::TempDir, String) {
    let (dir, db) = support::temp_db();
    (dir, format!("sqlite://{}", db.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_a_job_longer_than_its_lease_on_sqlite() {
    let (_dir, url) = sqlite_url();
    a_live_worker_keeps_a_job_longer_than_its_lease(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_job_was_taken_over_does_not_deliver_it_on_sqlite() {
    let (_dir, url) = sqlite_url();
    a_worker_whose_job_was_taken_over_does_not_deliver_it(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_hold_a_job_and_a_silent_holder_loses_it_on_sqlite() {
    let (_dir, url) = sqlite_url();
    renewals_hold_a_job_and_a_silent_holder_loses_it(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_refusal_keeps_its_reason_on_sqlite() {
    let (_dir, url) = sqlite_url();
    a_crm_refusal_keeps_its_reason(&url).await;
}

// ---- PostgreSQL (`--features postgres-tests`, through scripts/test.sh) ---------------------

#[cfg(feature = "postgres-tests")]
mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_live_worker_keeps_a_job_longer_than_its_lease_on_postgres() {
        a_live_worker_keeps_a_job_longer_than_its_lease(&support::fresh_postgres_db().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_whose_job_was_taken_over_does_not_deliver_it_on_postgres() {
        a_worker_whose_job_was_taken_over_does_not_deliver_it(&support::fresh_postgres_db().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn renewals_hold_a_job_and_a_silent_holder_loses_it_on_postgres() {
        renewals_hold_a_job_and_a_silent_holder_loses_it(&support::fresh_postgres_db().await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crm_refusal_keeps_its_reason_on_postgres() {
        a_crm_refusal_keeps_its_reason(&support::fresh_postgres_db().await).await;
    }
}
