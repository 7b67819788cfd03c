//! Alerts (issue 25 item 4) end to end in one process: real workers on a temporary SQLite
//! file, the background dispatcher, and wiremock receivers on 127.0.0.1 answering as Slack
//! does (`200 ok`, `429` with `Retry-After`) or as a signed-webhook receiver would.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hmac::{Hmac, Mac};
use leadgate::alert::dispatcher::{self, Dispatcher, Outcome};
use leadgate::alert::{AlertSet, Alerts};
use leadgate::lead::RawLead;
use leadgate::pipeline::Pipeline;
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SCORING: &str = r#"
[grades]
hot = 80
warm = 50
cool = 20

[[rule]]
id = "chief-executive"
dimension = "demographic"
when = "has(lead.title) && lead.title == 'CEO'"
points = 60

[[rule]]
id = "target-account"
dimension = "firmographic"
when = "has(lead.company) && lead.company == 'Acme Rockets'"
points = 30
"#;

const ROUTING: &str = r#"
[[rule]]
id = "hot-ae"
when = "grade == 'hot'"
assign = { pool = "ae", sla = "4h" }

[fallback]
review = { reason = "not hot" }

[sla]
max_reassignments = 1
escalate_to = { owner = "mgr" }

[[pool]]
id = "ae"
members = [{ owner = "41629779", name = "Ada" }, { owner = "41629780", name = "Grace" }]
"#;

const PUBLIC_URL: &str = "https://leadgate.example.com";
const WEBHOOK_SECRET: &str = "whsec-0123456789abcdef";
const SLACK_PATH: &str = "/services/T000/B000/XXXXXXXX";

/// A daemon's insides: the config folder, workers and the alert dispatcher running.
struct World {
    _dir: tempfile::TempDir,
    services: Arc<Services>,
    stop: watch::Sender<bool>,
    set: Arc<AlertSet>,
}

impl World {
    async fn start(alerts_toml: &str, env: &[(&str, &str)], workers: usize) -> World {
        Self::start_with(
            alerts_toml,
            env,
            workers,
            leadgate::alert::DEFAULT_CHANNEL_CAPACITY,
        )
        .await
    }

    async fn start_with(
        alerts_toml: &str,
        env: &[(&str, &str)],
        workers: usize,
        capacity: usize,
    ) -> World {
        let (dir, cfg) = support::config_copy();
        let config = dir.path().join("config");
        std::fs::write(config.join("scoring.toml"), SCORING).unwrap();
        std::fs::write(config.join("routing.toml"), ROUTING).unwrap();
        std::fs::write(config.join("alerts.toml"), alerts_toml).unwrap();
        let db: PathBuf = dir.path().join("alerts.db");
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert(
            "LEADGATE__STORAGE__URL".into(),
            format!("sqlite://{}", db.display()),
        );
        vars.insert("LEADGATE__SERVER__PUBLIC_URL".into(), PUBLIC_URL.into());
        let settings =
            Settings::load_with_env(&cfg, vars.clone()).unwrap_or_else(|e| panic!("{e}"));
        let pipeline = Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(&settings.storage_url()).await.unwrap();
        let set =
            AlertSet::from_settings_with_env(&settings, &vars).unwrap_or_else(|e| panic!("{e}"));
        let (alerts, queue) = Alerts::new(set, capacity);
        let set = Arc::new(AlertSet::from_settings_with_env(&settings, &vars).unwrap());
        let services = Arc::new(Services {
            alerts,
            ..Services::new(pipeline, store)
        });
        let (stop, stop_rx) = watch::channel(false);
        for _ in 0..workers {
            tokio::spawn(leadgate::worker::run(
                services.clone(),
                Duration::from_secs(60),
                stop_rx.clone(),
            ));
        }
        tokio::spawn(dispatcher::run(
            services.store.clone(),
            services.provider_reports(),
            queue,
            stop_rx,
        ));
        World {
            _dir: dir,
            services,
            stop,
            set,
        }
    }

    /// Queues a lead as intake does; returns its lead id.
    async fn send(&self, lead: Value) -> String {
        let raw = RawLead(lead.as_object().unwrap().clone());
        let normalized = self.services.pipeline.normalize(&raw).unwrap();
        let accepted = self
            .services
            .store
            .accept(&normalized, &raw, None)
            .await
            .unwrap();
        self.services.queued.notify_one();
        accepted.id
    }

