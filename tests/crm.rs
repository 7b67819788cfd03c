//! CRM connectors against wiremock servers (127.0.0.1 only) that speak each vendor's wire
//! format (reference/connector-wire-formats.md §1–3, §5): write-back policies, owner ids,
//! natural-key idempotency, enrollment ids, OAuth refresh under concurrency, the outbox
//! across a simulated crash, unhealing 4xx, polling cursors, record fetches.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use leadgate::crm::poll::poll_once;
use leadgate::crm::{Crm, DeliveryError};
use leadgate::lead::{Decision, DeliveryStatus, LeadStatus, RawLead};
use leadgate::pipeline::Pipeline;
use leadgate::services::Services;
use leadgate::settings::Settings;
use leadgate::store::{Job, Store};
use leadgate::webhook::RecordSource;
use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};
use wiremock::matchers::{body_partial_json, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const OWNER: &str = "41629779";

/// Routing for these tests: `nurture.io` leads are enrolled, everyone else goes to OWNER.
const ROUTING: &str = r#"
[[rule]]
id = "nurture"
when = "email.domain == 'nurture.io'"
enroll = { sequence = "mid-funnel" }

[[rule]]
id = "direct"
when = "true"
assign = { owner = "41629779" }

[fallback]
review = { reason = "unrouted" }
"#;

/// A config folder whose leadgate.toml holds the shipped stages plus `extra`.
fn config_dir(extra: &str) -> (tempfile::TempDir, PathBuf) {
    support::shipped_config(ROUTING, extra)
}

struct World {
    _dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    db: PathBuf,
    settings: Settings,
    pipeline: Pipeline,
    store: Store,
    crm: Arc<Crm>,
}

async fn world(extra: &str) -> World {
    let (dir, file) = config_dir(extra);
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
        db,
        settings,
        pipeline,
        store,
        crm,
    }
}

impl World {
    /// Queues a lead, claims it and decides it, as a worker would.
    async fn decide(&self, lead: Value) -> (Job, Decision) {
        let raw = RawLead(lead.as_object().unwrap().clone());
        let normalized = self.pipeline.normalize(&raw).unwrap();
        self.store.accept(&normalized, &raw, None).await.unwrap();
        let job = self
            .store
            .claim(Duration::from_secs(60))
            .await
            .unwrap()
            .expect("a job");
        let decision = self
            .pipeline
            .decide(normalized, &self.store, chrono::Utc::now())
            .await
            .unwrap();
        (job, decision)
    }

    async fn deliver(&self, lead: Value) -> (Job, Result<Decision, DeliveryError>) {
        let (job, decision) = self.decide(lead).await;
        let delivered = self
            .crm
            .deliver(&self.store, &job, decision, &leadgate::crm::fence::Unfenced)
            .await;
        (job, delivered)
    }

    fn state(&self) -> Services {
        Services {
            delivery: Some(self.crm.clone()),
            ..Services::new(Pipeline::build(&self.settings).unwrap(), self.store.clone())
        }
    }
}

fn hubspot(url: &str, extra: &str) -> String {
    format!(
        r#"[providers.hubspot]
api_key = "pat-test-token"
base_url = "{url}"
[delivery]
target = "hubspot"
{extra}
[[delivery.field]]
canonical = "company.industry"
property = "industry"
[[delivery.field]]
canonical = "score"
property = "leadgate_score"
policy = "overwrite"
[[delivery.field]]
canonical = "grade"
property = "leadgate_grade"
policy = "fill_empty"
[[delivery.field]]
canonical = "route.reason"
property = "leadgate_reason"
policy = "never"
"#
    )
}

async fn requests(server: &MockServer, m: &str, p: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .collect()
}

fn json_body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn search_hit(id: &str, properties: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"total": 1, "results": [{"id": id, "properties": properties,
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "archived": false}]}))
}

fn search_empty() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []}))
}

// ---- HubSpot ------------------------------------------------------------------------------

#[tokio::test]
async fn hubspot_fill_empty_keeps_what_a_person_typed_and_sets_the_owner() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(header("authorization", "Bearer pat-test-token"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "ada@kestrel-data.io"}]}]})))
        .respond_with(search_hit("512", json!({"email": "ada@kestrel-data.io", "industry": "Typed By A Rep", "leadgate_grade": "", "hs_object_id": "512"})))
        .mount(&crm)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/512"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "512", "properties": {}})),
        )
        .mount(&crm)
        .await;
    let w = world(&hubspot(&crm.uri(), "")).await;
    let (_, delivered) = w
        .deliver(json!({"email": "ada@kestrel-data.io", "first_name": "Ada"}))
        .await;
    let d = delivered.unwrap();
    assert_eq!(d.status, LeadStatus::Done);
    assert_eq!(d.delivery.len(), 1, "{:?}", d.delivery);
    assert_eq!(d.delivery[0].status, DeliveryStatus::Ok);
    assert_eq!(d.delivery[0].record_id.as_deref(), Some("512"));

    let patches = requests(&crm, "PATCH", "/crm/v3/objects/contacts/512").await;
    assert_eq!(patches.len(), 1);
    let props = &json_body(&patches[0])["properties"];
    assert!(
        props.get("industry").is_none(),
        "fill_empty overwrote a typed value: {props}"
    );
    assert!(
        props.get("leadgate_reason").is_none(),
        "policy never was written: {props}"
    );
    assert_eq!(props["leadgate_score"], json!(d.score));
    assert_eq!(
        props["leadgate_grade"],
        json!(d.grade),
        "an empty value is filled"
    );
    assert_eq!(props["hubspot_owner_id"], json!(OWNER));
}

