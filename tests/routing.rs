//! Routing against a real SQLite file: concurrent workers never share a slot and counts
//! stay exact, capacities hold under concurrency, account matching on domain variants,
//! simulations and dry runs change no state, and the SLA sweep reassigns then escalates
//! with a fixed clock.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use leadgate::batch::{self, RunOptions};
use leadgate::lead::{RawLead, RouteAction, SkipKind, SlaStep};
use leadgate::pipeline::Pipeline;
use leadgate::route::sla::{sweep_once, SweepReport};
use leadgate::route::{AssignmentSnapshot, LocalAssignments, Router};
use leadgate::rules::RuleFile;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::json;

const WORKERS: usize = 8;

/// Monday 23 November 2026, 10:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
}

async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!(
        "sqlite://{}",
        dir.path().join("leadgate.db").display()
    ))
    .await
    .unwrap();
    (dir, store)
}

fn router(text: &str) -> Router {
    Router::from_file(&RuleFile::from_text("routing.toml", text), Path::new(".")).unwrap()
}

fn pool_routing(strategy: &str, members: &str) -> String {
    format!(
        r#"
[[rule]]
id = "all"
when = "true"
assign = {{ pool = "p", sla = "4h" }}

[fallback]
review = {{ reason = "nobody could take it" }}

[[pool]]
id = "p"
strategy = "{strategy}"
members = [{members}]
"#
    )
}

