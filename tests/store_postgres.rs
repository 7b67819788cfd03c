//! The PostgreSQL store against a real server (the throwaway one scripts/test.sh starts):
//! claims never hand one job to two workers, leases bring back a dead worker's job, a worker
//! that outlived its lease cannot record a second decision, idempotency keys hold across
//! concurrent accepts. Built only with `--features postgres-tests`; fails without a server.

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use leadgate::lead::{Decision, Lead, RawLead};
use leadgate::pipeline::Pipeline;
use leadgate::route::LocalRotation;
use leadgate::settings::Settings;
use leadgate::store::{Job, PgStore, StoreError};
use serde_json::json;
use support::fresh_postgres_db;

fn pipeline() -> Pipeline {
    let settings = Settings::load(Path::new("config/leadgate.toml")).expect("shipped config loads");
    Pipeline::build(&settings).expect("pipeline builds")
}

fn raw(i: usize) -> RawLead {
    let v = json!({ "email": format!("person{i}@acme-{i}.io"), "first_name": "Test", "company": "Acme" });
    RawLead(v.as_object().cloned().expect("object"))
}

async fn store() -> PgStore {
    PgStore::open(&fresh_postgres_db().await)
        .await
        .expect("open the PostgreSQL store")
}

async fn accept_n(store: &PgStore, p: &Pipeline, n: usize) -> Vec<String> {
    let mut jobs = Vec::new();
    for i in 0..n {
        let r = raw(i);
        let lead: Lead = p.normalize(&r).expect("valid lead");
        jobs.push(
            store
                .accept(&lead, &r, Some(&format!("key-{i}")))
                .await
                .expect("accept")
                .job_id,
        );
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_get_the_same_job() {
    let p = pipeline();
    let store = store().await;
    let accepted: HashSet<String> = accept_n(&store, &p, 300).await.into_iter().collect();

    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = s.claim(Duration::from_secs(60)).await.expect("claim") {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.expect("task"));
    }
    let unique: HashSet<String> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), 300, "every job claimed exactly once");
    assert_eq!(unique, accepted);
    assert_eq!(
        store.queue_depth().await.unwrap().get("processing"),
        Some(&300)
    );
}

