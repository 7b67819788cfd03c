//! `leadgate backfill` against mock CRMs (127.0.0.1 only) that answer as the vendors do
//! (reference/connector-wire-formats.md §1–3): HubSpot search with `paging.next.after` and
//! batch update answering 200 / 207 with per-record `errors`; Salesforce SOQL with
//! `nextRecordsUrl` (queryMore) and sObject collections answering `{id, success, errors}`
//! per record; Pipedrive `additional_data.next_cursor` and a 429 with its `x-ratelimit-*`
//! headers. Each mock counts writes per record id, so a duplicate write cannot hide.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leadgate::crm::backfill::{self, BackfillOptions, Report};
use leadgate::crm::Crm;
use leadgate::pipeline::Pipeline;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Map, Value};
use support::{temp_db, BIN};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const OWNER: &str = "41629779";

/// Every lead goes to OWNER.
const ROUTING: &str = r#"
[[rule]]
id = "direct"
when = "true"
assign = { owner = "41629779" }

[fallback]
review = { reason = "unrouted" }
"#;

struct World {
    _dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    file: PathBuf,
    db: PathBuf,
    pipeline: Pipeline,
    store: Store,
    crm: Arc<Crm>,
}

async fn world(extra: &str) -> World {
    let (dir, file) = support::shipped_config(ROUTING, extra);
    let (db_dir, db) = temp_db();
    let settings = Settings::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let crm = Crm::build(&settings)
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a CRM is configured");
    World {
        _dir: dir,
        _db: db_dir,
        file,
        db,
        pipeline,
        store,
        crm,
    }
}