#[tokio::test]
async fn hubspot_new_contact_is_upserted_by_email() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_empty())
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
    let w = world(&hubspot(&crm.uri(), "")).await;
    let (job, delivered) = w.deliver(json!({"email": "grace@kestrel-data.io"})).await;
    let d = delivered.unwrap();
    assert_eq!(d.delivery[0].record_id.as_deref(), Some("901"));
    let upserts = requests(&crm, "POST", "/crm/v3/objects/contacts/batch/upsert").await;
    let input = &json_body(&upserts[0])["inputs"][0];
    assert_eq!(input["idProperty"], "email");
    assert_eq!(input["id"], "grace@kestrel-data.io");
    assert_eq!(input["objectWriteTraceId"], json!(job.lead_id));
    assert_eq!(input["properties"]["hubspot_owner_id"], OWNER);
    assert!(
        input["properties"].get("industry").is_some(),
        "a new record gets every mapped field: {input}"
    );
}

#[tokio::test]
async fn hubspot_409_existing_id_updates_the_existing_contact() {
    let crm = MockServer::start().await;
    // Search has not indexed the contact yet; create says it exists.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_empty())
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"status": "error",
            "message": "Contact already exists. Existing ID: 37765128953", "correlationId": "2dea5219", "category": "CONFLICT"})))
        .mount(&crm)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/37765128953"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "37765128953", "properties": {}})),
        )
        .expect(1)
        .mount(&crm)
        .await;
    let w = world(&hubspot(&crm.uri(), "write = \"create\"")).await;
    let (_, delivered) = w
        .deliver(
            json!({"email": "ada@kestrel-data.io", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    let d = delivered.unwrap();
    assert_eq!(d.delivery[0].status, DeliveryStatus::Ok);
    assert_eq!(d.delivery[0].record_id.as_deref(), Some("37765128953"));
    assert!(
        d.delivery[0].op.contains("after 409"),
        "{:?}",
        d.delivery[0]
    );
    let created = requests(&crm, "POST", "/crm/v3/objects/contacts").await;
    assert_eq!(json_body(&created[0])["properties"]["firstname"], "Ada");
}

#[tokio::test]
async fn hubspot_sequence_enrollment_records_the_enrollment_id() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_hit("512", json!({})))
        .mount(&crm)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/512"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "512"})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/automation/v4/sequences/enrollments/contact/512"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!({"status": "error", "message": "not enrolled", "category": "OBJECT_NOT_FOUND"}),
        ))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/automation/v4/sequences/enrollments"))
        .and(query_param("userId", "9586504"))
        .and(body_partial_json(
            json!({"contactId": "512", "sequenceId": "987654", "senderEmail": "rep@yourco.com"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "4101", "toEmail": "x@nurture.io", "enrolledAt": "2026-11-07T05:31:56Z"}),
        ))
        .expect(1)
        .mount(&crm)
        .await;
    let seq = "[[delivery.sequence]]\nname = \"mid-funnel\"\nid = \"987654\"\nuser_id = \"9586504\"\nsender_email = \"rep@yourco.com\"\n";
    let w = world(&format!("{}{seq}", hubspot(&crm.uri(), ""))).await;
    let (job, delivered) = w.deliver(json!({"email": "lin@nurture.io"})).await;
    let d = delivered.unwrap();
    // The lead page's "CRM writes" read the outbox: the write and the enrollment, both ok.
    let writes = w.store.crm_writes(&job.lead_id).await.unwrap();
    let ops: Vec<(&str, &str)> = writes
        .iter()
        .map(|x| (x.op.as_str(), x.status.as_str()))
        .collect();
    assert!(ops.contains(&("write", "ok")), "{writes:?}");
    assert!(ops.contains(&("enroll", "ok")), "{writes:?}");
    assert!(
        writes.iter().all(|x| x.op != "decide"),
        "the decide row carries the decision, not a write: {writes:?}"
    );
    assert!(writes
        .iter()
        .any(|x| x.result_id.as_deref() == Some("4101") || x.record_id.as_deref() == Some("512")));
    let enroll = d
        .delivery
        .iter()
        .find(|x| x.op == "enroll")
        .expect("an enrollment");
    assert_eq!(enroll.status, DeliveryStatus::Ok);
    assert_eq!(enroll.enrollment_id.as_deref(), Some("4101"));
    // An enrolled lead keeps its owner: none was set.
    let patch = &requests(&crm, "PATCH", "/crm/v3/objects/contacts/512").await[0];
    assert!(json_body(patch)["properties"]
        .get("hubspot_owner_id")
        .is_none());
}

