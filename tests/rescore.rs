//! Scores at rest (issue 25): the re-scoring sweep scores stored people again when time,
//! new events or a rules change move their score, records each move with its cause, and
//! fires each `[[trigger]]` once per (trigger, lead, decision) — with a mock HubSpot on
//! 127.0.0.1 answering as HubSpot does, and the clock injected into the sweep.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadgate::crm::Crm;
use leadgate::lead::{Event, RawLead};
use leadgate::pipeline::Pipeline;
use leadgate::rescore::{sweep_once, Cause, RescorePolicy};
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Value};
use support::{repo_path, temp_db};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// 45 points for everyone, 40 for a demo request fading by half every 10 days: a demo
/// request today is hot (85), twenty days on it is warm (55).
const SCORING: &str = r#"
[grades]
hot = 80
warm = 50

[[rule]]
id = "everyone"
dimension = "fit"
when = "true"
points = 45

[[event]]
id = "demo-request"
type = "form_submit"
when = "has(event.form) && event.form == 'demo-request'"
points = 40
half_life = "10d"
max = 40
"#;

const ROUTING: &str = r#"
[[rule]]
id = "hot-to-ae"
when = "grade == 'hot'"
assign = { owner = "41629779" }

[[rule]]
id = "rest"
when = "true"
assign = { owner = "7001" }

[fallback]
review = { reason = "unrouted" }

[[trigger]]
name = "became-hot"
when = "grade == 'hot' && previous.grade != 'hot'"
then = ["write_score"]

[[trigger]]
name = "cooled"
when = "grade != 'hot' && previous.grade == 'hot'"
then = ["write_score"]
"#;