impl World {
    async fn backfill(&self, crm: &str, dry_run: bool) -> Report {
        self.try_backfill(crm, dry_run)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn try_backfill(
        &self,
        crm: &str,
        dry_run: bool,
    ) -> Result<Report, backfill::BackfillError> {
        let opts = BackfillOptions {
            connector: crm.into(),
            since: None,
            filter: None,
            dry_run,
            limit: None,
            progress_every: Duration::from_secs(3600),
        };
        backfill::run(&self.pipeline, &self.store, &self.crm, &opts).await
    }
}

fn hubspot_config(url: &str) -> String {
    format!(
        r#"[providers.hubspot]
api_key = "pat-test-token-0001"
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
policy = "fill_empty"
"#
    )
}

// ---- a HubSpot portal -----------------------------------------------------------------------

#[derive(Default)]
struct Portal {
    /// id → properties, as HubSpot keeps them (strings).
    contacts: BTreeMap<u64, Map<String, Value>>,
    /// Contacts whose update HubSpot refuses (a property value it will not take).
    invalid: HashSet<u64>,
    writes: HashMap<u64, u32>,
    batch_calls: Vec<usize>,
    search_calls: usize,
    /// When each search arrived.
    search_at: Vec<std::time::Instant>,
}

type Shared = Arc<Mutex<Portal>>;

fn portal(n: u64) -> Shared {
    let mut p = Portal::default();
    for id in 1..=n {
        let mut props = Map::new();
        props.insert("email".into(), json!(format!("person{id}@kestrel-data.io")));
        props.insert("firstname".into(), json!(format!("Person{id}")));
        props.insert("hs_object_id".into(), json!(id.to_string()));
        props.insert("lastmodifieddate".into(), json!("2026-11-01T10:00:00.000Z"));
        p.contacts.insert(id * 10, props);
    }
    Arc::new(Mutex::new(p))
}

/// HubSpot's contacts search: AND-ed filters, sort, `limit`, `paging.next.after`.
fn search(p: &Shared, r: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let mut p = p.lock().unwrap();
    p.search_at.push(std::time::Instant::now());
    p.search_calls += 1;
    let filters = body["filterGroups"][0]["filters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut after_id = 0u64;
    for f in &filters {
        if f["propertyName"] == "hs_object_id" && f["operator"] == "GT" {
            after_id = f["value"].as_str().unwrap().parse().unwrap();
        }
    }
    assert_eq!(body["sorts"][0]["propertyName"], "hs_object_id");
    let limit = body["limit"].as_u64().unwrap() as usize;
    assert!(limit <= 200, "HubSpot search pages hold at most 200");
    let offset: usize = body["after"].as_str().map_or(0, |a| a.parse().unwrap());
    let wanted: Vec<String> = body["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let matching: Vec<(&u64, &Map<String, Value>)> = p.contacts.range(after_id + 1..).collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, props)| {
            let mut out = Map::new();
            for w in &wanted {
                out.insert(w.clone(), props.get(w).cloned().unwrap_or(Value::Null));
            }
            out.insert("hs_object_id".into(), json!(id.to_string()));
            json!({"id": id.to_string(), "properties": out, "createdAt": "2026-01-01T00:00:00Z",
                   "updatedAt": "2026-11-01T10:00:00Z", "archived": false})
        })
        .collect();
    let mut answer = json!({"total": matching.len(), "results": page});
    if offset + limit < matching.len() {
        let next = (offset + limit).to_string();
        answer["paging"] = json!({"next": {"after": next, "link": format!("?after={next}")}});
    }
    ResponseTemplate::new(200).set_body_json(answer)
}

/// HubSpot's batch update: ≤ 100 inputs; 200 when all were written, 207 with `errors`.
fn batch_update(p: &Shared, r: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let inputs = body["inputs"].as_array().unwrap();
    let mut p = p.lock().unwrap();
    p.batch_calls.push(inputs.len());
    if inputs.len() > 100 {
        return ResponseTemplate::new(400).set_body_json(json!({"status": "error",
            "message": "Batch input must contain at most 100 inputs", "category": "VALIDATION_ERROR"}));
    }
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let id: u64 = input["id"].as_str().unwrap().parse().unwrap();
        if p.invalid.contains(&id) {
            errors.push(json!({"status": "error", "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: leadgate_score", "context": {"ids": [id.to_string()]},
                "errors": [{"message": "not a number", "code": "INVALID_INTEGER"}]}));
            continue;
        }
        *p.writes.entry(id).or_default() += 1;
        let contact = p.contacts.get_mut(&id).expect("a known contact");
        for (k, v) in input["properties"].as_object().unwrap() {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            contact.insert(k.clone(), json!(text));
        }
        results
            .push(json!({"id": id.to_string(), "properties": contact.clone(), "archived": false}));
    }
    let status = if errors.is_empty() { 200 } else { 207 };
    let mut answer = json!({"status": "COMPLETE", "results": results, "startedAt": "2026-12-07T10:00:00Z",
        "completedAt": "2026-12-07T10:00:01Z"});
    if !errors.is_empty() {
        answer["numErrors"] = json!(errors.len());
        answer["errors"] = json!(errors);
    }
    ResponseTemplate::new(status).set_body_json(answer)
}

async fn mount_hubspot(server: &MockServer, p: &Shared, write_delay: Duration) {
    let s = p.clone();
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(move |r: &Request| search(&s, r))
        .mount(server)
        .await;
    let s = p.clone();
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .respond_with(move |r: &Request| batch_update(&s, r).set_delay(write_delay))
        .mount(server)
        .await;
    let s = p.clone();
    Mock::given(method("GET"))
        .and(path_regex(r"^/crm/v3/objects/contacts/\d+$"))
        .respond_with(move |r: &Request| {
            let id: u64 = r.url.path().rsplit('/').next().unwrap().parse().unwrap();
            match s.lock().unwrap().contacts.get(&id) {
                Some(props) => ResponseTemplate::new(200)
                    .set_body_json(json!({"id": id.to_string(), "properties": props})),
                None => ResponseTemplate::new(404).set_body_json(json!({"status": "error",
                    "message": "resource not found", "category": "OBJECT_NOT_FOUND"})),
            }
        })
        .mount(server)
        .await;
}

// ---- HubSpot ----------------------------------------------------------------------------------