    /// Waits (bounded) until lead `id` has `decisions` decisions recorded and is done.
    async fn decided(&self, id: &str, decisions: usize) -> Value {
        for _ in 0..400 {
            if let Some(view) = self.services.store.lead(id).await.unwrap() {
                let decided = matches!(view.status.as_str(), "done" | "review");
                if decided && view.history.len() >= decisions {
                    return view.decision.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("lead {id} was not decided {decisions} time(s) within 20s");
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher::new(self.set.clone(), self.services.store.clone())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A Slack incoming webhook that answers `200 ok`.
async fn slack() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

/// Waits (bounded) until `server` has received `n` requests; returns them.
async fn received(server: &MockServer, n: usize) -> Vec<Request> {
    for _ in 0..400 {
        let got = server.received_requests().await.unwrap_or_default();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = server.received_requests().await.unwrap_or_default();
    panic!("expected {n} request(s) within 20s, got {}", got.len());
}

fn hot_lead(email: &str) -> Value {
    json!({"email": email, "title": "CEO", "company": "Acme Rockets"})
}

fn slack_alert(name: &str, on: &str, url: &str) -> String {
    format!("[[alert]]\nname = \"{name}\"\non = \"{on}\"\nto = \"slack\"\nurl = \"{url}{SLACK_PATH}\"\n")
}

/// Every text in a Block Kit message, joined: what a reader of the channel sees.
fn block_texts(body: &Value) -> String {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    if k == "text" || k == "url" {
                        if let Some(s) = child.as_str() {
                            out.push(s.to_string());
                        }
                    }
                    walk(child, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    walk(&body["blocks"], &mut out);
    out.join("\n")
}

#[tokio::test]
async fn a_lead_turning_hot_sends_one_slack_message_even_when_re_sent() {
    let server = slack().await;
    let world = World::start(&slack_alert("hot-leads", "lead_hot", &server.uri()), &[], 2).await;

    let id = world.send(hot_lead("ada@acme-rockets.io")).await;
    let decision = world.decided(&id, 1).await;
    assert_eq!(decision["grade"], "hot");
    let first = received(&server, 1).await;
    // The same person again: a second decision, still hot, and no second message.
    let again = world.send(hot_lead("ada@acme-rockets.io")).await;
    assert_eq!(again, id, "the same person keeps their lead id");
    world.decided(&id, 2).await;
    // A marker: another lead's alert arriving means the re-sent one had its chance.
    let other = world.send(hot_lead("grace@acme-rockets.io")).await;
    world.decided(&other, 1).await;
    let all = received(&server, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all_now = server.received_requests().await.unwrap();
    assert_eq!(all_now.len(), 2, "one message per lead: {}", all.len());

    let body: Value = serde_json::from_slice(&first[0].body).unwrap();
    assert_eq!(
        first[0].headers.get("content-type").unwrap(),
        "application/json"
    );
    let text = block_texts(&body);
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(text.contains("*Grade*\nhot"), "{text}");
    assert!(
        text.contains(&format!("*Score*\n{}", decision["score"])),
        "{text}"
    );
    assert!(text.contains("chief-executive +60"), "{text}");
    assert!(text.contains("target-account +30"), "{text}");
    assert!(text.contains("owner 41629779"), "{text}");
    assert!(
        text.contains(&format!("{PUBLIC_URL}/leads/{id}")),
        "the button links to the console's lead page: {text}"
    );
    assert!(
        !text.contains("ada@acme-rockets.io") && !body["text"].as_str().unwrap().contains("ada@"),
        "no email in Slack: {body}"
    );
    let second: Value = serde_json::from_slice(&all_now[1].body).unwrap();
    assert!(block_texts(&second).contains(&other));
}

#[tokio::test]
async fn a_lead_that_is_not_hot_or_fails_the_when_sends_nothing() {
    let server = slack().await;
    let alerts = format!(
        "{}when = \"lead.country == 'US' && route.owner != ''\"\n",
        slack_alert("hot-leads", "lead_hot", &server.uri())
    );
    let world = World::start(&alerts, &[], 1).await;
    // Warm (60 points): no alert.
    let warm = world
        .send(json!({"email": "ceo@smallco-alerts.io", "title": "CEO"}))
        .await;
    assert_eq!(world.decided(&warm, 1).await["grade"], "warm");
    // Hot, but the `when` reads a country this lead lacks.
    let elsewhere = world.send(hot_lead("cfo@acme-rockets.io")).await;
    assert_eq!(world.decided(&elsewhere, 1).await["grade"], "hot");
    // Hot, and the `when` holds.
    let mut lead = hot_lead("ceo@acme-rockets.io");
    lead["country"] = json!("US");
    let hot = world.send(lead).await;
    world.decided(&hot, 1).await;
    let got = received(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert!(block_texts(&body).contains(&hot));
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_delivered_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_string("rate_limited"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(2)
        .mount(&server)
        .await;
    let world = World::start(&slack_alert("hot-leads", "lead_hot", &server.uri()), &[], 1).await;
    let id = world.send(hot_lead("ada@acme-rockets.io")).await;
    world.decided(&id, 1).await;
    let got = received(&server, 2).await;
    let (a, b) = (&got[0], &got[1]);
    assert!(b.body == a.body, "the retry sends the same message");
    // The delivered alert holds its claim: another replica's try is deduplicated.
    let d = world.dispatcher();
    let change = leadgate::alert::GradeChange {
        lead_id: id.clone(),
        previous_grade: None,
        grade: "hot".into(),
        score: 90,
        factors: vec![],
    };
    assert_eq!(
        d.grade_changed(&change, None).await,
        vec![("hot-leads".to_string(), Outcome::Deduplicated)]
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn slack_refusing_the_message_gives_the_claim_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(ResponseTemplate::new(404).set_body_string("no_service"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SLACK_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .with_priority(2)
        .mount(&server)
        .await;
    let world = World::start(&slack_alert("hot-leads", "lead_hot", &server.uri()), &[], 0).await;
    let d = world.dispatcher();
    let change = leadgate::alert::GradeChange {
        lead_id: "lead-1".into(),
        previous_grade: Some("warm".into()),
        grade: "hot".into(),
        score: 88,
        factors: vec![],
    };
    assert_eq!(
        d.grade_changed(&change, None).await,
        vec![("hot-leads".to_string(), Outcome::Refused)],
        "a 404 no_service is not retried"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        d.grade_changed(&change, None).await,
        vec![("hot-leads".to_string(), Outcome::Sent)],
        "the refused alert held no claim"
    );
    // Already hot before: no alert at all.
    let still = leadgate::alert::GradeChange {
        previous_grade: Some("hot".into()),
        ..change
    };
    assert!(d.grade_changed(&still, None).await.is_empty());
}

/// The receiver's check, as docs/notes/alerts.md documents it (there in Python).
fn receiver_verifies(secret: &str, req: &Request, max_age_secs: i64) -> bool {
    let ts = req
        .headers
        .get("X-Leadgate-Timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let sig = req
        .headers
        .get("X-Leadgate-Signature")
        .and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (ts, sig) else {
        return false;
    };
    if (Utc::now().timestamp() - ts).abs() > max_age_secs {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&req.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    sig == format!("v1={expected}")
}

#[tokio::test]
async fn the_webhook_signature_verifies_and_a_tampered_body_does_not() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/leadgate"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let alerts = format!(
        "[[alert]]\nname = \"hot-to-crm-bot\"\non = \"lead_hot\"\nto = \"webhook\"\nurl = \"{}/hooks/leadgate\"\nsecret = \"${{ALERT_SECRET}}\"\n",
        server.uri()
    );
    let world = World::start(&alerts, &[("ALERT_SECRET", WEBHOOK_SECRET)], 1).await;
    let id = world.send(hot_lead("ada@acme-rockets.io")).await;
    world.decided(&id, 1).await;
    let got = received(&server, 1).await;
    let req = &got[0];
    assert!(receiver_verifies(WEBHOOK_SECRET, req, 300));
    assert!(!receiver_verifies("another-secret-0123456", req, 300));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["alert"], "hot-to-crm-bot");
    assert_eq!(body["on"], "lead_hot");
    assert_eq!(body["lead"]["id"], id.as_str());
    assert_eq!(body["lead"]["grade"], "hot");
    assert_eq!(body["lead"]["factors"][0]["rule"], "chief-executive");
    let mut tampered = req.clone();
    tampered.body = String::from_utf8(req.body.clone())
        .unwrap()
        .replace("\"hot\"", "\"cold\"")
        .into_bytes();
    assert_ne!(tampered.body, req.body);
    assert!(!receiver_verifies(WEBHOOK_SECRET, &tampered, 300));
    // The library's own check agrees.
    let ts: i64 = req.headers["X-Leadgate-Timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let sig = req.headers["X-Leadgate-Signature"].to_str().unwrap();
    assert!(leadgate::alert::webhook::verify(
        WEBHOOK_SECRET,
        ts,
        &req.body,
        sig
    ));
    assert!(!leadgate::alert::webhook::verify(
        WEBHOOK_SECRET,
        ts,
        &tampered.body,
        sig
    ));
}

#[tokio::test]
async fn an_sla_breach_alerts_once_with_the_owner_and_next_step() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/sla"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let alerts = format!(
        "[[alert]]\nname = \"sla\"\non = \"sla_breached\"\nto = \"webhook\"\nurl = \"{}/hooks/sla\"\nsecret = \"{WEBHOOK_SECRET}\"\n",
        server.uri()
    );
    let world = World::start(&alerts, &[], 1).await;
    let id = world.send(hot_lead("ada@acme-rockets.io")).await;
    let decision = world.decided(&id, 1).await;
    let owner = decision["route"]["owner"].as_str().unwrap().to_string();
    let s = &world.services;
    let later = Utc::now() + chrono::Duration::hours(5);
    let report = leadgate::route::sla::sweep_once_alerting(
        &s.pipeline.router,
        &s.store,
        &s.store,
        None,
        &s.alerts,
        later,
    )
    .await
    .unwrap();
    assert_eq!(report.reassigned, 1);
    let got = received(&server, 1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["on"], "sla_breached");
    assert_eq!(body["key"], id.as_str());
    assert_eq!(body["sla"]["owner"], owner.as_str());
    assert_eq!(body["sla"]["step"], "reassigned");
    assert_ne!(body["sla"]["new_owner"], owner.as_str());
    assert_eq!(
        body["lead"]["grade"], "hot",
        "the message carries the lead's grade"
    );
    // The next step (escalation) of the same lead falls in the same window: no second one.
    let report = leadgate::route::sla::sweep_once_alerting(
        &s.pipeline.router,
        &s.store,
        &s.store,
        None,
        &s.alerts,
        later + chrono::Duration::hours(5),
    )
    .await
    .unwrap();
    assert_eq!(report.escalated, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_provider_circuit_opening_alerts_once_per_window() {
    let vendor = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream down"))
        .mount(&vendor)
        .await;
    let server = slack().await;
    let alerts = slack_alert("providers", "provider_circuit_open", &server.uri());
    let base = vendor.uri();
    let world = World::start(
        &alerts,
        &[
            ("CLEARBIT_API_KEY", "sk_test_0123456789abcdef"),
            ("LEADGATE__PROVIDERS__CLEARBIT__BASE_URL", base.as_str()),
        ],
        4,
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            world
                .send(json!({"email": format!("p{i}@unknown-co-{i}.io")}))
                .await,
        );
    }
    for id in &ids {
        world.decided(id, 1).await;
    }
    let got = received(&server, 1).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    let text = block_texts(&body);
    assert!(text.contains("clearbit"), "{text}");
    assert!(text.contains("circuit"), "{text}");
    // Another replica (or this one after a restart) seeing the same open circuit: the
    // store's claim keeps it to the one message.
    let trouble = leadgate::alert::conditions::ProviderTrouble {
        kind: leadgate::alert::AlertKind::ProviderCircuitOpen,
        provider: "clearbit".into(),
        detail: "the circuit breaker of clearbit opened".into(),
    };
    assert_eq!(
        world.dispatcher().provider_trouble(&trouble).await,
        vec![("providers".to_string(), Outcome::Deduplicated)]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_never_slows_intake() {
    // A receiver that holds every request for a minute: far longer than the bounded wait
    // below, so a pipeline waiting on it could not decide these leads in time.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string("ok")
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let alerts = format!(
        "{}attempts = 1\n",
        slack_alert("hot-leads", "lead_hot", &server.uri())
    );
    let world = World::start_with(&alerts, &[], 2, 2).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            world
                .send(hot_lead(&format!("ceo{i}@acme-rockets.io")))
                .await,
        );
    }
    for id in &ids {
        assert_eq!(world.decided(id, 1).await["grade"], "hot");
    }
    assert!(
        !server.received_requests().await.unwrap().is_empty(),
        "the alerts were on their way"
    );
}

#[test]
fn a_full_alert_queue_drops_and_counts_without_waiting() {
    let set = AlertSet::from_text(
        "alerts.toml",
        &slack_alert("hot-leads", "lead_hot", "https://hooks.slack.com"),
        &HashMap::new(),
    )
    .unwrap();
    // Nobody drains this queue: the second and third alerts have no room.
    let (alerts, _queue) = Alerts::new(set, 1);
    for i in 0..3 {
        alerts.grade_changed(leadgate::alert::GradeChange {
            lead_id: format!("lead-{i}"),
            previous_grade: None,
            grade: "hot".into(),
            score: 90,
            factors: vec![],
        });
    }
    assert_eq!(alerts.dropped(), 2);
}

#[test]
fn config_errors_name_the_alert_and_the_field() {
    let text = r#"
[[alert]]
name = "hot-leads"
on = "lead_hot"
to = "webhook"
url = "http://alerts.example.com/hook"
secret = "short"
rate = 3

[[alert]]
name = "deliveries"
on = "delivery_failures"
to = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[alert]]
name = "typo"
on = "lead_warm"
to = "slack"
url = "https://hooks.slack.com/services/T/B/X"

[[alert]]
name = "cel"
on = "lead_hot"
when = "compnay.employees > 10"
to = "slack"
url = "${SLACK_URL_NOT_SET}"
"#;
    let err = AlertSet::from_text("alerts.toml", text, &HashMap::new()).unwrap_err();
    let all = err.to_string();
    for expected in [
        "alert \"hot-leads\" url",
        "alert \"hot-leads\" secret",
        "alert \"hot-leads\" rate",
        "alert \"deliveries\" rate",
        "alert \"deliveries\" window",
        "alert \"typo\" on",
        "alert \"cel\" url",
    ] {
        assert!(all.contains(expected), "`{expected}` missing from:\n{all}");
    }
    assert!(all.contains("SLACK_URL_NOT_SET"), "{all}");
    assert!(err.0.iter().all(|i| i.file == "alerts.toml"));
    // With the variable set, the CEL typo is what is left.
    let env = HashMap::from([(
        "SLACK_URL_NOT_SET".to_string(),
        "https://hooks.slack.com/services/T/B/X".to_string(),
    )]);
    let err = AlertSet::from_text("alerts.toml", text, &env).unwrap_err();
    assert!(
        err.to_string()
            .contains("alert \"cel\" when: unknown variable `compnay`"),
        "{err}"
    );
}

#[test]
fn leadgate_check_reports_alert_errors() {
    let (dir, cfg) = support::config_copy();
    std::fs::write(
        dir.path().join("config/alerts.toml"),
        "[[alert]]\nname = \"hot-leads\"\non = \"lead_hot\"\nto = \"slack\"\nurl = \"http://hooks.slack.com/x\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("alerts.toml: alert \"hot-leads\" url: must be https://"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hooks.slack.com/x"),
        "the URL is a secret: {stderr}"
    );
    std::fs::write(
        dir.path().join("config/alerts.toml"),
        "[[alert]]\nname = \"hot-leads\"\non = \"lead_hot\"\nto = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 alert(s)"), "{stdout}");
}

#[tokio::test]
async fn delivery_failures_past_the_rate_alert_once() {
    let server = slack().await;
    let alerts = format!(
        "{}rate = 3\nwindow = \"10m\"\n",
        slack_alert("crm-failing", "delivery_failures", &server.uri())
    );
    let world = World::start(&alerts, &[], 0).await;
    for _ in 0..3 {
        world.services.alerts.delivery_failed("hubspot");
    }
    // Three failures are within the rate: nothing yet. The fourth passes it; more within the
    // dedupe window add nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server.received_requests().await.unwrap().is_empty());
    for _ in 0..4 {
        world.services.alerts.delivery_failed("hubspot");
    }
    let got = received(&server, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let text = block_texts(&serde_json::from_slice(&got[0].body).unwrap());
    assert!(
        text.contains("More than 3 CRM deliveries failed within 10m"),
        "{text}"
    );
    assert!(text.contains("hubspot"), "{text}");
}

#[tokio::test]
async fn leadgate_serve_sends_alerts_from_its_background_dispatcher() {
    let server = slack().await;
    let (dir, db) = support::temp_db();
    // The shipped scoring grades a bare webmail lead cold: watch that grade.
    let file = dir.path().join("alerts.toml");
    std::fs::write(
        &file,
        format!(
            "{}grade = \"cold\"\n",
            slack_alert("cold-leads", "lead_hot", &server.uri())
        ),
    )
    .unwrap();
    let daemon = support::Daemon::start(
        &db,
        1,
        &[
            ("LEADGATE__ALERTS", file.to_str().unwrap()),
            ("LEADGATE__SERVER__PUBLIC_URL", PUBLIC_URL),
        ],
    );
    let client = reqwest::Client::new();
    let accepted: Value = client
        .post(daemon.url("/v1/leads"))
        .json(&json!({"email": "someone@gmail.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let lead = support::wait_for_status(&client, &daemon, &id, &["done", "review"]).await;
    let got = received(&server, 1).await;
    let text = block_texts(&serde_json::from_slice(&got[0].body).unwrap());
    assert!(text.contains(&format!("{PUBLIC_URL}/leads/{id}")), "{text}");
    assert!(text.contains("*Grade*\ncold"), "{lead}\n{text}");
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("leadgate_alerts_sent_total{alert=\"cold-leads\",outcome=\"sent\"} 1"),
        "{metrics}"
    );
    assert!(daemon.terminate(Duration::from_secs(20)));
}