#[tokio::test]
async fn outreach_enrollment_creates_the_prospect_and_a_sequence_state_once() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "or-access",
            "token_type": "bearer", "expires_in": 7200, "refresh_token": "or-refresh", "scope": "prospects.all sequenceStates.all"})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/prospects"))
        .and(query_param("filter[emails]", "lin@nurture.io"))
        .and(header("authorization", "Bearer or-access"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "meta": {"count": 0}})),
        )
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/prospects"))
        .and(body_partial_json(
            json!({"data": {"type": "prospect", "attributes": {"emails": ["lin@nurture.io"]}}}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"type": "prospect", "id": 123,
            "attributes": {"emails": ["lin@nurture.io"]}}})),
        )
        .expect(1)
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/sequenceStates"))
        .and(query_param("filter[prospect][id]", "123"))
        .and(query_param("filter[sequence][id]", "456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/sequenceStates"))
        .and(header("content-type", "application/vnd.api+json"))
        .and(body_partial_json(
            json!({"data": {"type": "sequenceState", "relationships": {
            "prospect": {"data": {"type": "prospect", "id": 123}},
            "sequence": {"data": {"type": "sequence", "id": 456}},
            "mailbox": {"data": {"type": "mailbox", "id": 7}}}}}),
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"data": {"type": "sequenceState", "id": 9001,
            "attributes": {"state": "active"}}})),
        )
        .expect(1)
        .mount(&crm)
        .await;
    let cfg = format!(
        "[providers.outreach]\napi_key = \"or-client\"\napi_secret = \"or-secret\"\nrefresh_token = \"or-refresh-0\"\ntoken_url = \"{url}/oauth/token\"\nbase_url = \"{url}\"\n[[delivery.sequence]]\nname = \"mid-funnel\"\nconnector = \"outreach\"\nid = \"456\"\nmailbox_id = \"7\"\n",
        url = crm.uri()
    );
    let w = world(&cfg).await;
    let (job, delivered) = w
        .deliver(json!({"email": "lin@nurture.io", "first_name": "Lin"}))
        .await;
    let d = delivered.unwrap();
    let enroll = d
        .delivery
        .iter()
        .find(|x| x.op == "enroll")
        .expect("an enrollment");
    assert_eq!(enroll.status, DeliveryStatus::Ok, "{enroll:?}");
    assert_eq!(enroll.connector, "outreach");
    assert_eq!(enroll.enrollment_id.as_deref(), Some("9001"));
    // Delivered again (a retried job): the outbox answers, Outreach is not asked to enroll twice.
    let again = w
        .crm
        .deliver(&w.store, &job, d.clone(), &leadgate::crm::fence::Unfenced)
        .await
        .unwrap();
    let second = again.delivery.iter().find(|x| x.op == "enroll").unwrap();
    assert_eq!(second.enrollment_id.as_deref(), Some("9001"));
}

// ---- the outbox -----------------------------------------------------------------------------