#[tokio::test]
async fn hubspot_backfill_pages_hundreds_of_contacts_and_writes_them_in_batches_of_100() {
    let server = MockServer::start().await;
    let p = portal(350);
    mount_hubspot(&server, &p, Duration::ZERO).await;
    let w = world(&hubspot_config(&server.uri())).await;
    // One person asked to be erased: never decided, never written.
    w.store
        .erase_person("person7@kestrel-data.io")
        .await
        .unwrap();

    let r = w.backfill("hubspot", false).await;
    assert!(r.finished);
    assert_eq!(r.counts.read, 350);
    assert_eq!(r.counts.skipped.get("suppressed"), Some(&1));
    assert_eq!(r.counts.written, 349, "{}", backfill::render(&r));
    assert_eq!(r.counts.changed, 349);
    assert_eq!(r.counts.failed_total(), 0);
    assert_eq!(r.pages, 2, "200 + 150 contacts");
    {
        let p = p.lock().unwrap();
        // Page 1: 199 changes (one erased) → 100 + 99; page 2: 150 → 100 + 50.
        assert_eq!(p.batch_calls, vec![100, 99, 100, 50]);
        assert_eq!(p.writes.len(), 349);
        assert!(
            p.writes.values().all(|n| *n == 1),
            "a contact written twice"
        );
        assert!(!p.writes.contains_key(&70), "the erased person was written");
        let c = &p.contacts[&10];
        assert_eq!(c["hubspot_owner_id"], OWNER);
        assert!(c["leadgate_score"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(p.search_calls, 2);
    }
    assert_eq!(w.store.decision_count().await.unwrap(), 349);

    // A second pass finds every contact holding its values: nothing is written again.
    let again = w.backfill("hubspot", false).await;
    assert_eq!(again.counts.unchanged, 349, "{}", backfill::render(&again));
    assert_eq!(again.counts.written, 0);
    let p = p.lock().unwrap();
    assert_eq!(p.batch_calls.len(), 4);
    assert!(p.writes.values().all(|n| *n == 1));
}

#[tokio::test]
async fn a_207_with_one_invalid_contact_fails_only_that_contact_and_counts_it_by_reason() {
    let server = MockServer::start().await;
    let p = portal(120);
    p.lock().unwrap().invalid.insert(430);
    mount_hubspot(&server, &p, Duration::ZERO).await;
    let w = world(&hubspot_config(&server.uri())).await;

    let r = w.backfill("hubspot", false).await;
    assert_eq!(r.counts.read, 120);
    assert_eq!(r.counts.written, 119);
    assert_eq!(
        r.counts.failed,
        BTreeMap::from([("VALIDATION_ERROR".to_string(), 1)])
    );
    assert_eq!(r.failures.len(), 1);
    assert_eq!(r.failures[0].record, "430");
    assert!(
        r.failures[0].message.contains("leadgate_score"),
        "{:?}",
        r.failures
    );
    let text = backfill::render(&r);
    assert!(text.contains("VALIDATION_ERROR 1"), "{text}");
    assert!(text.contains("record 430"), "{text}");
    let p = p.lock().unwrap();
    assert_eq!(p.batch_calls, vec![100, 20]);
    assert_eq!(p.writes.len(), 119);
    assert!(!p.writes.contains_key(&430));
}

#[tokio::test]
async fn dry_run_writes_nothing_and_prints_what_would_change() {
    let server = MockServer::start().await;
    let p = portal(30);
    p.lock()
        .unwrap()
        .contacts
        .get_mut(&10)
        .unwrap()
        .insert("hubspot_owner_id".into(), json!("555"));
    mount_hubspot(&server, &p, Duration::ZERO).await;
    let w = world(&hubspot_config(&server.uri())).await;

    let r = w.backfill("hubspot", true).await;
    assert_eq!(r.counts.read, 30);
    assert_eq!(r.counts.changed, 30);
    assert_eq!(r.counts.written, 0);
    assert!(
        p.lock().unwrap().batch_calls.is_empty(),
        "a dry run wrote to the CRM"
    );
    assert_eq!(
        w.store.decision_count().await.unwrap(),
        0,
        "a dry run recorded decisions"
    );
    let text = backfill::render(&r);
    assert!(text.contains("30 of 30 records would change"), "{text}");
    assert!(text.contains("hubspot_owner_id"), "{text}");
    assert!(text.contains("owner 555"), "{text}");
    assert!(text.contains("no owner"), "{text}");
    assert_eq!(r.diff.moves.values().sum::<u64>(), 30);

    // Nothing was kept: a real run afterwards starts at the first page.
    let real = w.backfill("hubspot", false).await;
    assert_eq!(real.resumed_at, None);
    assert_eq!(real.counts.written, 30);
}

#[tokio::test]
async fn a_bad_filter_is_refused_before_anything_is_read() {
    let server = MockServer::start().await;
    let p = portal(3);
    mount_hubspot(&server, &p, Duration::ZERO).await;
    let w = world(&hubspot_config(&server.uri())).await;
    let opts = BackfillOptions {
        connector: "hubspot".into(),
        since: None,
        filter: Some("lead.nonexistent_field == 1".into()),
        dry_run: false,
        limit: None,
        progress_every: Duration::from_secs(60),
    };
    let e = backfill::run(&w.pipeline, &w.store, &w.crm, &opts)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--filter"), "{e}");
    assert_eq!(p.lock().unwrap().search_calls, 0);

    // A good one skips what it does not match, and counts it.
    let opts = BackfillOptions {
        filter: Some("lead.first_name == 'Person2'".into()),
        ..opts
    };
    let r = backfill::run(&w.pipeline, &w.store, &w.crm, &opts)
        .await
        .unwrap();
    assert_eq!(r.counts.skipped.get("filtered"), Some(&2));
    assert_eq!(r.counts.written, 1);
    assert_eq!(
        p.lock().unwrap().writes.keys().collect::<Vec<_>>(),
        vec![&20]
    );
}

/// The real binary, killed with SIGKILL while it writes, then run again: every contact is
/// processed and written exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_killed_halfway_and_restarted_writes_every_contact_exactly_once() {
    let server = MockServer::start().await;
    let p = portal(1000);
    // Slow writes, so the kill lands mid-run (often between a write and its outbox close).
    mount_hubspot(&server, &p, Duration::from_millis(150)).await;
    let w = world(&hubspot_config(&server.uri())).await;
    let (file, db) = (w.file.clone(), w.db.clone());
    let run = move || {
        Command::new(BIN)
            .args(["--config"])
            .arg(&file)
            .args(["backfill", "--crm", "hubspot", "--progress-every", "1s"])
            .env(
                "LEADGATE__STORAGE__URL",
                format!("sqlite://{}", db.display()),
            )
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start leadgate backfill")
    };
    let mut child = run();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let written = p.lock().unwrap().writes.len();
        if written >= 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backfill wrote {written} contacts in 60 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backfill ended before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = p.lock().unwrap().writes.len();
    assert!(before < 1000, "killed too late to test anything");

    let out = tokio::task::spawn_blocking(move || run().wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("continued at page"), "{stdout}");
    let written_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("written"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        written_line.split_whitespace().nth(1),
        Some("1000"),
        "{stdout}"
    );
    let p = p.lock().unwrap();
    assert_eq!(p.writes.len(), 1000, "not every contact was written");
    let twice: Vec<_> = p.writes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "written more than once: {twice:?}");
    assert!(p.batch_calls.iter().all(|n| *n <= 100));
}

