//! What migrations 0008 to 0010 changed: email lookups without an email index entry per
//! lead, account roll-ups read from decisions by the domain they were made with, a queue
//! stored by its key with only the idempotency keys that were given indexed, and an accept
//! that records the person's identity and leaves the lead's row to the deciding worker.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use super::scoring::LeadRef;
use super::{has_email, Store};
use crate::lead::{Decision, Lead, RawLead};

const LEASE: Duration = Duration::from_secs(60);

fn raw(v: serde_json::Value) -> RawLead {
    RawLead(v.as_object().cloned().unwrap_or_default())
}

fn lead(v: serde_json::Value) -> Lead {
    crate::normalize::Normalizer::default()
        .normalize(&raw(v))
        .expect("a valid lead")
}

/// A decision for `lead` whose `engagement` score is `score`.
fn decided(lead: &Lead, score: i64) -> Decision {
    serde_json::from_value(json!({
        "id": "", "email": lead.email, "status": "done", "lead": lead,
        "enrichment": {"fields": {}, "providers": []},
        "score": score, "grade": "B", "factors": [],
        "scores": {"engagement": {"score": score, "grade": "B", "total": score as f64, "factors": []}},
        "route": {"rule": "fallback", "action": "review", "pool": null, "owner": null,
                  "sequence": null, "reason": "test", "not_matched": []},
        "delivery": [], "decided_at": Utc::now(),
    }))
    .expect("a decision")
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    Store::open(&url).await.expect("open the store")
}

async fn arrive(store: &Store, v: serde_json::Value) {
    store
        .accept(&lead(v.clone()), &raw(v), None)
        .await
        .expect("accepted");
}

/// Claims the next job and records `decision_lead`'s decision for it, as a worker would;
/// answers the domain the lead's previous decision was made with.
async fn decide_next(store: &Store, decision_lead: &Lead, score: i64) -> Option<String> {
    let job = store.claim(LEASE).await.unwrap().expect("a queued job");
    store
        .complete(&job, decision_lead, &decided(decision_lead, score))
        .await
        .expect("recorded")
}

/// Accepts `v` and records `decision_lead`'s decision for it.
async fn accept_and_decide(store: &Store, v: serde_json::Value, decision_lead: &Lead, score: i64) {
    arrive(store, v).await;
    decide_next(store, decision_lead, score).await;
}

async fn account_scores(store: &Store, domain: &str) -> Vec<f64> {
    let mut rows: Vec<f64> = store
        .account_rows(domain, "engagement")
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    rows.sort_by(f64::total_cmp);
    rows
}

