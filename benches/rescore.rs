//! Re-scoring at rest (issue 25 item 6): one sweep pass over 1,000,000 stored people on a
//! SQLite file, each scored again by the shipped rules from their stored decision and two
//! stored events (no enrichment call), one claim and one write transaction per batch.
//!
//! The people are written straight into the file (the decision the shipped pipeline made
//! for one template lead, its email and domain varied across 1,000 companies): deciding a
//! million arrivals first would take the bench far longer than the sweep it measures. The
//! pass runs `[rescore] every` (15 minutes) after the decisions, as the daemon's next pass
//! would: decay moves some scores by a point, and only those are written. The account
//! roll-up is off (see below).
//!
//! `cargo bench --bench rescore`; LEADGATE_BENCH_RESCORE_PEOPLE (1000000). Prints figures;
//! asserts nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use leadgate::lead::{Event, RawLead};
use leadgate::pipeline::Pipeline;
use leadgate::rescore::{sweep_once, RescorePolicy};
use leadgate::route::LocalAssignments;
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const TEMPLATE_DOMAIN: &str = "kestrel-data.io";

fn main() {
    let people = env_usize("LEADGATE_BENCH_RESCORE_PEOPLE", 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(people));
}

async fn run(people: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rescore.db");
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.insert(
        "LEADGATE__STORAGE__URL".into(),
        format!("sqlite://{}", db.display()),
    );
    let mut settings = Settings::load_with_env(Path::new("config/leadgate.toml"), env).unwrap();
    // The shipped rules with the account roll-up off: the people are written straight into
    // the file, without the roll-up's running totals, so their stored scores (made before
    // any colleague existed) would all move by the account rule on the first pass.
    let scoring = std::fs::read_to_string("config/scoring.toml")
        .unwrap()
        .replace("[account]\n", "[account]\nenabled = false\n");
    assert!(scoring.contains("enabled = false"));
    let rules = dir.path().join("scoring.toml");
    std::fs::write(&rules, scoring).unwrap();
    settings.config.scoring = rules;
    // Its lists resolve beside it.
    std::fs::copy(
        "config/competitor-domains.txt",
        dir.path().join("competitor-domains.txt"),
    )
    .unwrap();
    let store = Store::open(&settings.storage_url()).await.unwrap();
    let pipeline = Pipeline::build(&settings).unwrap();

    let t0 = Utc::now();
    let events: Vec<Event> = [
        json!({"type": "page_view", "path": "/pricing", "at": (t0 - Duration::days(2)).to_rfc3339()}),
        json!({"type": "form_submit", "form": "demo-request", "at": (t0 - Duration::days(5)).to_rfc3339()}),
    ]
    .into_iter()
    .map(|e| serde_json::from_value(e).unwrap())
    .collect();
    let raw = json!({"email": format!("template@{TEMPLATE_DOMAIN}"), "first_name": "Ada",
        "title": "VP Sales", "company": "Kestrel Data", "events": events});
    let lead = pipeline
        .normalize(&RawLead(raw.as_object().unwrap().clone()))
        .unwrap();
    let decision = pipeline
        .decide(lead, &LocalAssignments::simulation(), t0)
        .await
        .unwrap();
    let record = serde_json::to_string(&decision).unwrap();
    let bodies: Vec<(String, String, i64, String)> = events
        .iter()
        .map(|e| {
            (
                leadgate::events::event_key(e),
                e.kind.clone(),
                e.at.timestamp_millis(),
                serde_json::to_string(e).unwrap(),
            )
        })
        .collect();
    println!(
        "template: score {} ({}), record {} bytes; writing {people} people",
        decision.score,
        decision.grade,
        record.len()
    );

    let started = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut lead_row = tx
                .prepare("INSERT INTO leads (id, identity_key, email, domain, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")
                .unwrap();
            let mut decision_row = tx
                .prepare("INSERT INTO decisions (lead_id, score, grade, route_rule, record, decided_at, domain) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .unwrap();
            let mut event_row = tx
                .prepare("INSERT INTO person_events (lead_id, event_key, kind, at_ms, body, stored_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .unwrap();
            let data = serde_json::to_string(&decision.lead).unwrap();
            let at = t0.timestamp_millis();
            for i in 0..people {
                let id = format!("bench-{i:08}");
                let domain = format!("company-{}.io", i % 1000);
                let email = format!("p{i}@{domain}");
                let record = record
                    .replace(&format!("template@{TEMPLATE_DOMAIN}"), &email)
                    .replace(TEMPLATE_DOMAIN, &domain);
                lead_row
                    .execute(rusqlite::params![
                        id,
                        format!("email:{email}"),
                        email,
                        domain,
                        data,
                        at
                    ])
                    .unwrap();
                decision_row
                    .execute(rusqlite::params![
                        id,
                        decision.score,
                        decision.grade,
                        decision.route.rule,
                        record,
                        at,
                        domain
                    ])
                    .unwrap();
                for (key, kind, at_ms, body) in &bodies {
                    event_row
                        .execute(rusqlite::params![id, key, kind, at_ms, body, at])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    println!(
        "setup: {people} people written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let policy = RescorePolicy::from_settings(&settings, &pipeline.scorer).unwrap();
    let services = Arc::new(Services::new(pipeline, store));
    let at = t0 + Duration::from_std(policy.every).unwrap();
    let due = services
        .store
        .rescore_due(at.timestamp_millis())
        .await
        .unwrap();
    let started = Instant::now();
    let report = sweep_once(&services, &policy, at).await.unwrap();
    let spent = started.elapsed().as_secs_f64();
    println!(
        "rescore sweep (SQLite, batch {}, {} cores): {} of {due} due people re-scored in {spent:.1} s = {:.0} people/s; {} scores moved, {} grades moved (target: 1,000,000 in < 60 s)",
        policy.batch,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        report.scored,
        report.scored as f64 / spent,
        report.changed,
        report.grade_changes.len()
    );
    let started = Instant::now();
    let again = sweep_once(&services, &policy, at).await.unwrap();
    println!(
        "the same pass again (nobody due): {} scored in {:.3} s",
        again.scored,
        started.elapsed().as_secs_f64()
    );
}