#[tokio::test]
async fn a_job_comes_back_after_its_lease_and_only_the_new_claim_may_decide() {
    let p = pipeline();
    let store = store().await;
    accept_n(&store, &p, 1).await;

    let first = store
        .claim(Duration::from_millis(300))
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(first.attempts, 1);
    assert!(
        store
            .claim(Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "held while the lease runs"
    );

    tokio::time::sleep(Duration::from_millis(450)).await;
    let second = store
        .claim(Duration::from_secs(60))
        .await
        .unwrap()
        .expect("reclaimed after the lease");
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempts, 2);

    let (lead, decision) = decide_payload(&p, &first).await;

    // The first worker wakes up late: it must not record anything.
    let late = store.complete(&first, &lead, &decision).await;
    assert!(
        matches!(late, Err(StoreError::LeaseLost { .. })),
        "{late:?}"
    );
    assert!(matches!(
        store.fail(&first, "late").await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(store.decision_count().await.unwrap(), 0);

    store
        .complete(&second, &lead, &decision)
        .await
        .expect("the holder decides");
    assert_eq!(store.decision_count().await.unwrap(), 1);
    let view = store
        .lead(&first.id)
        .await
        .unwrap()
        .expect("lead by job id");
    assert_eq!(view.history.len(), 1);
    assert_eq!(view.arrivals.len(), 1);
    assert_eq!(view.status, decision.status.as_str());
    // Closed jobs are not claimed again.
    assert!(store
        .claim(Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_idempotency_key_from_many_replicas_queues_one_job() {
    let p = Arc::new(pipeline());
    let store = store().await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (s, p) = (store.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let r = raw(7);
            let lead = p.normalize(&r).unwrap();
            s.accept(&lead, &r, Some("same-key")).await.expect("accept")
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let job_ids: HashSet<&str> = answers.iter().map(|a| a.job_id.as_str()).collect();
    assert_eq!(job_ids.len(), 1, "one job for one key: {answers:?}");
    assert_eq!(answers.iter().filter(|a| !a.duplicate).count(), 1);
    assert_eq!(store.queue_depth().await.unwrap().get("queued"), Some(&1));
    let view = store.lead(&answers[0].id).await.unwrap().unwrap();
    assert_eq!(view.arrivals.len(), 1);
}

#[tokio::test]
async fn failed_jobs_keep_their_reason_and_explain_finds_the_lead_by_email() {
    let p = pipeline();
    let store = store().await;
    accept_n(&store, &p, 2).await;
    let job = store.claim(Duration::from_secs(60)).await.unwrap().unwrap();
    store.fail(&job, "invalid lead: no email").await.unwrap();
    let view = store.lead(&job.lead_id).await.unwrap().unwrap();
    assert_eq!(view.status, "failed");
    assert_eq!(view.error.as_deref(), Some("invalid lead: no email"));

    let found = store
        .lead_by_email("person1@acme-1.io")
        .await
        .unwrap()
        .expect("stored lead");
    assert_eq!(found.0["email"], "person1@acme-1.io");
    assert!(store
        .lead_by_email("nobody@acme.io")
        .await
        .unwrap()
        .is_none());
    store.ping().await.unwrap();
}

#[tokio::test]
async fn open_names_the_problem_without_the_password() {
    let err = PgStore::open("postgres://lg:hunter2@127.0.0.1:1/lg")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lg:***@127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// Providers' credits add up per provider and day, whichever replica hands them over.
#[tokio::test]
async fn provider_credits_add_up_per_day_across_replicas() {
    let url = fresh_postgres_db().await;
    let (a, b) = (
        PgStore::open(&url).await.unwrap(),
        PgStore::open(&url).await.unwrap(),
    );
    let charge = |p: &str, day: &str, c: f64| (p.to_string(), day.to_string(), c);
    a.add_provider_credits(&[
        charge("peopledatalabs", "2026-11-23", 2.0),
        charge("clearbit", "2026-11-23", 1.0),
    ])
    .await
    .unwrap();
    b.add_provider_credits(&[
        charge("peopledatalabs", "2026-11-23", 0.5),
        charge("peopledatalabs", "2026-11-22", 7.0),
    ])
    .await
    .unwrap();
    let day = a.provider_credits_on("2026-11-23").await.unwrap();
    assert_eq!(day["peopledatalabs"], 2.5);
    assert_eq!(day["clearbit"], 1.0);
    assert_eq!(
        b.provider_credits_on("2026-11-22").await.unwrap()["peopledatalabs"],
        7.0
    );
    assert!(a
        .provider_credits_on("2026-11-24")
        .await
        .unwrap()
        .is_empty());
}

async fn arrive(store: &PgStore, p: &Pipeline, v: serde_json::Value) {
    let r = RawLead(v.as_object().cloned().expect("object"));
    let lead = p.normalize(&r).expect("valid lead");
    store.accept(&lead, &r, None).await.expect("accept");
}

/// The lead a claimed job carries, normalized and decided, as a worker would.
async fn decide_payload(p: &Pipeline, job: &Job) -> (Lead, Decision) {
    let raw_lead: RawLead = serde_json::from_str(&job.payload).unwrap();
    let lead = p.normalize(&raw_lead).unwrap();
    let decision = p
        .decide(lead.clone(), &LocalRotation::default(), Utc::now())
        .await
        .unwrap();
    (lead, decision)
}

/// Claims the next job, decides it and records the decision, as a worker would; answers the
/// domain the lead's previous decision was made with.
async fn decide_next(store: &PgStore, p: &Pipeline) -> Option<String> {
    let job = store
        .claim(Duration::from_secs(60))
        .await
        .unwrap()
        .expect("a job");
    let (lead, decision) = decide_payload(p, &job).await;
    store
        .complete(&job, &lead, &decision)
        .await
        .expect("decided")
}

/// As on SQLite (migration 0008): the roll-up takes each lead's latest decision at the domain
/// it was decided with, so a person who arrives with another company's domain moves when
/// that arrival is decided, not when it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_roll_ups_move_a_person_when_their_new_arrival_is_decided() {
    let p = pipeline();
    let store = store().await;
    let leads_at = |domain: &'static str| {
        let store = store.clone();
        async move {
            store
                .account_rows(domain, "engagement")
                .await
                .expect("roll-up rows")
                .len()
        }
    };
    arrive(
        &store,
        &p,
        json!({"email": "cy@acme.io", "domain": "acme.io"}),
    )
    .await;
    decide_next(&store, &p).await;
    assert_eq!(
        (leads_at("acme.io").await, leads_at("beta.io").await),
        (1, 0)
    );
    arrive(
        &store,
        &p,
        json!({"email": "cy@acme.io", "domain": "beta.io"}),
    )
    .await;
    assert_eq!(
        (leads_at("acme.io").await, leads_at("beta.io").await),
        (1, 0)
    );
    let left = decide_next(&store, &p).await;
    assert_eq!(
        left.as_deref(),
        Some("acme.io"),
        "the account the person left"
    );
    assert_eq!(
        (leads_at("acme.io").await, leads_at("beta.io").await),
        (0, 1)
    );
}

/// Backfill progress (migration 0019): an unfinished pass is continued at its cursor with its
/// counts; a finished one begins again at the next generation.
#[tokio::test]
async fn backfill_progress_resumes_an_unfinished_pass_and_renews_a_finished_one() {
    let store = leadgate::store::Store::Postgres(store().await);
    support::assert_backfill_progress_rules(&store).await;
}

/// A touch finds a lead no worker has decided yet, as on SQLite (tests/routing.rs).
#[tokio::test]
async fn a_touch_finds_a_lead_before_its_decision() {
    let p = pipeline();
    let store = leadgate::store::Store::Postgres(store().await);
    support::assert_touch_finds_an_undecided_lead(&store, &p).await;
}

/// As on SQLite: the running account totals (migration 0013) answer what the full read of
/// the decisions answers, here with two replicas deciding leads of one account at once
/// (re-decisions and a person moving away included): the account lock loses no update.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn running_account_totals_hold_with_two_replicas_deciding_one_account() {
    use leadgate::score::AccountRollup;
    let p = Arc::new(pipeline());
    let url = fresh_postgres_db().await;
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    let rollup = AccountRollup {
        score: "engagement".into(),
        half_life: Some(Duration::from_secs(3_600)),
    };
    let later = || Utc::now() + chrono::Duration::minutes(90);
    // The first read makes the (empty) totals, so every decision below moves them.
    assert_eq!(
        a.account_score("acme.io", &rollup, later())
            .await
            .unwrap()
            .leads,
        0
    );
    for i in 0..30 {
        let v = json!({"email": format!("p{}@acme.io", i % 24), "domain": "acme.io", "title": "VP Sales"});
        arrive(&a, &p, v).await;
    }
    arrive(&a, &p, json!({"email": "p3@acme.io", "domain": "beta.io"})).await;
    let drain = |s: PgStore| {
        let p = p.clone();
        tokio::spawn(async move {
            while let Some(job) = s.claim(Duration::from_secs(60)).await.unwrap() {
                let (lead, decision) = decide_payload(&p, &job).await;
                s.complete(&job, &lead, &decision).await.expect("decided");
            }
        })
    };
    let (x, y) = tokio::join!(drain(a.clone()), drain(b.clone()));
    x.unwrap();
    y.unwrap();
    let now = later();
    let rows = a.account_rows("acme.io", "engagement").await.unwrap();
    let full = rollup.roll_up(&rows, now);
    let running = b.account_score("acme.io", &rollup, now).await.unwrap();
    assert_eq!(running, full);
    // 24 people, one of them now decided at beta.io (unless its jobs were decided out of order).
    assert!((23..=24).contains(&running.leads), "{running:?}");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM account_rollups")
        .fetch_one(&sqlx::PgPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        kept, 1,
        "only the account that was read keeps a running total"
    );
}

/// Two replicas recording decisions of one person at once (two arrivals decided together):
/// each moves the person's value from the decision the other committed. Both are held at
/// the account's lock until both have started; if each read the lead's previous decision
/// before waiting, the first decision's value would leave the total twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_deciding_one_person_at_once_move_its_value_once() {
    use leadgate::score::AccountRollup;
    use sqlx::Connection;
    let p = pipeline();
    let url = fresh_postgres_db().await;
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    let rollup = AccountRollup {
        score: "engagement".into(),
        half_life: None,
    };
    assert_eq!(
        a.account_score("acme.io", &rollup, Utc::now())
            .await
            .unwrap()
            .leads,
        0
    );
    let with_score = |job: &Job, score: i64| {
        let p = &p;
        let job = job.clone();
        async move {
            let (lead, mut decision) = decide_payload(p, &job).await;
            decision
                .scores
                .get_mut("engagement")
                .expect("the shipped config scores engagement")
                .score = score;
            (lead, decision)
        }
    };
    // A colleague keeps the account's total above zero, where a value taken out twice shows.
    arrive(&a, &p, json!({"email": "bo@acme.io", "domain": "acme.io"})).await;
    for _ in 0..3 {
        arrive(&a, &p, json!({"email": "cy@acme.io", "domain": "acme.io"})).await;
    }
    for score in [5, 10] {
        let job = a.claim(Duration::from_secs(60)).await.unwrap().unwrap();
        let (lead, decision) = with_score(&job, score).await;
        a.complete(&job, &lead, &decision).await.unwrap();
    }
    assert_eq!(
        a.account_score("acme.io", &rollup, Utc::now())
            .await
            .unwrap(),
        leadgate::score::AccountScore {
            score: 15,
            leads: 2
        }
    );

    let (j2, j3) = (
        a.claim(Duration::from_secs(60)).await.unwrap().unwrap(),
        b.claim(Duration::from_secs(60)).await.unwrap().unwrap(),
    );
    let (d2, d3) = (with_score(&j2, 40).await, with_score(&j3, 70).await);
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('account_rollups:acme.io', 0))")
        .execute(&mut holder)
        .await
        .unwrap();
    let x = tokio::spawn({
        let a = a.clone();
        async move { a.complete(&j2, &d2.0, &d2.1).await }
    });
    let y = tokio::spawn({
        let b = b.clone();
        async move { b.complete(&j3, &d3.0, &d3.1).await }
    });
    // Both wait (for the account, or for the lead) before either may go on.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut holder)
        .await
        .unwrap();
        if waiting >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "both completes wait");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended('account_rollups:acme.io', 0))")
        .execute(&mut holder)
        .await
        .unwrap();
    x.await.unwrap().expect("decided");
    y.await.unwrap().expect("decided");

    let now = Utc::now();
    let running = b.account_score("acme.io", &rollup, now).await.unwrap();
    let full = rollup.roll_up(&a.account_rows("acme.io", "engagement").await.unwrap(), now);
    assert_eq!(running, full);
    assert_eq!(running.leads, 2);
    // The person counts once, with whichever decision committed last.
    assert!([45, 75].contains(&running.score), "{running:?}");
}