/// SQLite's plan for `sql`, its steps joined by ` | `. A plan is made when the statement is
/// prepared, so parameters need no values.
async fn plan_of(store: &Store, sql: &str) -> String {
    sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A database at `url` with the migrations before `version` applied, as an older leadgate
/// left it.
async fn store_made_before(url: &str, version: i64) -> sqlx::SqlitePool {
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
        .unwrap()
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut before = sqlx::migrate!("migrations/sqlite");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(&pool).await.unwrap();
    pool
}

/// A store at `url` with the migrations before `version` applied and `rows` inserted, closed
/// again: what an older leadgate left for the next one to open.
async fn store_left_before(url: &str, version: i64, rows: &[&str]) {
    let pool = store_made_before(url, version).await;
    for sql in rows {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

/// A person keyed by email is found through the identity index; one keyed by a CRM record
/// who learned an email while being processed, through the partial index. Erasure, outcomes
/// and `explain` all find both.
#[tokio::test]
async fn email_lookups_find_people_keyed_by_email_and_people_who_learned_one_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let ada = json!({"email": "ada@acme.io", "title": "CTO"});
    accept_and_decide(&store, ada.clone(), &lead(ada), 1).await;
    let record = store
        .accept_record(
            "hubspot:contact:7",
            &raw(json!({"hubspot_contact_id": "7"})),
            "k7",
            None,
        )
        .await
        .unwrap();
    let job = store.claim(LEASE).await.unwrap().expect("the record's job");
    let bob = lead(json!({"email": "bob@beta.io"}));
    store.complete(&job, &bob, &decided(&bob, 2)).await.unwrap();

    let ada_id = store
        .find_lead(&LeadRef::Email("ada@acme.io".into()))
        .await
        .unwrap()
        .expect("ada by email");
    let bob_id = store
        .find_lead(&LeadRef::Email("bob@beta.io".into()))
        .await
        .unwrap();
    assert_eq!(bob_id.as_deref(), Some(record.id.as_str()));
    assert_ne!(ada_id, record.id);
    assert!(store.lead_by_email("bob@beta.io").await.unwrap().is_some());
    assert!(store.lead_by_email("ada@acme.io").await.unwrap().is_some());
    assert!(store.lead_by_email("eve@acme.io").await.unwrap().is_none());

    // Each lookup reads an index, never the whole table.
    let plan = plan_of(
        &store,
        concat!("SELECT l.id FROM leads l WHERE ", has_email!()),
    )
    .await;
    assert!(plan.contains("leads_email_other"), "{plan}");
    assert!(!plan.contains("SCAN"), "{plan}");

    assert_eq!(store.erase_person("bob@beta.io").await.unwrap().leads, 1);
    assert_eq!(store.erase_person("ada@acme.io").await.unwrap().leads, 1);
    assert_eq!(store.erase_person("ada@acme.io").await.unwrap().leads, 0);
}

/// The roll-up takes each lead's latest decision, at the domain it was decided with: an
/// arrival with another domain moves the lead only once it is decided again. A decision
/// without a domain joins the account the lead was last stored with.
#[tokio::test]
async fn account_roll_ups_read_each_leads_latest_decision_by_its_domain() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let at_acme = json!({"email": "cy@acme.io", "domain": "acme.io"});
    accept_and_decide(&store, at_acme.clone(), &lead(at_acme), 10).await;
    // Di's lead row learns acme.io from her first decision (the row is the deciding worker's
    // to write, migration 0010); her next decision, made without a domain, stays there.
    let other = json!({"email": "di@acme.io", "domain": "acme.io"});
    accept_and_decide(&store, other.clone(), &lead(other.clone()), 5).await;
    let mut no_domain = lead(other.clone());
    no_domain.domain = None;
    accept_and_decide(&store, other, &no_domain, 20).await;
    assert_eq!(account_scores(&store, "acme.io").await, vec![10.0, 20.0]);
    assert!(account_scores(&store, "beta.io").await.is_empty());

    // Cy moves to beta.io: accepted, then decided there.
    let moved = json!({"email": "cy@acme.io", "domain": "beta.io"});
    arrive(&store, moved.clone()).await;
    assert_eq!(account_scores(&store, "acme.io").await, vec![10.0, 20.0]);
    // Cy leaves acme.io: the store says so, and the process bumps that account's version.
    let left = decide_next(&store, &lead(moved), 30).await;
    assert_eq!(left.as_deref(), Some("acme.io"));
    assert_eq!(account_scores(&store, "acme.io").await, vec![20.0]);
    assert_eq!(account_scores(&store, "beta.io").await, vec![30.0]);
}

/// A store made before 0008 keeps its accounts: the migration copies each lead's domain onto
/// its decisions.
#[tokio::test]
async fn migration_0008_gives_existing_decisions_their_leads_domain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    {
        let pool = store_made_before(&url, 8).await;
        let record =
            serde_json::to_string(&decided(&lead(json!({"email": "ed@acme.io"})), 40)).unwrap();
        for sql in [
            "INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at)
             VALUES ('L1', 'email:ed@acme.io', 'ed@acme.io', 'acme.io', '{}', 0, 0)",
            "INSERT INTO decisions (lead_id, score, grade, route_rule, record, decided_at)
             VALUES ('L1', 40, 'B', 'fallback', ?1, 0)",
        ] {
            sqlx::query(sql).bind(&record).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = Store::open(&url).await.expect("0008 applies");
    assert_eq!(account_scores(&store, "acme.io").await, vec![40.0]);
    assert_eq!(
        store
            .find_lead(&LeadRef::Email("ed@acme.io".into()))
            .await
            .unwrap()
            .as_deref(),
        Some("L1")
    );
}

/// A store made before 0009 keeps its queue: the jobs table is rebuilt clustered by its key,
/// with every job, and an idempotency key stored before still answers its earlier job.
#[tokio::test]
async fn migration_0009_keeps_every_job_and_its_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    store_left_before(
        &url,
        9,
        &[
            "INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at)
             VALUES ('L1', 'email:ed@acme.io', 'ed@acme.io', 'acme.io', '{}', 0, 0)",
            "INSERT INTO jobs (id, lead_id, idempotency_key, payload, status, attempts, created_at, updated_at)
             VALUES ('J1', 'L1', 'form-7', '{\"email\":\"ed@acme.io\"}', 'done', 1, 1, 2)",
            "INSERT INTO jobs (id, lead_id, payload, status, created_at, updated_at)
             VALUES ('J2', 'L1', '{\"email\":\"ed@acme.io\"}', 'queued', 3, 3)",
        ],
    )
    .await;
    let store = Store::open(&url).await.expect("0009 applies");

    let jobs: Vec<(String, Option<String>, String, i64)> =
        sqlx::query_as("SELECT id, idempotency_key, status, attempts FROM jobs ORDER BY id")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![
            ("J1".into(), Some("form-7".into()), "done".into(), 1),
            ("J2".into(), None, "queued".into(), 0),
        ]
    );
    // The queued job is still claimed.
    let claimed = store.claim(LEASE).await.unwrap().expect("the queued job");
    assert_eq!(claimed.id, "J2");

    // The key given before 0009 still answers its job, and a new arrival with it queues nothing.
    let v = json!({"email": "ed@acme.io"});
    let again = store
        .accept(&lead(v.clone()), &raw(v.clone()), Some("form-7"))
        .await
        .expect("answered");
    assert!(again.duplicate);
    assert_eq!((again.id.as_str(), again.job_id.as_str()), ("L1", "J1"));

    // Two arrivals without a key are two jobs: the partial index holds no NULLs to collide.
    for _ in 0..2 {
        let a = store
            .accept(&lead(v.clone()), &raw(v.clone()), None)
            .await
            .unwrap();
        assert!(!a.duplicate);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(count, 4);

    // The table is clustered (no rowid) and the key lookup reads the partial index.
    assert!(sqlx::query("SELECT rowid FROM jobs")
        .fetch_all(&store.pool)
        .await
        .is_err());
    let plan = plan_of(
        &store,
        "SELECT id, lead_id, status FROM jobs WHERE idempotency_key = ?1",
    )
    .await;
    assert!(plan.contains("jobs_idempotency"), "{plan}");
}

/// A claim takes the oldest job that is queued or whose lease ran out, and reads the claim
/// index in order for each, never every queued job.
#[tokio::test]
async fn a_claim_takes_the_oldest_claimable_job_through_the_claim_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    for n in 0..3 {
        arrive(&store, json!({"email": format!("p{n}@acme.io")})).await;
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM jobs ORDER BY created_at, id")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    // Same millisecond or not, the queue's order is its creation order.
    for (n, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE jobs SET created_at = ? WHERE id = ?")
            .bind(n as i64)
            .bind(id)
            .execute(&store.pool)
            .await
            .unwrap();
    }
    let first = store.claim(LEASE).await.unwrap().expect("a job");
    assert_eq!(first.id, ids[0]);
    let second = store.claim(LEASE).await.unwrap().expect("a job");
    assert_eq!(second.id, ids[1]);

    // The first claim's lease runs out: it is older than the job still queued, so it comes
    // back first, with one more attempt.
    sqlx::query("UPDATE jobs SET lease_until = 0 WHERE id = ?")
        .bind(&ids[0])
        .execute(&store.pool)
        .await
        .unwrap();
    let again = store.claim(LEASE).await.unwrap().expect("the expired job");
    assert_eq!((again.id.as_str(), again.attempts), (ids[0].as_str(), 2));
    let last = store.claim(LEASE).await.unwrap().expect("the queued job");
    assert_eq!(last.id, ids[2]);
    assert!(store.claim(LEASE).await.unwrap().is_none(), "nothing left");

    let plan = plan_of(&store, super::CLAIM).await;
    assert!(plan.contains("jobs_claim"), "{plan}");
    assert!(!plan.contains("MULTI-INDEX OR"), "{plan}");
    assert!(!plan.contains("SCAN jobs"), "{plan}");
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&store.pool)
        .await
        .unwrap()
}