// ---- Salesforce ---------------------------------------------------------------------------

fn salesforce_config(url: &str) -> String {
    format!(
        r#"[providers.salesforce]
api_key = "3MVG9-client-id"
api_secret = "client-secret-0001"
refresh_token = "5Aep-refresh-0001"
token_url = "{url}/services/oauth2/token"
base_url = "{url}"
rate_limit_per_second = 500
burst = 100
[delivery]
target = "salesforce"
[[delivery.field]]
canonical = "score"
property = "Lead_Score__c"
policy = "overwrite"
"#
    )
}

#[tokio::test]
async fn salesforce_pages_with_query_more_and_writes_through_sobject_collections() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        // The instance is the mock too: nothing here may leave loopback.
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "00D!token",
            "instance_url": server.uri(), "token_type": "Bearer", "issued_at": "1700000000000"})),
        )
        .mount(&server)
        .await;
    let lead = |i: usize| {
        json!({"attributes": {"type": "Lead", "url": format!("/services/data/v62.0/sobjects/Lead/00Q{i:012}")},
            "Id": format!("00Q{i:012}"), "Email": format!("lead{i}@kestrel-data.io"), "FirstName": "Lead",
            "LastName": format!("N{i}"), "Company": "Kestrel", "OwnerId": "005000000000OLD",
            "Lead_Score__c": null, "LastModifiedDate": "2026-11-01T10:00:00.000+0000"})
    };
    let queries = Arc::new(Mutex::new(Vec::<String>::new()));
    let q = queries.clone();
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/query"))
        .respond_with(move |r: &Request| {
            let soql = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            q.lock().unwrap().push(soql);
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=120/100000")
                .set_body_json(json!({"totalSize": 250, "done": false,
                    "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-200",
                    "records": (1..=200).map(lead).collect::<Vec<_>>()}))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/query/01gD0000002HU6KIAW-200"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"totalSize": 250, "done": true,
            "records": (201..=250).map(lead).collect::<Vec<_>>()})),
        )
        .mount(&server)
        .await;
    let writes: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let calls: Arc<Mutex<Vec<usize>>> = Arc::default();
    let (ws, cs) = (writes.clone(), calls.clone());
    Mock::given(method("PATCH"))
        .and(path("/services/data/v62.0/composite/sobjects"))
        .respond_with(move |r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["allOrNone"], false);
            let records = body["records"].as_array().unwrap();
            cs.lock().unwrap().push(records.len());
            if records.len() > 200 {
                return ResponseTemplate::new(400).set_body_json(json!([{"message": "Maximum of 200 records", "errorCode": "EXCEEDED_ID_LIMIT"}]));
            }
            let answers: Vec<Value> = records
                .iter()
                .map(|rec| {
                    assert_eq!(rec["attributes"]["type"], "Lead");
                    let id = rec["id"].as_str().unwrap().to_string();
                    if id == format!("00Q{:012}", 42) {
                        return json!({"success": false, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                            "message": "Score must be below 100 for lead42@kestrel-data.io", "fields": ["Lead_Score__c"]}]});
                    }
                    assert_eq!(rec["OwnerId"], OWNER);
                    *ws.lock().unwrap().entry(id.clone()).or_default() += 1;
                    json!({"id": id, "success": true, "errors": []})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(json!(answers))
        })
        .mount(&server)
        .await;
    let w = world(&salesforce_config(&server.uri())).await;

    let r = w.backfill("salesforce", false).await;
    assert_eq!(r.counts.read, 250);
    assert_eq!(r.pages, 2);
    assert_eq!(r.counts.written, 249, "{}", backfill::render(&r));
    assert_eq!(
        r.counts.failed,
        BTreeMap::from([("FIELD_CUSTOM_VALIDATION_EXCEPTION".to_string(), 1)])
    );
    assert!(
        !r.failures[0].message.contains("lead42@kestrel-data.io"),
        "an email reached the summary: {}",
        r.failures[0].message
    );
    assert_eq!(*calls.lock().unwrap(), vec![200, 50]);
    let writes = writes.lock().unwrap();
    assert_eq!(writes.len(), 249);
    assert!(writes.values().all(|n| *n == 1));
    let soql = &queries.lock().unwrap()[0];
    assert!(
        soql.contains("Lead_Score__c") && soql.contains("OwnerId"),
        "{soql}"
    );
    assert!(
        soql.contains("FROM Lead WHERE LastModifiedDate >= "),
        "{soql}"
    );
}