#[tokio::test]
async fn redelivery_after_a_crash_between_the_crm_call_and_the_outbox_write_creates_nothing_twice()
{
    let crm = MockServer::start().await;
    // Before the crash the CRM has no contact; the upsert creates 901 and the enrollment 4101.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_empty())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_hit("901", json!({"industry": "Software"})))
        .with_priority(2)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"status": "COMPLETE", "results": [{"id": "901", "new": true}]}),
            ),
        )
        .mount(&crm)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/901"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "901"})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/automation/v4/sequences/enrollments/contact/901"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"status": "error", "category": "OBJECT_NOT_FOUND"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/automation/v4/sequences/enrollments/contact/901"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "4101", "sequenceId": "987654"})),
        )
        .with_priority(2)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/automation/v4/sequences/enrollments"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "4101"})))
        .mount(&crm)
        .await;
    let seq = "[[delivery.sequence]]\nname = \"mid-funnel\"\nid = \"987654\"\nuser_id = \"1\"\nsender_email = \"rep@yourco.com\"\n";
    let w = world(&format!("{}{seq}", hubspot(&crm.uri(), ""))).await;
    let (job, delivered) = w.deliver(json!({"email": "lin@nurture.io"})).await;
    let first = delivered.unwrap();
    assert_eq!(
        first
            .delivery
            .iter()
            .filter(|d| d.status == DeliveryStatus::Ok)
            .count(),
        2,
        "{:?}",
        first.delivery
    );

    // The crash: both CRM calls happened, but their outbox rows were never closed.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", w.db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET status = 'pending', record_id = NULL, result_id = NULL")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // The job comes back: the worker resumes the stored decision and delivers it again.
    let resumed = w
        .crm
        .resume(&w.store, &job)
        .await
        .expect("the decision is kept for the replay");
    assert_eq!(resumed.route.rule, first.route.rule);
    let second = w
        .crm
        .deliver(&w.store, &job, resumed, &leadgate::crm::fence::Unfenced)
        .await
        .unwrap();
    assert_eq!(
        second
            .delivery
            .iter()
            .map(|d| d.record_id.clone())
            .collect::<Vec<_>>(),
        first
            .delivery
            .iter()
            .map(|d| d.record_id.clone())
            .collect::<Vec<_>>()
    );
    let enrollment = second.delivery.iter().find(|d| d.op == "enroll").unwrap();
    assert_eq!(enrollment.enrollment_id.as_deref(), Some("4101"));
    assert_eq!(
        requests(&crm, "POST", "/crm/v3/objects/contacts/batch/upsert")
            .await
            .len(),
        1,
        "no second create"
    );
    assert_eq!(
        requests(&crm, "POST", "/automation/v4/sequences/enrollments")
            .await
            .len(),
        1,
        "no second enrollment"
    );

    // A replay after the outbox was closed calls the CRM not at all.
    let before = crm.received_requests().await.unwrap().len();
    let third = w
        .crm
        .deliver(
            &w.store,
            &job,
            second.clone(),
            &leadgate::crm::fence::Unfenced,
        )
        .await
        .unwrap();
    assert_eq!(crm.received_requests().await.unwrap().len(), before);
    assert_eq!(third.delivery.len(), 2);
}

#[tokio::test]
async fn redelivery_after_a_crash_finds_the_record_holding_its_values_and_writes_nothing() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_empty())
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"status": "COMPLETE", "results": [{"id": "902", "new": true}]}),
            ),
        )
        .mount(&crm)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/902"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "902"})))
        .mount(&crm)
        .await;
    let w = world(&hubspot(&crm.uri(), "")).await;
    let (job, delivered) = w.deliver(json!({"email": "ada@acme.io"})).await;
    let first = delivered.unwrap();
    assert_eq!(first.route.owner.as_deref(), Some(OWNER));

    // The crash: the upsert reached HubSpot, its outbox row was never closed.
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", w.db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE outbox SET status = 'pending', record_id = NULL, result_id = NULL")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // What the first attempt left there, as HubSpot's search shows it (strings).
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_hit(
            "902",
            json!({"email": "ada@acme.io", "industry": "Software", "leadgate_score": first.score.to_string(),
                   "leadgate_grade": first.grade, "hubspot_owner_id": OWNER}),
        ))
        .with_priority(1)
        .mount(&crm)
        .await;
    let resumed = w.crm.resume(&w.store, &job).await.expect("kept decision");
    let second = w
        .crm
        .deliver(&w.store, &job, resumed, &leadgate::crm::fence::Unfenced)
        .await
        .unwrap();
    assert_eq!(
        second.delivery[0].status,
        DeliveryStatus::Ok,
        "{:?}",
        second.delivery
    );
    assert_eq!(second.delivery[0].record_id.as_deref(), Some("902"));
    let searches = requests(&crm, "POST", "/crm/v3/objects/contacts/search").await;
    assert!(
        json_body(searches.last().unwrap())["properties"]
            .as_array()
            .unwrap()
            .contains(&json!("hubspot_owner_id")),
        "the replay reads the owner it would set"
    );
    assert_eq!(
        requests(&crm, "POST", "/crm/v3/objects/contacts/batch/upsert")
            .await
            .len(),
        1,
        "no second upsert"
    );
    assert!(
        requests(&crm, "PATCH", "/crm/v3/objects/contacts/902")
            .await
            .is_empty(),
        "the record already holds the owner and the score: no second write"
    );
}