/// An accept writes the identity and the job, not the lead's row; until a worker decides an
/// arrival, the lead is found by its id, a job id, its email and its external id, a second
/// arrival of the person joins it, and an outcome or a touch can name it.
#[tokio::test]
async fn a_pending_lead_is_one_lead_and_found_everywhere_before_any_decision() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let v = json!({"email": "Fay@Acme.io", "external_id": "crm-9", "title": "CFO"});
    let first = store
        .accept(&lead(v.clone()), &raw(v.clone()), None)
        .await
        .unwrap();
    assert_eq!(
        count(&store, "SELECT count(*) FROM leads").await,
        0,
        "no row yet"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM identities").await, 1);
    // Another batch, the same person: the same lead.
    let second = store.accept(&lead(v.clone()), &raw(v), None).await.unwrap();
    assert_eq!(second.id, first.id);
    assert_ne!(second.job_id, first.job_id);

    for by in [&first.id, &first.job_id, &second.job_id] {
        let view = store.lead(by).await.unwrap().expect("the pending lead");
        assert_eq!(view.id, first.id);
        assert_eq!(view.email.as_deref(), Some("fay@acme.io"));
        assert_eq!(view.status, "queued");
        assert_eq!(view.arrivals.len(), 2);
        assert!(view.decision.is_none());
    }
    for r in [
        LeadRef::Id(first.id.clone()),
        LeadRef::Id(first.job_id.clone()),
        LeadRef::Email("fay@acme.io".into()),
    ] {
        let found = store.find_lead(&r).await.unwrap();
        assert_eq!(found.as_deref(), Some(first.id.as_str()), "{r:?}");
    }
    // The external id is not the identity here (the email is), and no decision stored it yet.
    assert!(store
        .find_lead(&LeadRef::ExternalId("crm-9".into()))
        .await
        .unwrap()
        .is_none());
    let explained = store
        .lead_by_email("fay@acme.io")
        .await
        .unwrap()
        .expect("explain");
    assert_eq!(explained.0.get("title"), Some(&json!("CFO")));

    // An outcome needs the lead's row (it refers to it): it is written then, with the email.
    let outcome = crate::store::NewOutcome {
        converted: true,
        at: Utc::now(),
        value: None,
        source: None,
    };
    store.record_outcome(&first.id, &outcome).await.unwrap();
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT identity_key, email FROM leads WHERE id = ?")
            .bind(&first.id)
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        ("email:fay@acme.io".into(), Some("fay@acme.io".into()))
    );
    let touched = store
        .record_touch(&first.id, None, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(touched.map(|t| t.lead_id), Some(first.id.clone()));

    // The worker's decision fills the row the outcome made; nothing is written twice.
    let fay = lead(json!({"email": "fay@acme.io", "external_id": "crm-9", "domain": "acme.io"}));
    decide_next(&store, &fay, 40).await;
    let row: (String, Option<String>, i64) = sqlx::query_as(
        "SELECT domain, json_extract(data, '$.external_id'), arrivals FROM leads WHERE id = ?",
    )
    .bind(&first.id)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(row, ("acme.io".into(), Some("crm-9".into()), 1));
    assert_eq!(count(&store, "SELECT count(*) FROM leads").await, 1);
    let view = store.lead(&first.id).await.unwrap().expect("decided");
    assert!(view.decision.is_some());
}