// ---- Pipedrive ----------------------------------------------------------------------------

#[tokio::test]
async fn pipedrive_pages_with_next_cursor_and_waits_out_a_429() {
    let server = MockServer::start().await;
    let person = |i: u64| {
        json!({"id": i, "name": format!("Person {i}"), "owner_id": 5, "org_id": null,
            "emails": [{"value": format!("p{i}@kestrel-data.io"), "primary": true, "label": "work"}],
            "update_time": "2026-11-01T10:00:00Z", "custom_fields": {"a1b2c3": null}})
    };
    Mock::given(method("GET"))
        .and(path("/api/v2/persons"))
        .respond_with(move |r: &Request| {
            let q: HashMap<String, String> = r.url.query_pairs().into_owned().collect();
            let (from, next) = match q.get("cursor").map(String::as_str) {
                None => (1, json!("eyJpZCI6MTAwfQ")),
                Some("eyJpZCI6MTAwfQ") => (101, Value::Null),
                Some(other) => panic!("unknown cursor {other}"),
            };
            assert_eq!(q.get("sort_by").map(String::as_str), Some("id"));
            let to = if from == 1 { 100 } else { 150 };
            ResponseTemplate::new(200).set_body_json(json!({"success": true,
                "data": (from..=to).map(person).collect::<Vec<_>>(),
                "additional_data": {"next_cursor": next}}))
        })
        .mount(&server)
        .await;
    let writes: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let throttled = Arc::new(Mutex::new(0u32));
    let (ws, th) = (writes.clone(), throttled.clone());
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/api/v2/persons/\d+$"))
        .respond_with(move |r: &Request| {
            let id: u64 = r.url.path().rsplit('/').next().unwrap().parse().unwrap();
            let mut t = th.lock().unwrap();
            // The 50th write finds the 2-second window used up.
            if id == 50 && *t == 0 {
                *t += 1;
                return ResponseTemplate::new(429)
                    .insert_header("x-ratelimit-limit", "80")
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-reset", "1")
                    .set_body_json(
                        json!({"success": false, "error": "Request over limit", "errorCode": 429}),
                    );
            }
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(
                body["owner_id"],
                json!(41629779),
                "Pipedrive owner ids are numbers"
            );
            assert!(
                body["custom_fields"]["a1b2c3"].is_number()
                    || body["custom_fields"]["a1b2c3"].is_string()
            );
            *ws.lock().unwrap().entry(id).or_default() += 1;
            ResponseTemplate::new(200)
                .insert_header("x-ratelimit-remaining", "70")
                .set_body_json(json!({"success": true, "data": {"id": id}}))
        })
        .mount(&server)
        .await;
    let w = world(&format!(
        r#"[providers.pipedrive]
api_key = "pd-token-0000000001"
base_url = "{}"
rate_limit_per_second = 500
burst = 100
[delivery]
target = "pipedrive"
[[delivery.field]]
canonical = "score"
property = "custom_fields.a1b2c3"
policy = "overwrite"
"#,
        server.uri()
    ))
    .await;

    let started = Instant::now();
    let r = w.backfill("pipedrive", false).await;
    assert_eq!(r.counts.read, 150);
    assert_eq!(r.pages, 2);
    assert_eq!(r.counts.written, 150, "{}", backfill::render(&r));
    assert_eq!(*throttled.lock().unwrap(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the 429's reset was not waited out"
    );
    let writes = writes.lock().unwrap();
    assert_eq!(writes.len(), 150);
    assert!(writes.values().all(|n| *n == 1));
}

/// The same progress rules on SQLite (tests/store_postgres.rs has the PostgreSQL twin).
#[tokio::test]
async fn backfill_progress_resumes_an_unfinished_pass_and_renews_a_finished_one() {
    let (_dir, db) = temp_db();
    let store = support::open_store(&db).await;
    support::assert_backfill_progress_rules(&store).await;
}

// ---- the daemon's batched delivery ([crm] batch_wait) ---------------------------------------

/// N leads decided together reach HubSpot in ⌈N/100⌉ batch upserts; the one HubSpot refuses
/// fails alone, every other lead is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leads_decided_together_are_written_in_batches_and_one_invalid_fails_alone() {
    use leadgate::lead::{DeliveryStatus, LeadStatus, RawLead};
    const N: usize = 250;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
        .mount(&server)
        .await;
    let calls: Arc<Mutex<Vec<usize>>> = Arc::default();
    let writes: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (cs, ws) = (calls.clone(), writes.clone());
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(move |r: &Request| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let inputs = body["inputs"].as_array().unwrap();
            cs.lock().unwrap().push(inputs.len());
            let (mut results, mut errors) = (Vec::new(), Vec::new());
            for input in inputs {
                assert_eq!(input["idProperty"], "email");
                let email = input["id"].as_str().unwrap().to_string();
                let trace = input["objectWriteTraceId"].clone();
                if email.starts_with("bad") {
                    errors.push(json!({"status": "error", "category": "VALIDATION_ERROR",
                        "message": "Email address bad-7@kestrel-data.io is invalid", "objectWriteTraceId": trace,
                        "context": {}, "errors": []}));
                    continue;
                }
                assert_eq!(input["properties"]["hubspot_owner_id"], OWNER);
                let mut w = ws.lock().unwrap();
                let n = w.len() + 1;
                *w.entry(email).or_default() += 1;
                results.push(json!({"id": (1000 + n).to_string(), "new": true, "properties": input["properties"],
                    "objectWriteTraceId": trace, "archived": false}));
            }
            let status = if errors.is_empty() { 200 } else { 207 };
            let mut answer = json!({"status": "COMPLETE", "results": results});
            if !errors.is_empty() {
                answer["numErrors"] = json!(errors.len());
                answer["errors"] = json!(errors);
            }
            ResponseTemplate::new(status).set_body_json(answer)
        })
        .mount(&server)
        .await;
    let config = hubspot_config(&server.uri()).replace(
        "[delivery]",
        "rate_limit_per_second = 2000\nburst = 1000\n[crm]\nbatch_wait = \"3s\"\nbatch_size = 100\n[delivery]",
    );
    let w = Arc::new(world(&config).await);

    let mut decided = Vec::new();
    for i in 0..N {
        let email = if i == 7 {
            "bad-7@kestrel-data.io".to_string()
        } else {
            format!("p{i}@kestrel-data.io")
        };
        let raw = RawLead(
            json!({"email": email, "first_name": "Ada"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let lead = w.pipeline.normalize(&raw).unwrap();
        w.store.accept(&lead, &raw, None).await.unwrap();
        let job = w
            .store
            .claim(Duration::from_secs(120))
            .await
            .unwrap()
            .unwrap();
        // The job claimed is the lead its payload holds (claims go oldest first).
        let raw: RawLead = serde_json::from_str(&job.payload).unwrap();
        let lead = w.pipeline.normalize(&raw).unwrap();
        let decision = w
            .pipeline
            .decide(lead, &w.store, chrono::Utc::now())
            .await
            .unwrap();
        decided.push((job, decision));
    }
    let tasks: Vec<_> = decided
        .into_iter()
        .map(|(job, decision)| {
            let w = w.clone();
            tokio::spawn(async move {
                w.crm
                    .deliver(&w.store, &job, decision, &leadgate::crm::fence::Unfenced)
                    .await
            })
        })
        .collect();
    let mut done = 0;
    let mut failed = Vec::new();
    for t in tasks {
        let d = t.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
        match d.status {
            LeadStatus::Failed => failed.push(d),
            _ => {
                assert_eq!(d.delivery[0].status, DeliveryStatus::Ok, "{:?}", d.delivery);
                assert!(d.delivery[0].record_id.is_some());
                done += 1;
            }
        }
    }
    assert_eq!(done, N - 1);
    assert_eq!(failed.len(), 1);
    let detail = failed[0].delivery[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("VALIDATION_ERROR"), "{detail}");
    assert!(
        !detail.contains("bad-7@kestrel-data.io"),
        "an email reached the record: {detail}"
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), N.div_ceil(100), "batch calls: {calls:?}");
    assert!(calls.iter().all(|n| *n <= 100), "{calls:?}");
    assert_eq!(calls.iter().sum::<usize>(), N);
    let writes = writes.lock().unwrap();
    assert_eq!(writes.len(), N - 1);
    assert!(writes.values().all(|n| *n == 1));
}

/// HubSpot's search endpoints allow five requests a second per token, counted apart from the
/// 100 / 10 s (manifest `own_rate_limit`): pages are read evenly spaced, never two in a
/// fifth of a second, while the writes keep the connector's own permits.
#[tokio::test]
async fn hubspot_search_pages_are_spaced_by_the_search_limit() {
    let server = MockServer::start().await;
    let p = portal(601);
    mount_hubspot(&server, &p, Duration::ZERO).await;
    let w = world(&hubspot_config(&server.uri())).await;
    let r = w.backfill("hubspot", false).await;
    assert!(r.finished);
    assert_eq!(r.counts.written, 601, "{}", backfill::render(&r));
    let p = p.lock().unwrap();
    assert_eq!(p.search_at.len(), 4, "200 + 200 + 200 + 1");
    for pair in p.search_at.windows(2) {
        let gap = pair[1].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(190),
            "two searches {gap:?} apart: more than 5 a second"
        );
    }
}