#[tokio::test]
async fn an_unhealing_4xx_fails_the_lead_with_the_crms_message_while_others_go_on() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(
            json!({"filterGroups": [{"filters": [{"value": "bad@kestrel-data.io"}]}]}),
        ))
        .respond_with(search_hit("13", json!({})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_hit("14", json!({})))
        .mount(&crm)
        .await;
    Mock::given(method("PATCH")).and(path("/crm/v3/objects/contacts/13"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "error",
            "message": "Property values were not valid: leadgate_score does not exist", "category": "VALIDATION_ERROR"})))
        .expect(1)
        .mount(&crm).await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/14"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "14"})))
        .mount(&crm)
        .await;

    let (dir, file) = config_dir(&hubspot(&crm.uri(), ""));
    let (_db_dir, db) = temp_db();
    let daemon = Daemon::start_with_config(&file, &db, 2, &[]);
    let client = reqwest::Client::new();
    let post = |email: &str| {
        client
            .post(daemon.url("/v1/leads"))
            .json(&json!({"email": email}))
            .send()
    };
    let bad: Value = post("bad@kestrel-data.io")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let good: Value = post("good@kestrel-data.io")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed = wait_for_status(&client, &daemon, bad["id"].as_str().unwrap(), &["failed"]).await;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("leadgate_score does not exist"), "{failed}");
    let done = wait_for_status(&client, &daemon, good["id"].as_str().unwrap(), &["done"]).await;
    assert_eq!(done["delivery"][0]["record_id"], "14", "{done}");
    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("leadgate_delivery_failures_total"),
        "{metrics}"
    );
    drop(dir);
}

#[tokio::test]
async fn a_5xx_leaves_the_job_for_a_retry_and_records_nothing_as_done() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&crm)
        .await;
    let w = world(&hubspot(&crm.uri(), "")).await;
    let (job, delivered) = w.deliver(json!({"email": "ada@kestrel-data.io"})).await;
    match delivered {
        Err(DeliveryError::Transient { connector, error }) => {
            assert_eq!(connector, "hubspot");
            assert_eq!(error.kind.as_str(), "upstream");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(
        w.crm.resume(&w.store, &job).await.is_some(),
        "the decision waits for the retry"
    );
}

// ---- Salesforce -------------------------------------------------------------------------------

fn salesforce(url: &str, extra: &str) -> String {
    format!(
        r#"[providers.salesforce]
api_key = "3MVG9-client-id"
api_secret = "client-secret"
refresh_token = "5Aep-refresh"
token_url = "{url}/services/oauth2/token"
base_url = "{url}"
rate_limit_per_second = 500
burst = 100
[delivery]
target = "salesforce"
[[delivery.field]]
canonical = "company.industry"
property = "Industry"
[[delivery.field]]
canonical = "score"
property = "Lead_Score__c"
policy = "overwrite"
{extra}
"#
    )
}

async fn salesforce_token(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": token, "instance_url": "https://acme.my.salesforce.com",
            "id": "https://login.salesforce.com/id/00D/005", "token_type": "Bearer", "issued_at": "1700000000000", "signature": "x"})))
        .up_to_n_times(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn salesforce_owner_upsert_turns_assignment_rules_off_and_enrolls_a_campaign_member() {
    let crm = MockServer::start().await;
    salesforce_token(&crm, "00D!token", 10).await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/services/data/v62\.0/sobjects/Lead/Gateway_Lead_Id__c/.+$",
        ))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ))
        .mount(&crm)
        .await;
    Mock::given(method("PATCH")).and(path_regex(r"^/services/data/v62\.0/sobjects/Lead/Gateway_Lead_Id__c/.+$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "00Q5e00000ABCDE", "success": true, "errors": [], "created": true}))
            .insert_header("Sforce-Limit-Info", "api-usage=10018/100000"))
        .mount(&crm).await;
    let w = world(&salesforce(&crm.uri(), "")).await;
    let (job, delivered) = w
        .deliver(
            json!({"email": "ada@kestrel-data.io", "last_name": "Lovelace", "company": "Kestrel"}),
        )
        .await;
    let d = delivered.unwrap();
    assert_eq!(d.delivery[0].record_id.as_deref(), Some("00Q5e00000ABCDE"));
    let upsert = &requests(
        &crm,
        "PATCH",
        &format!(
            "/services/data/v62.0/sobjects/Lead/Gateway_Lead_Id__c/{}",
            job.lead_id
        ),
    )
    .await[0];
    assert_eq!(
        upsert
            .headers
            .get("sforce-auto-assign")
            .map(|v| v.to_str().unwrap()),
        Some("FALSE")
    );
    assert_eq!(
        upsert
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer 00D!token")
    );
    let body = json_body(upsert);
    assert_eq!(body["OwnerId"], OWNER);
    assert_eq!(body["LastName"], "Lovelace");
    assert_eq!(body["Lead_Score__c"], json!(d.score));

    // Nurture: a CampaignMember, checked first with SOQL.
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/query"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": 0, "done": true, "records": []})),
        )
        .mount(&crm)
        .await;
    Mock::given(method("POST")).and(path("/services/data/v62.0/sobjects/CampaignMember"))
        .and(body_partial_json(json!({"CampaignId": "701000000000001", "LeadId": "00Q5e00000ABCDE", "Status": "Responded"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "00v000000000042", "success": true, "errors": []})))
        .expect(1)
        .mount(&crm).await;
    let seq = "[[delivery.sequence]]\nname = \"mid-funnel\"\nid = \"701000000000001\"\nstatus = \"Responded\"\n";
    let w = world(&salesforce(&crm.uri(), seq)).await;
    let (_, delivered) = w
        .deliver(json!({"email": "lin@nurture.io", "last_name": "Lin", "company": "Nurture"}))
        .await;
    let d = delivered.unwrap();
    let enroll = d.delivery.iter().find(|x| x.op == "enroll").unwrap();
    assert_eq!(
        enroll.enrollment_id.as_deref(),
        Some("00v000000000042"),
        "{:?}",
        d.delivery
    );
    let query = &requests(&crm, "GET", "/services/data/v62.0/query").await[0];
    let q = query
        .url
        .query_pairs()
        .find(|(k, _)| k == "q")
        .unwrap()
        .1
        .to_string();
    assert_eq!(q, "SELECT Id FROM CampaignMember WHERE CampaignId = '701000000000001' AND LeadId = '00Q5e00000ABCDE' LIMIT 1");
}