/// A failed arrival still leaves a lead an outcome can name: `fail` writes its row.
#[tokio::test]
async fn a_failed_arrival_writes_its_leads_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    arrive(&store, json!({"email": "gus@acme.io"})).await;
    let job = store.claim(LEASE).await.unwrap().expect("the job");
    store.fail(&job, "invalid lead: test").await.unwrap();
    let row: (String, String, Option<String>) =
        sqlx::query_as("SELECT id, identity_key, email FROM leads")
            .fetch_one(&store.pool)
            .await
            .unwrap();
    assert_eq!(
        row,
        (
            job.lead_id.clone(),
            "email:gus@acme.io".into(),
            Some("gus@acme.io".into())
        )
    );
    let view = store.lead(&job.lead_id).await.unwrap().expect("the lead");
    assert_eq!(
        (view.status.as_str(), view.error.as_deref()),
        ("failed", Some("invalid lead: test"))
    );
}

/// Erasing a person no worker has decided yet removes the identity and the arrivals too,
/// and the next arrival is refused.
#[tokio::test]
async fn erasing_a_pending_person_leaves_nothing_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let v = json!({"email": "hal@acme.io"});
    let accepted = store
        .accept(&lead(v.clone()), &raw(v.clone()), None)
        .await
        .unwrap();
    arrive(&store, json!({"email": "ivy@acme.io"})).await;
    let erased = store.erase_person("hal@acme.io").await.unwrap();
    assert_eq!(erased.rows.get("jobs"), Some(&1));
    assert_eq!(store.rows_mentioning("hal@acme.io").await.unwrap(), 0);
    assert!(store.lead(&accepted.id).await.unwrap().is_none());
    assert!(store.lead(&accepted.job_id).await.unwrap().is_none());
    // Ivy is untouched.
    assert_eq!(count(&store, "SELECT count(*) FROM identities").await, 1);
    assert!(matches!(
        store.accept(&lead(v.clone()), &raw(v), None).await,
        Err(crate::store::StoreError::Suppressed)
    ));
}