/// A config folder with `scoring` and `routing`, the shipped lists and connectors, and
/// `extra` appended to leadgate.toml.
fn config(scoring: &str, routing: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scoring.toml"), scoring).unwrap();
    std::fs::write(dir.path().join("routing.toml"), routing).unwrap();
    let text = format!(
        r#"scoring = "scoring.toml"
routing = "routing.toml"
connectors = "{connectors}"
[normalize]
free_email_domains = "{free}"
disposable_email_domains = "{disposable}"
[enrichment]
waterfall = []
{extra}
"#,
        connectors = repo_path("connectors"),
        free = repo_path("config/free-email-domains.txt"),
        disposable = repo_path("config/disposable-email-domains.txt"),
    );
    let file = dir.path().join("leadgate.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// HubSpot as the delivery target, with the score and grade mapped.
fn hubspot(url: &str) -> String {
    format!(
        r#"[providers.hubspot]
api_key = "pat-test-token"
base_url = "{url}"
[delivery]
target = "hubspot"
[[delivery.field]]
canonical = "score"
property = "leadgate_score"
policy = "overwrite"
[[delivery.field]]
canonical = "grade"
property = "leadgate_grade"
policy = "overwrite"
"#
    )
}

/// HubSpot answering a contact search with nothing and a batch upsert with contact 901.
async fn mock_hubspot() -> MockServer {
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

async fn upserts(crm: &MockServer) -> Vec<Request> {
    crm.received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.method.as_str() == "POST" && r.url.path() == "/crm/v3/objects/contacts/batch/upsert"
        })
        .collect()
}

fn upserted(r: &Request) -> Value {
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    body["inputs"][0]["properties"].clone()
}

struct World {
    _dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    db: PathBuf,
    file: PathBuf,
    services: Arc<Services>,
    policy: RescorePolicy,
}

async fn world(scoring: &str, routing: &str, extra: &str) -> World {
    let (dir, file) = config(scoring, routing, extra);
    let (db_dir, db) = temp_db();
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (services, policy) = services(&file, store);
    World {
        _dir: dir,
        _db: db_dir,
        db,
        file,
        services,
        policy,
    }
}

fn services(file: &Path, store: Store) -> (Arc<Services>, RescorePolicy) {
    let settings = Settings::load(file).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    let policy =
        RescorePolicy::from_settings(&settings, &pipeline.scorer).unwrap_or_else(|e| panic!("{e}"));
    let delivery = Crm::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    let services = Services {
        delivery,
        ..Services::new(pipeline, store)
    };
    (Arc::new(services), policy)
}

impl World {
    fn store(&self) -> &Store {
        &self.services.store
    }

    /// Queues a lead, decides, delivers and records it at `now`, as a worker does (its
    /// events joining the person's history first). Returns the lead id.
    async fn arrive(&self, lead: Value, now: DateTime<Utc>) -> String {
        let s = &self.services;
        let raw = RawLead(lead.as_object().unwrap().clone());
        let normalized = s.pipeline.normalize(&raw).unwrap();
        s.store.accept(&normalized, &raw, None).await.unwrap();
        let job = s
            .store
            .claim(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job");
        let lead = leadgate::events::with_history(
            &s.store,
            &s.pipeline.scorer,
            &job.lead_id,
            normalized,
            now,
        )
        .await
        .unwrap();
        let mut decision = s
            .pipeline
            .decide(lead.clone(), &s.store, now)
            .await
            .unwrap();
        decision.decided_at = now;
        if let Some(crm) = &s.delivery {
            decision = crm
                .deliver(&s.store, &job, decision, &leadgate::crm::fence::Unfenced)
                .await
                .unwrap();
        }
        s.store.complete(&job, &lead, &decision).await.unwrap();
        job.lead_id
    }

    async fn history(&self, id: &str) -> Vec<Value> {
        self.store().lead(id).await.unwrap().unwrap().history
    }
}

fn demo_request(at: DateTime<Utc>) -> Value {
    json!({"type": "form_submit", "form": "demo-request", "at": at.to_rfc3339()})
}

#[tokio::test]
async fn decay_crossing_a_threshold_fires_one_trigger_and_one_crm_write() {
    let crm = mock_hubspot().await;
    let w = world(SCORING, ROUTING, &hubspot(&crm.uri())).await;
    let t0 = Utc::now();
    let id = w
        .arrive(
            json!({"email": "ada@kestrel-data.io", "events": [demo_request(t0)]}),
            t0,
        )
        .await;
    assert_eq!(upserts(&crm).await.len(), 1, "the arrival's delivery");
    assert_eq!(w.history(&id).await[0]["grade"], "hot");

    // Moments later nothing moved: nothing is written.
    let r = sweep_once(&w.services, &w.policy, t0 + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!((r.scored, r.changed), (1, 0), "{r:?}");
    assert!(r.fired.is_empty());

    // Twenty days on (the clock injected): 45 + 40/4 = 55, warm.
    let later = t0 + chrono::Duration::days(20);
    let r = sweep_once(&w.services, &w.policy, later).await.unwrap();
    assert_eq!(r.changed, 1, "{r:?}");
    assert_eq!(r.grade_changes.len(), 1);
    let change = &r.grade_changes[0];
    assert_eq!(
        (change.previous_grade.as_str(), change.grade.as_str()),
        ("hot", "warm")
    );
    assert_eq!((change.previous_score, change.score), (85, 55));
    assert_eq!(change.cause, Cause::Decay);
    let fired: Vec<&str> = r.fired.iter().map(|f| f.trigger.as_str()).collect();
    assert_eq!(fired, ["cooled"]);
    let writes = upserts(&crm).await;
    assert_eq!(writes.len(), 2, "one CRM write for the firing");
    assert_eq!(upserted(&writes[1])["leadgate_score"], json!(55));
    assert_eq!(upserted(&writes[1])["leadgate_grade"], "warm");

    // The same pass again, and the next one: no second firing, no second write.
    let r = sweep_once(&w.services, &w.policy, later).await.unwrap();
    assert_eq!(r.scored, 0, "claimed people wait for the next pass");
    let r = sweep_once(&w.services, &w.policy, later + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(r.fired.is_empty(), "{r:?}");
    assert_eq!(upserts(&crm).await.len(), 2);

    // The move is in the lead's history with its cause.
    let history = w.history(&id).await;
    assert!(history.len() >= 2, "{history:?}");
    let moved = history
        .iter()
        .find(|d| d["rescore"]["cause"] == "decay")
        .expect("a decision with cause decay");
    assert_eq!(moved["score"], 55);
    assert_eq!(moved["rescore"]["previous_grade"], "hot");
    assert_eq!(moved["rescore"]["rules"], w.policy.rules.as_str());
    let triggers: Vec<_> = w
        .store()
        .crm_writes(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.op == "trigger")
        .collect();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    assert_eq!(triggers[0].status, "ok");
}

#[tokio::test]
async fn a_new_event_raising_a_person_to_hot_fires_once() {
    let crm = mock_hubspot().await;
    let w = world(SCORING, ROUTING, &hubspot(&crm.uri())).await;
    let t0 = Utc::now();
    let id = w
        .arrive(json!({"email": "grace@kestrel-data.io"}), t0)
        .await;
    assert_eq!(w.history(&id).await[0]["grade"], "cold");
    // Nothing fades for a person without events: the first pass leaves them until an event.
    let r = sweep_once(&w.services, &w.policy, t0).await.unwrap();
    assert_eq!(r.changed, 0);
    let r = sweep_once(&w.services, &w.policy, t0 + chrono::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(r.scored, 0, "no event, nothing due: {r:?}");

    // An event as POST /v1/events stores it.
    let event: Event = serde_json::from_value(demo_request(t0)).unwrap();
    assert_eq!(
        w.store()
            .append_events(&id, std::slice::from_ref(&event))
            .await
            .unwrap(),
        1
    );
    let at = t0 + chrono::Duration::hours(3);
    let r = sweep_once(&w.services, &w.policy, at).await.unwrap();
    assert_eq!(r.grade_changes.len(), 1, "{r:?}");
    assert_eq!(r.grade_changes[0].cause, Cause::Event);
    assert_eq!(r.grade_changes[0].grade, "hot");
    let fired: Vec<&str> = r.fired.iter().map(|f| f.trigger.as_str()).collect();
    assert_eq!(fired, ["became-hot"]);
    let writes = upserts(&crm).await;
    assert_eq!(writes.len(), 2, "the arrival's and the trigger's");
    assert_eq!(upserted(&writes[1])["leadgate_grade"], "hot");

    // A replay of the same event is kept once and moves nothing.
    assert_eq!(w.store().append_events(&id, &[event]).await.unwrap(), 0);
    let r = sweep_once(&w.services, &w.policy, at + chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert!(r.fired.is_empty() && r.changed == 0, "{r:?}");
    assert_eq!(upserts(&crm).await.len(), 2);
    let latest = w.history(&id).await.last().cloned().unwrap();
    assert_eq!(latest["rescore"]["cause"], "event");
    assert_eq!(latest["grade"], "hot");
}

#[tokio::test]
async fn a_rules_change_regrades_everyone_once_and_rescore_all_marks_them() {
    let w = world(SCORING, ROUTING, "").await;
    let t0 = Utc::now();
    let ids = [
        w.arrive(json!({"email": "a@kestrel-data.io"}), t0).await,
        w.arrive(json!({"email": "b@kestrel-data.io"}), t0).await,
    ];
    let r = sweep_once(&w.services, &w.policy, t0).await.unwrap();
    assert_eq!((r.marked, r.changed), (0, 0));

    // New rules: everyone is worth 85. The next sweep sees another digest.
    std::fs::write(
        w.file.parent().unwrap().join("scoring.toml"),
        SCORING.replace("points = 45", "points = 85"),
    )
    .unwrap();
    let (services, policy) = services(&w.file, w.store().clone());
    assert_ne!(policy.rules, w.policy.rules);
    let r = sweep_once(&services, &policy, t0 + chrono::Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(r.marked, 2, "{r:?}");
    assert_eq!(r.grade_changes.len(), 2);
    assert!(r
        .grade_changes
        .iter()
        .all(|c| c.cause == Cause::RulesChange && c.grade == "hot" && c.previous_grade == "cold"));
    for id in &ids {
        let latest = w.history(id).await.last().cloned().unwrap();
        assert_eq!(latest["rescore"]["cause"], "rules_change");
        assert_eq!(latest["score"], 85);
    }

    // Back to the old rules, through the CLI: a dry run prints the moves and writes none,
    // `--all --now` makes them.
    std::fs::write(w.file.parent().unwrap().join("scoring.toml"), SCORING).unwrap();
    let decisions = rusqlite_count;
    let before = decisions(&w.db);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(support::BIN)
            .arg("rescore")
            .args(args)
            .env("LEADGATE_CONFIG", &w.file)
            .env(
                "LEADGATE__STORAGE__URL",
                format!("sqlite://{}", w.db.display()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let dry = cli(&["--all", "--dry-run"]);
    assert!(dry.contains("2 of 2 people would change grade"), "{dry}");
    assert!(
        dry.contains("hot") && dry.contains("cold") && dry.contains("rules_change"),
        "{dry}"
    );
    assert_eq!(decisions(&w.db), before, "a dry run writes nothing");
    let now = cli(&["--all", "--now"]);
    assert!(now.contains("marked 2 people"), "{now}");
    assert!(now.contains("2 grades moved"), "{now}");
    assert_eq!(decisions(&w.db), before + 2);
    for id in &ids {
        let latest = w.history(id).await.last().cloned().unwrap();
        assert_eq!(latest["grade"], "cold");
        assert_eq!(latest["rescore"]["cause"], "rules_change");
    }
    // `explain` lists the stored score's moves at rest under today's evaluation.
    let out = std::process::Command::new(support::BIN)
        .args(["explain", "a@kestrel-data.io"])
        .env("LEADGATE_CONFIG", &w.file)
        .env(
            "LEADGATE__STORAGE__URL",
            format!("sqlite://{}", w.db.display()),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("moved at rest"), "{text}");
    assert!(
        text.contains("rules_change: 45 (cold) → 85 (hot)")
            && text.contains("rules_change: 85 (hot) → 45 (cold)"),
        "{text}"
    );
}

/// How many decisions the SQLite file holds, read outside the store under test.
fn rusqlite_count(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn check_names_a_bad_trigger() {
    let (_dir, file) = config(
        SCORING,
        &format!("{ROUTING}\n[[trigger]]\nname = \"broken\"\nwhen = \"grade == 'hot'\"\nthen = [\"page_the_ceo\"]\n"),
        "",
    );
    let out = std::process::Command::new(support::BIN)
        .arg("check")
        .env("LEADGATE_CONFIG", &file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trigger \"broken\" then[0]") && err.contains("page_the_ceo"),
        "{err}"
    );
}

#[cfg(feature = "postgres-tests")]
mod postgres {
    use super::*;

    /// Two replicas (two stores, two services, one database) sweep at once: each person is
    /// scored by one of them, and each trigger fires once per person.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_replicas_fire_each_trigger_once() {
        let url = support::fresh_postgres_db().await;
        let (_dir, file) = config(SCORING, ROUTING, "[rescore]\nbatch = 25\n");
        let one = Store::open(&url).await.unwrap();
        let (a, policy) = services(&file, one);
        let (b, _) = services(&file, Store::open(&url).await.unwrap());
        let w = World {
            _dir: tempfile::tempdir().unwrap(),
            _db: tempfile::tempdir().unwrap(),
            db: PathBuf::new(),
            file: file.clone(),
            services: a.clone(),
            policy: policy.clone(),
        };
        let t0 = Utc::now();
        let n = 120;
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(
                w.arrive(
                    json!({"email": format!("p{i}@kestrel-data.io"), "events": [demo_request(t0)]}),
                    t0,
                )
                .await,
            );
        }
        let later = t0 + chrono::Duration::days(20);
        let (ra, rb) = tokio::join!(
            sweep_once(&a, &policy, later),
            sweep_once(&b, &policy, later)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.scored + rb.scored, n, "{} + {}", ra.scored, rb.scored);
        let mut fired: Vec<&str> = ra
            .fired
            .iter()
            .chain(&rb.fired)
            .map(|f| f.lead_id.as_str())
            .collect();
        fired.sort();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(fired, want, "each person's trigger fired once");
        for id in &ids {
            let triggers = a
                .store
                .crm_writes(id)
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.op == "trigger")
                .count();
            assert_eq!(triggers, 1, "lead {id}");
            let history = w.history(id).await;
            assert_eq!(history.len(), 2, "one decision at rest for {id}");
        }
        // Both again: nobody is due, nothing fires.
        let (ra, rb) = tokio::join!(
            sweep_once(&a, &policy, later),
            sweep_once(&b, &policy, later)
        );
        assert_eq!(ra.unwrap().scored + rb.unwrap().scored, 0);
    }
}