#[tokio::test]
async fn salesforce_oauth_refreshes_once_for_fifty_concurrent_calls() {
    let crm = MockServer::start().await;
    // The first token is already expired server-side; the refresh hands out a good one.
    salesforce_token(&crm, "stale", 1).await;
    Mock::given(method("POST")).and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "fresh", "instance_url": "https://acme.my.salesforce.com", "token_type": "Bearer"})))
        .mount(&crm).await;
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/sobjects/Lead/00Q000000000001"))
        .and(header("authorization", "Bearer stale"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        ))
        .mount(&crm)
        .await;
    Mock::given(method("GET")).and(path("/services/data/v62.0/sobjects/Lead/00Q000000000001")).and(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Id": "00Q000000000001", "Email": "ada@kestrel-data.io", "LastName": "Lovelace"})))
        .mount(&crm).await;
    let w = world(&salesforce(&crm.uri(), "")).await;
    let mut calls = Vec::new();
    for _ in 0..50 {
        let crm = w.crm.clone();
        calls.push(tokio::spawn(async move {
            crm.fetch("salesforce", "Lead", "00Q000000000001").await
        }));
    }
    for c in calls {
        let lead = c
            .await
            .unwrap()
            .expect("every call succeeds with the refreshed token");
        assert_eq!(lead.0["email"], "ada@kestrel-data.io");
    }
    let tokens = requests(&crm, "POST", "/services/oauth2/token").await;
    assert_eq!(tokens.len(), 2, "one initial token and exactly one refresh");
    let form = String::from_utf8(tokens[1].body.clone()).unwrap();
    assert!(
        form.contains("grant_type=refresh_token") && form.contains("refresh_token=5Aep-refresh"),
        "{form}"
    );
    assert_eq!(
        w.crm
            .connector("salesforce")
            .unwrap()
            .oauth()
            .unwrap()
            .refreshes(),
        2
    );
}

#[tokio::test]
async fn salesforce_request_limit_exceeded_parks_the_connector_as_quota_not_rate() {
    let crm = MockServer::start().await;
    salesforce_token(&crm, "tok", 10).await;
    Mock::given(method("GET")).and(path_regex(r"^/services/data/v62\.0/sobjects/Lead/Gateway_Lead_Id__c/.+$"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))
            .insert_header("Sforce-Limit-Info", "api-usage=100000/100000"))
        .expect(1)
        .mount(&crm).await;
    let w = world(&salesforce(&crm.uri(), "")).await;
    let (_, first) = w.deliver(json!({"email": "ada@kestrel-data.io"})).await;
    match first {
        Err(DeliveryError::Transient { error, .. }) => {
            assert_eq!(error.kind.as_str(), "quota_exhausted", "{error}")
        }
        other => panic!("expected quota_exhausted, got {other:?}"),
    }
    // Parked: the next lead does not call Salesforce at all.
    let (_, second) = w.deliver(json!({"email": "grace@kestrel-data.io"})).await;
    assert!(matches!(second, Err(DeliveryError::Transient { .. })));
}

// ---- Pipedrive and Salesloft -----------------------------------------------------------------