/// `WORKERS` tasks route `per_worker` leads each through the store, at once.
async fn route_concurrently(
    router: Arc<Router>,
    store: &Store,
    per_worker: usize,
) -> Vec<leadgate::lead::Route> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (router, store) = (router.clone(), store.clone());
        tasks.spawn(async move {
            let mut routes = Vec::new();
            for i in 0..per_worker {
                routes.push(route_one(&router, &store, i).await);
            }
            routes
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

/// Routes hot lead `i` (`lead{i}@acme.io`) at `t0`, recording picks through `assignments`.
async fn route_one(
    router: &Router,
    assignments: &dyn leadgate::route::Assignments,
    i: usize,
) -> leadgate::lead::Route {
    let lead = leadgate::normalize::Normalizer::default()
        .normalize(&RawLead(
            json!({"email": format!("lead{i}@acme.io")})
                .as_object()
                .unwrap()
                .clone(),
        ))
        .unwrap();
    let enriched = leadgate::lead::EnrichedLead {
        lead,
        enrichment: Default::default(),
    };
    let mut ctx = leadgate::rules::RuleContext::for_lead(&enriched, &json!({}), t0());
    ctx.set("grade", &json!("hot"));
    let scored = leadgate::lead::ScoredLead {
        enriched,
        score: 90,
        grade: "hot".into(),
        factors: Default::default(),
    };
    router
        .route(&scored, &mut ctx, assignments, t0())
        .await
        .unwrap()
}

fn per_owner(routes: &[leadgate::lead::Route]) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    for r in routes {
        if let Some(o) = &r.owner {
            *m.entry(o.clone()).or_default() += 1;
        }
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_workers_never_share_a_slot_and_counts_stay_exact() {
    let (_dir, store) = temp_store().await;
    let r = Arc::new(router(&pool_routing(
        "round_robin",
        r#"{ owner = "a" }, { owner = "b" }, { owner = "c" }"#,
    )));
    let routes = route_concurrently(r, &store, 125).await;
    assert_eq!(routes.len(), 1000);
    let owners = per_owner(&routes);
    // Every slot handed out once: round robin stays exact however the workers interleave.
    assert_eq!(
        owners,
        BTreeMap::from([("a".into(), 334), ("b".into(), 333), ("c".into(), 333)])
    );
    let day = t0().date_naive().to_string();
    for (owner, n) in &owners {
        assert_eq!(
            store.assigned_on(owner, &day).await.unwrap(),
            *n,
            "stored count of {owner}"
        );
    }
    assert_eq!(store.rotation_positions().await.unwrap()["p"], 1000 % 3);
}

/// A job routed again (its worker died between the pick and the decision; the lease brought
/// it back) gets the member it got the first time, and the rotation and the owner's count
/// move once; the next job gets the next member. The same for an owner counted without a
/// pool.
async fn a_job_routed_twice_spends_one_pick(store: Store) {
    use leadgate::route::Assignments;
    let r = router(&pool_routing(
        "round_robin",
        r#"{ owner = "a" }, { owner = "b" }, { owner = "c" }"#,
    ));
    let day = t0().date_naive().to_string();
    let first = route_one(&r, &store.for_job("job-1"), 1).await;
    let position = store.rotation_positions().await.unwrap()["p"];
    let again = route_one(&r, &store.for_job("job-1"), 1).await;
    assert_eq!(again.owner, first.owner, "the retried job keeps its member");
    assert_eq!(store.rotation_positions().await.unwrap()["p"], position);
    let owner = first.owner.clone().unwrap();
    assert_eq!(store.assigned_on(&owner, &day).await.unwrap(), 1);
    let next = route_one(&r, &store.for_job("job-2"), 2).await;
    assert_ne!(next.owner, first.owner, "another job takes the next slot");
    assert_eq!(
        store.rotation_positions().await.unwrap()["p"],
        (position + 1) % 3
    );
    // Without a job (the SLA sweep's reassignments), every call is a pick of its own.
    let untied = route_one(&r, &store, 1).await;
    assert_ne!(untied.owner, next.owner);
    for _ in 0..2 {
        store.for_job("job-3").count("rep@x", &day).await.unwrap();
    }
    assert_eq!(store.assigned_on("rep@x", &day).await.unwrap(), 1);
    store.count("rep@x", &day).await.unwrap();
    assert_eq!(store.assigned_on("rep@x", &day).await.unwrap(), 2);
}

#[tokio::test]
async fn a_job_routed_twice_spends_one_pick_on_sqlite() {
    let (_dir, store) = temp_store().await;
    a_job_routed_twice_spends_one_pick(store).await;
}

#[cfg(feature = "postgres-tests")]
#[tokio::test]
async fn a_job_routed_twice_spends_one_pick_on_postgres() {
    let store = Store::open(&support::fresh_postgres_db().await)
        .await
        .unwrap();
    a_job_routed_twice_spends_one_pick(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_holds_under_concurrency_and_the_rest_goes_to_the_fallback() {
    let (_dir, store) = temp_store().await;
    let members = r#"{ owner = "a", capacity_per_day = 40 }, { owner = "b", capacity_per_day = 25 }, { owner = "c", capacity_per_day = 60 }"#;
    let r = Arc::new(router(&pool_routing("load_balanced", members)));
    let routes = route_concurrently(r, &store, 20).await;
    let owners = per_owner(&routes);
    assert_eq!(
        owners,
        BTreeMap::from([("a".into(), 40), ("b".into(), 25), ("c".into(), 60)])
    );
    let overflowed: Vec<_> = routes
        .iter()
        .filter(|r| r.action == RouteAction::Review)
        .collect();
    assert_eq!(overflowed.len(), 160 - 125);
    assert!(overflowed[0]
        .skipped_members
        .iter()
        .all(|s| s.kind == Some(SkipKind::AtCapacity)));
    let day = t0().date_naive().to_string();
    assert_eq!(store.assigned_on("b", &day).await.unwrap(), 25);
}

#[tokio::test]
async fn accounts_match_on_domain_variants_and_subdomains() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accounts.csv"),
        "account_id,domain,name,owner\n\
         A1,https://www.Acme.com/,Acme,o1\n\
         A2,globex.co.uk,Globex,o2\n\
         A3,eu.initech.com;initech.io,Initech EU,o3\n\
         A4,initech.com,Initech,o4\n",
    )
    .unwrap();
    let text =
        "[account_match]\nfile = \"accounts.csv\"\n\n[fallback]\nenroll = { sequence = \"x\" }\n";
    let r = Router::from_file(&RuleFile::from_text("routing.toml", text), dir.path()).unwrap();
    let n = leadgate::normalize::Normalizer::default();
    let cases = [
        (json!({"email": "ada@acme.com"}), Some("A1")),
        (json!({"email": "ada@mail.ACME.com"}), Some("A1")),
        (json!({"domain": "WWW.ACME.COM"}), Some("A1")),
        (
            json!({"website": "https://acme.com/pricing?utm=x", "email": "x@gmail.com"}),
            Some("A1"),
        ),
        (json!({"email": "bo@london.globex.co.uk"}), Some("A2")),
        (json!({"email": "cy@eu.initech.com"}), Some("A3")),
        (json!({"email": "cy@sales.eu.initech.com"}), Some("A3")),
        (json!({"email": "cy@initech.io"}), Some("A3")),
        (json!({"email": "cy@us.initech.com"}), Some("A4")),
        (json!({"email": "dee@globex.com"}), None),
        (json!({"email": "ed@gmail.com"}), None),
    ];
    for (raw, expected) in cases {
        let lead = n
            .normalize(&RawLead(raw.as_object().unwrap().clone()))
            .unwrap();
        let account = r.match_account(&lead).await;
        assert_eq!(
            account.get("id").and_then(|v| v.as_str()),
            expected,
            "{raw}"
        );
    }
}

/// A copy of the shipped config in a temp dir (its own SQLite file), with `routing.toml`
/// replaced when given.
fn config_copy(routing: Option<&str>) -> (tempfile::TempDir, Settings) {
    let (dir, cfg) = support::config_copy();
    if let Some(text) = routing {
        std::fs::write(dir.path().join("config/routing.toml"), text).unwrap();
    }
    let settings = Settings::load(&cfg).unwrap();
    (dir, settings)
}

async fn state_of(store: &Store) -> (AssignmentSnapshot, i64) {
    (
        store.assignment_snapshot(t0()).await.unwrap(),
        store.decision_count().await.unwrap(),
    )
}

#[tokio::test]
async fn simulation_and_dry_runs_change_no_state() {
    let (_dir, settings) = config_copy(None);
    let pipeline = Pipeline::build(&settings).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    // Some live state first: a real run records positions, counts and decisions.
    batch::run_file(
        &pipeline,
        &store,
        Path::new("config/sample-leads.csv"),
        RunOptions {
            out: None,
            dry_run: false,
            keep_decisions: false,
        },
    )
    .await
    .unwrap();
    store
        .pause_member("sdr", "41629785", Some("training"), t0())
        .await
        .unwrap();
    let before = state_of(&store).await;
    assert!(before.1 > 0 && !before.0.counts.is_empty());

    let opts = || RunOptions {
        out: None,
        dry_run: true,
        keep_decisions: true,
    };
    let sim = batch::run_file_with(
        &pipeline,
        &store,
        Path::new("config/past-leads.csv"),
        opts(),
        &LocalAssignments::simulation(),
    )
    .await
    .unwrap();
    assert_eq!(sim.decisions.len(), 600);
    batch::run_file(
        &pipeline,
        &store,
        Path::new("config/sample-leads.csv"),
        opts(),
    )
    .await
    .unwrap();
    let lead = pipeline
        .normalize(&RawLead(
            json!({"email": "cto@acme.io"}).as_object().unwrap().clone(),
        ))
        .unwrap();
    let dry = LocalAssignments::from_snapshot(store.assignment_snapshot(Utc::now()).await.unwrap());
    pipeline.decide(lead, &dry, Utc::now()).await.unwrap();

    assert_eq!(
        state_of(&store).await,
        before,
        "a simulation or dry run wrote routing state"
    );
}

const SLA_ROUTING: &str = r#"
[[rule]]
id = "all"
when = "true"
assign = { pool = "p", sla = "4h" }

[fallback]
review = { reason = "nobody could take it" }

[sla]
max_reassignments = 1
escalate_to = { owner = "mgr" }

[[pool]]
id = "p"
members = [{ owner = "a" }, { owner = "b" }]
"#;

/// Accepts, decides (live, through the store) and records one lead at `t0`.
async fn routed_lead(pipeline: &Pipeline, store: &Store, email: &str) -> String {
    let raw = RawLead(json!({"email": email}).as_object().unwrap().clone());
    let lead = pipeline.normalize(&raw).unwrap();
    let accepted = store.accept(&lead, &raw, None).await.unwrap();
    let job = store
        .claim(std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let decision = pipeline.decide(lead.clone(), store, t0()).await.unwrap();
    store.complete(&job, &lead, &decision).await.unwrap();
    accepted.id
}

async fn latest_route(store: &Store, id: &str) -> serde_json::Value {
    store.lead(id).await.unwrap().unwrap().decision.unwrap()["route"].clone()
}

#[tokio::test]
async fn sla_breach_reassigns_to_the_next_member_then_escalates() {
    let (_dir, settings) = config_copy(Some(SLA_ROUTING));
    let pipeline = Pipeline::build(&settings).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    let id = routed_lead(&pipeline, &store, "ada@acme.io").await;
    let route = latest_route(&store, &id).await;
    assert_eq!(route["owner"], "a");
    assert_eq!(route["sla_due_at"], "2026-11-23T14:00:00Z");

    let sweep = |at: DateTime<Utc>| {
        let (p, s) = (&pipeline, &store);
        async move { sweep_once(&p.router, s, s, at).await.unwrap() }
    };
    assert_eq!(
        sweep(t0() + Duration::hours(3)).await,
        SweepReport::default(),
        "not due yet"
    );

    // 4h passed untouched: the next eligible member of the pool gets it, with a fresh SLA.
    let at = t0() + Duration::hours(4) + Duration::minutes(1);
    assert_eq!(
        sweep(at).await,
        SweepReport {
            checked: 1,
            reassigned: 1,
            ..Default::default()
        }
    );
    let route = latest_route(&store, &id).await;
    assert_eq!(
        (route["owner"].as_str(), route["previous_owner"].as_str()),
        (Some("b"), Some("a"))
    );
    assert_eq!(route["sla_step"], json!(SlaStep::Reassigned));
    assert!(
        route["reason"]
            .as_str()
            .unwrap()
            .contains("SLA of 4h breached: owner a did not touch the lead"),
        "{route}"
    );

    // b lets it pass too: reassignments are used up, so it escalates to the manager.
    let at2 = at + Duration::hours(4) + Duration::minutes(1);
    assert_eq!(
        sweep(at2).await,
        SweepReport {
            checked: 1,
            escalated: 1,
            ..Default::default()
        }
    );
    let view = store.lead(&id).await.unwrap().unwrap();
    assert_eq!(
        view.history.len(),
        3,
        "routing, reassignment and escalation are all in the history"
    );
    assert_eq!(view.decision.unwrap()["route"]["owner"], "mgr");
    let events: Vec<String> = store
        .route_events(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(
        events,
        [
            "assigned",
            "sla_breached",
            "reassigned",
            "sla_breached",
            "escalated"
        ]
    );
    assert_eq!(
        sweep(at2 + Duration::days(2)).await,
        SweepReport::default(),
        "an escalation carries no SLA"
    );
}

#[tokio::test]
async fn a_touch_in_time_meets_the_sla_and_nothing_moves() {
    let (_dir, settings) = config_copy(Some(SLA_ROUTING));
    let pipeline = Pipeline::build(&settings).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    let id = routed_lead(&pipeline, &store, "ada@acme.io").await;
    let touched = store
        .record_touch(&id, Some("a"), Some("call"), t0() + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.sla_met, 1);
    assert_eq!(
        sweep_once(&pipeline.router, &store, &store, t0() + Duration::hours(5))
            .await
            .unwrap(),
        SweepReport::default()
    );
    let assignments = store.lead_assignments(&id).await.unwrap();
    assert_eq!(
        (assignments.len(), assignments[0].status.as_str()),
        (1, "met")
    );
    assert!(store
        .record_touch("no-such-lead", None, None, t0())
        .await
        .unwrap()
        .is_none());
}

/// A touch finds a lead no worker has decided yet (pending, migration 0010), as on
/// PostgreSQL (tests/store_postgres.rs).
#[tokio::test]
async fn a_touch_finds_a_lead_before_its_decision() {
    let (_dir, settings) = config_copy(None);
    let pipeline = Pipeline::build(&settings).unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    support::assert_touch_finds_an_undecided_lead(&store, &pipeline).await;
}

#[test]
fn the_shipped_routing_config_loads() {
    let path = PathBuf::from("config/routing.toml");
    let r = Router::load(&path).unwrap();
    assert!(r.territories().len() >= 4);
    assert!(r
        .pools()
        .any(|p| p.members.iter().any(|m| m.capacity.is_some())));
}