/// A store made before 0010 keeps who is who: every lead's identity is copied, so a known
/// person arriving again joins their lead, and a job made before finds its lead's row.
#[tokio::test]
async fn migration_0010_gives_every_existing_lead_its_identity() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    store_left_before(
        &url,
        10,
        &[
            "INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at)
             VALUES ('L1', 'email:ed@acme.io', 'ed@acme.io', 'acme.io', '{}', 0, 0)",
            "INSERT INTO jobs (id, lead_id, payload, status, created_at, updated_at)
             VALUES ('J1', 'L1', '{\"email\":\"ed@acme.io\"}', 'queued', 1, 1)",
        ],
    )
    .await;
    let store = open(&dir).await;
    let v = json!({"email": "ed@acme.io"});
    let again = store.accept(&lead(v.clone()), &raw(v), None).await.unwrap();
    assert_eq!(again.id, "L1");
    let view = store.lead("L1").await.unwrap().expect("L1");
    assert_eq!(view.arrivals.len(), 2);
    // The job made before 0010 carries no identity; its lead's row is there to decide it.
    let ed = lead(json!({"email": "ed@acme.io", "domain": "acme.io"}));
    decide_next(&store, &ed, 10).await;
    assert_eq!(count(&store, "SELECT count(*) FROM leads").await, 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM decisions WHERE lead_id = 'L1'"
        )
        .await,
        1
    );
}

/// The running account totals (migration 0013) answer what the full read of the decisions
/// answers, through re-decided leads, a lead that moves to another company, decisions from
/// `leadgate run` and an erasure; and a decision reads one row, not the domain's history.
#[tokio::test]
async fn running_account_totals_answer_what_the_full_read_answers() {
    use crate::score::AccountRollup;
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let rollup = AccountRollup {
        score: "engagement".into(),
        half_life: Some(Duration::from_secs(3_600)),
    };
    let check = |store: &Store, when: &str| {
        let (store, rollup, when) = (store.clone(), rollup.clone(), when.to_string());
        async move {
            let now = Utc::now() + chrono::Duration::minutes(90);
            for domain in ["acme.io", "kestrel.io"] {
                let rows = store.account_rows(domain, "engagement").await.unwrap();
                let full = rollup.roll_up(&rows, now);
                let running = store.account_score(domain, &rollup, now).await.unwrap();
                assert_eq!(running, full, "{domain} {when}");
            }
        }
    };
    // The first reads make the totals (empty accounts too).
    check(&store, "before any decision").await;
    for i in 0..12 {
        let v = json!({"email": format!("p{i}@acme.io")});
        accept_and_decide(&store, v.clone(), &lead(v), 7 + i * 3).await;
    }
    check(&store, "after twelve decisions").await;
    // Re-decided: the newer value replaces the old one.
    for i in [2, 5] {
        let v = json!({"email": format!("p{i}@acme.io")});
        accept_and_decide(&store, v.clone(), &lead(v), 40).await;
    }
    // A person decided at another company leaves acme.io's total.
    let moved = json!({"email": "p7@acme.io"});
    let elsewhere = lead(json!({"email": "p7@kestrel.io"}));
    accept_and_decide(&store, moved, &elsewhere, 11).await;
    check(&store, "after re-decisions and a move").await;
    let mut batch: Vec<(Lead, Decision)> = (0..5)
        .map(|i| {
            let l = lead(json!({"email": format!("run{i}@kestrel.io")}));
            let d = decided(&l, 20 + i);
            (l, d)
        })
        .collect();
    store
        .record_batch(&mut batch, &Default::default())
        .await
        .unwrap();
    check(&store, "after a run").await;
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM account_rollups")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "one running total per account and score");
    store.erase_person("p3@acme.io").await.unwrap();
    check(&store, "after an erasure").await;
    let acme = store
        .account_score(
            "acme.io",
            &rollup,
            Utc::now() + chrono::Duration::minutes(90),
        )
        .await
        .unwrap();
    assert_eq!(acme.leads, 10, "12, one moved away, one erased");
}