#[tokio::test]
async fn pipedrive_searches_then_creates_with_a_numeric_owner() {
    let crm = MockServer::start().await;
    Mock::given(method("GET")).and(path("/api/v2/persons/search")).and(query_param("term", "ada@kestrel-data.io")).and(query_param("exact_match", "true"))
        .and(header("x-api-token", "pd-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true, "data": {"items": []}, "additional_data": {"next_cursor": null}})))
        .mount(&crm).await;
    Mock::given(method("POST"))
        .and(path("/api/v2/persons"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(
                json!({"success": true, "data": {"id": 789, "name": "Ada Lovelace"}}),
            ),
        )
        .expect(1)
        .mount(&crm)
        .await;
    let cfg = format!(
        "[providers.pipedrive]\napi_key = \"pd-token\"\nbase_url = \"{}\"\n[delivery]\ntarget = \"pipedrive\"\n[[delivery.field]]\ncanonical = \"grade\"\nproperty = \"custom_fields.d4de1c1518b4531717c676029a45911c340390a6\"\n",
        crm.uri()
    );
    let w = world(&cfg).await;
    let (_, delivered) = w
        .deliver(
            json!({"email": "ada@kestrel-data.io", "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    let d = delivered.unwrap();
    assert_eq!(d.delivery[0].record_id.as_deref(), Some("789"));
    let body = json_body(&requests(&crm, "POST", "/api/v2/persons").await[0]);
    assert_eq!(
        body["owner_id"],
        json!(41629779),
        "Pipedrive owner ids are numbers: {body}"
    );
    assert_eq!(body["name"], "Ada Lovelace");
    assert_eq!(body["emails"][0]["value"], "ada@kestrel-data.io");
    assert_eq!(
        body["custom_fields"]["d4de1c1518b4531717c676029a45911c340390a6"],
        json!(d.grade)
    );
}

#[tokio::test]
async fn salesloft_cadence_membership_records_its_id() {
    let crm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"id": 456}})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/cadence_memberships"))
        .and(query_param("person_id", "456"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/cadence_memberships"))
        .and(body_partial_json(
            json!({"person_id": 456, "cadence_id": 123, "user_id": 789}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": 9001, "currently_on_cadence": true, "cadence": {"id": 123}}}),
        ))
        .expect(1)
        .mount(&crm)
        .await;
    let cfg = format!(
        "[providers.salesloft]\napi_key = \"sl-key\"\nbase_url = \"{}\"\n[[delivery.sequence]]\nname = \"mid-funnel\"\nconnector = \"salesloft\"\nid = \"123\"\nuser_id = \"789\"\n",
        crm.uri()
    );
    let w = world(&cfg).await;
    let (_, delivered) = w
        .deliver(json!({"email": "lin@nurture.io", "first_name": "Lin"}))
        .await;
    let d = delivered.unwrap();
    assert_eq!(
        d.delivery.len(),
        1,
        "no target: only the enrollment, {:?}",
        d.delivery
    );
    assert_eq!(d.delivery[0].connector, "salesloft");
    assert_eq!(d.delivery[0].enrollment_id.as_deref(), Some("9001"));
}

// ---- webhooks' record fetch and polling ----------------------------------------------------

#[tokio::test]
async fn a_hubspot_contact_named_by_a_webhook_is_fetched_as_a_lead() {
    let crm = MockServer::start().await;
    Mock::given(method("GET")).and(path("/crm/v3/objects/contacts/123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "123", "properties": {"email": "ada@kestrel-data.io",
            "firstname": "Ada", "lastname": "Lovelace", "company": "Kestrel", "lastmodifieddate": "2026-05-01T10:00:00.000Z"}})))
        .mount(&crm).await;
    let w = world(&hubspot(&crm.uri(), "")).await;
    let lead = w.crm.fetch("hubspot", "contact", "123").await.unwrap();
    assert_eq!(lead.0["email"], "ada@kestrel-data.io");
    assert_eq!(lead.0["first_name"], "Ada");
    assert_eq!(lead.0["crm"], "hubspot");
    assert_eq!(lead.0["external_id"], "123");
    assert!(w.crm.fetch("hubspot", "contact", "124").await.is_err());
}

fn contact(id: &str, email: &str, modified: &str) -> Value {
    json!({"id": id, "properties": {"email": email, "lastmodifieddate": modified}, "createdAt": modified, "updatedAt": modified, "archived": false})
}

#[tokio::test]
async fn polling_neither_misses_nor_repeats_across_a_restart() {
    let crm = MockServer::start().await;
    let (t1, t2, t3) = (
        "2026-05-01T10:00:00.000Z",
        "2026-05-01T10:05:00.000Z",
        "2026-05-01T10:09:00.000Z",
    );
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
            .to_string()
    };
    let start = "2026-05-01T09:00:00Z";
    Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": ms(start)}]}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 2, "results": [contact("1", "a@kestrel-data.io", t1), contact("2", "b@kestrel-data.io", t2)]})))
        .mount(&crm).await;
    // After the restart the cursor is t2: B is asked for again (>=) and must not be queued twice.
    Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [{"value": ms(t2)}]}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 2, "results": [contact("2", "b@kestrel-data.io", t2), contact("3", "c@kestrel-data.io", t3)]})))
        .mount(&crm).await;
    let cfg = format!("[providers.hubspot]\napi_key = \"pat\"\nbase_url = \"{}\"\n[intake.poll.hubspot]\ninterval = \"1s\"\nstart = \"{start}\"\n", crm.uri());
    let w = world(&cfg).await;
    let spec = w.crm.polls[0].clone();
    let first = poll_once(&w.state(), &w.crm, &spec, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((first.queued, first.duplicates), (2, 0));
    assert_eq!(
        w.store
            .poll_cursor("hubspot")
            .await
            .unwrap()
            .as_deref()
            .map(|c| c.starts_with("2026-05-01T10:05:00")),
        Some(true)
    );

    // Restart: a new process on the same store.
    let store = Store::open(&format!("sqlite://{}", w.db.display()))
        .await
        .unwrap();
    let crm2 = Crm::build(&w.settings).unwrap().unwrap();
    let mut state = w.state();
    state.store = store;
    let second = poll_once(&state, &crm2, &crm2.polls[0], chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((second.queued, second.duplicates), (1, 1), "{second:?}");
    let depth = w.store.queue_depth().await.unwrap();
    assert_eq!(depth.get("queued").copied(), Some(3), "{depth:?}");
}

// ---- the shipped default ----------------------------------------------------------------------

#[test]
fn the_shipped_config_builds_no_crm_and_stays_offline() {
    let settings = Settings::load(Path::new("config/leadgate.toml")).unwrap();
    assert!(Crm::build(&settings).unwrap().is_none());
}

#[test]
fn a_mapping_to_an_unknown_decision_value_is_named() {
    let (_dir, file) = config_dir("[providers.hubspot]\napi_key = \"x\"\n[delivery]\ntarget = \"hubspot\"\n[[delivery.field]]\ncanonical = \"company.industri\"\nproperty = \"industry\"\n");
    let settings = Settings::load(&file).unwrap();
    let err = Crm::build(&settings).unwrap_err().to_string();
    assert!(
        err.contains("delivery.field[0].canonical") && err.contains("company.industri"),
        "{err}"
    );
}

/// Issue 25 item 3: the SLA sweep's new owner reaches the HubSpot contact, once per step.
#[tokio::test]
async fn an_sla_reassignment_writes_the_new_owner_to_hubspot_once() {
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
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(search_empty())
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
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/objects/contacts/901"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "901", "properties": {"hubspot_owner_id": "b"},
            "createdAt": "2026-11-23T10:00:00Z", "updatedAt": "2026-11-23T14:01:00Z",
            "archived": false
        })))
        .mount(&crm)
        .await;

    let (dir, file) = support::shipped_config(SLA_ROUTING, &hubspot(&crm.uri(), ""));
    let (_db_dir, db) = temp_db();
    let settings = Settings::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let pipeline = Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let delivery = Crm::build(&settings).unwrap().expect("a CRM is configured");
    let w = World {
        _dir: dir,
        _db: _db_dir,
        db,
        settings,
        pipeline,
        store,
        crm: delivery,
    };
    let (job, delivered) = w.deliver(json!({"email": "grace@kestrel-data.io"})).await;
    let decision = delivered.unwrap();
    assert_eq!(decision.route.owner.as_deref(), Some("a"));
    w.store
        .complete(&job, &decision.lead, &decision)
        .await
        .unwrap();

    let sweep = |at: chrono::DateTime<chrono::Utc>| {
        let w = &w;
        async move {
            leadgate::route::sla::sweep_once_with_crm(
                &w.pipeline.router,
                &w.store,
                &w.store,
                Some(&w.crm),
                at,
            )
            .await
            .unwrap()
        }
    };
    let breach = chrono::Utc::now() + chrono::Duration::hours(4) + chrono::Duration::minutes(1);
    assert_eq!(sweep(breach).await.reassigned, 1);
    let patches = requests(&crm, "PATCH", "/crm/v3/objects/contacts/901").await;
    assert_eq!(patches.len(), 1, "one breach, one owner write");
    assert_eq!(
        json_body(&patches[0])["properties"]["hubspot_owner_id"],
        "b"
    );

    // The same moment again: the step is settled, nothing is written twice.
    assert_eq!(sweep(breach).await.checked, 0);
    assert_eq!(
        requests(&crm, "PATCH", "/crm/v3/objects/contacts/901")
            .await
            .len(),
        1
    );
    let writes = w.store.crm_writes(&job.lead_id).await.unwrap();
    let owner: Vec<_> = writes.iter().filter(|w| w.op == "owner").collect();
    assert_eq!(owner.len(), 1, "{writes:?}");
    assert_eq!(
        (owner[0].status.as_str(), owner[0].record_id.as_deref()),
        ("ok", Some("901"))
    );
    let view = w.store.lead(&job.lead_id).await.unwrap().unwrap();
    assert_eq!(view.history.len(), 2, "routing and the reassignment");
    assert_eq!(view.decision.unwrap()["route"]["owner"], "b");
}
