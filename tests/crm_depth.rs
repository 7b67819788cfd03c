//! CRM depth (issue #29): lead-to-account matching against the CRM's own accounts — HubSpot
//! companies, Salesforce Accounts, Pipedrive organizations — with wiremock servers
//! (127.0.0.1 only) answering as the vendors do (reference/connector-wire-formats.md §1.8,
//! §2.7, §3.4): the match and how it was made in the decision record, negative answers
//! cached, one lookup in flight per domain, the fuzzy name fallback, a failing CRM falling
//! through to the accounts file.

mod support;

use std::sync::Arc;

use leadgate::crm::account_match::attach;
use leadgate::crm::Crm;
use leadgate::lead::RawLead;
use leadgate::pipeline::Pipeline;
use leadgate::settings::Settings;
use leadgate::store::Store;
use serde_json::{json, Value};
use support::temp_db;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROUTING: &str = r#"
[[rule]]
id = "known-account"
when = "has(account.id)"
assign = { owner = "41629779" }

[fallback]
review = { reason = "no account" }

[account_match]
"#;

struct World {
    _dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    pipeline: Arc<Pipeline>,
    store: Store,
}

/// `match_keys` go under `[account_match]`; `extra` into leadgate.toml.
async fn world(match_keys: &str, extra: &str, accounts_csv: Option<&str>) -> World {
    let routing = format!("{ROUTING}{match_keys}\n");
    let (dir, file) = support::shipped_config(&routing, extra);
    if let Some(csv) = accounts_csv {
        std::fs::write(dir.path().join("accounts.csv"), csv).unwrap();
    }
    let (db_dir, db) = temp_db();
    let settings = Settings::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let mut pipeline = Pipeline::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    let crm = Crm::build(&settings).unwrap_or_else(|e| panic!("{e}"));
    attach(&mut pipeline.router, crm.as_deref()).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    World {
        _dir: dir,
        _db: db_dir,
        pipeline: Arc::new(pipeline),
        store,
    }
}

impl World {
    async fn account(&self, lead: Value) -> Value {
        let raw = RawLead(lead.as_object().unwrap().clone());
        let lead = self.pipeline.normalize(&raw).unwrap();
        self.pipeline.router.match_account(&lead).await
    }

    /// The account as the decision record keeps it.
    async fn recorded_account(&self, lead: Value) -> Value {
        let raw = RawLead(lead.as_object().unwrap().clone());
        let lead = self.pipeline.normalize(&raw).unwrap();
        let d = self
            .pipeline
            .decide(lead, &self.store, chrono::Utc::now())
            .await
            .unwrap();
        d.route.account.unwrap_or(Value::Null)
    }
}

fn hubspot(url: &str) -> String {
    format!(
        r#"[providers.hubspot]
api_key = "pat-test-token"
base_url = "{url}"
rate_limit_per_second = 500
burst = 100
"#
    )
}

fn search_terms(requests: &[Request], p: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.url.path() == p)
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            b["filterGroups"][0]["filters"][0]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

const COMPANIES: &str = "/crm/v3/objects/companies/search";

/// HubSpot's company search: `acme.com` primary with `acme.io` as an additional domain.
fn hubspot_companies(req: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let primary = &body["filterGroups"][0]["filters"][0];
    let alias = &body["filterGroups"][1]["filters"][0];
    let term = primary["value"].as_str().unwrap_or_default();
    let acme = json!({"id": "9001", "properties": {"domain": "acme.com", "name": "Acme Corp",
        "hubspot_owner_id": "555", "hs_additional_domains": "acme.io;acme-labs.com",
        "hs_ideal_customer_profile": "tier_1", "hs_object_id": "9001"},
        "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z", "archived": false});
    let hit = primary["propertyName"] == "domain"
        && alias["propertyName"] == "hs_additional_domains"
        && alias["operator"] == "CONTAINS_TOKEN"
        && ["acme.com", "acme.io", "acme-labs.com"].contains(&term);
    let results = if hit { vec![acme] } else { vec![] };
    ResponseTemplate::new(200)
        .set_body_json(json!({"total": results.len(), "results": results}))
        .insert_header("X-HubSpot-RateLimit-Remaining", "99")
        .insert_header("X-HubSpot-RateLimit-Max", "100")
}

#[tokio::test]
async fn hubspot_companies_match_by_domain_alias_and_subdomain_in_the_decision_record() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(COMPANIES))
        .respond_with(hubspot_companies)
        .mount(&crm)
        .await;
    let w = world(
        "source = \"crm\"\ncrm = \"hubspot\"\ncache_ttl = \"10m\"",
        &hubspot(&crm.uri()),
        None,
    )
    .await;

    let exact = w
        .recorded_account(json!({"email": "ada@acme.com", "company": "Acme"}))
        .await;
    assert_eq!(exact["id"], "9001");
    assert_eq!(exact["owner"], "555");
    assert_eq!(exact["tier"], "tier_1");
    assert_eq!(exact["match"]["how"], "exact_domain");
    assert_eq!(exact["match"]["source"], "hubspot");

    let alias = w.account(json!({"email": "bo@acme.io"})).await;
    assert_eq!(alias["id"], "9001");
    assert_eq!(alias["match"]["how"], "alias");
    assert_eq!(alias["match"]["host"], "acme.io");

    let sub = w
        .account(json!({"email": "cy@eu.acme.com", "website": "https://eu.acme.com/"}))
        .await;
    assert_eq!(sub["id"], "9001");
    assert_eq!(sub["match"]["how"], "subdomain");
    // The most specific host is asked first; acme.com itself came from the cache.
    let terms = search_terms(&crm.received_requests().await.unwrap(), COMPANIES);
    assert!(terms.contains(&"eu.acme.com".to_string()), "{terms:?}");
    assert_eq!(
        terms.iter().filter(|t| *t == "acme.com").count(),
        1,
        "{terms:?}"
    );

    let none = w.account(json!({"email": "dee@zenith.org"})).await;
    assert_eq!(none, json!({}));
}

#[tokio::test]
async fn hubspot_lookups_are_cached_negative_too_and_coalesced_per_domain() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(COMPANIES))
        .respond_with(|r: &Request| {
            hubspot_companies(r).set_delay(std::time::Duration::from_millis(150))
        })
        .mount(&crm)
        .await;
    let w = world(
        "source = \"crm\"\ncache_ttl = \"10m\"",
        &format!("{}[delivery]\ntarget = \"hubspot\"\n", hubspot(&crm.uri())),
        None,
    )
    .await;

    // Twenty leads from one company at once: one search in flight for the domain.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let p = w.pipeline.clone();
        tasks.push(tokio::spawn(async move {
            let raw = RawLead(
                json!({"email": format!("p{i}@acme.com")})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            let lead = p.normalize(&raw).unwrap();
            p.router.match_account(&lead).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap()["id"], "9001");
    }
    // A domain the CRM does not know, twice: asked once.
    for _ in 0..2 {
        assert_eq!(w.account(json!({"email": "x@zenith.org"})).await, json!({}));
    }
    let terms = search_terms(&crm.received_requests().await.unwrap(), COMPANIES);
    assert_eq!(
        terms.iter().filter(|t| *t == "acme.com").count(),
        1,
        "{terms:?}"
    );
    assert_eq!(
        terms.iter().filter(|t| *t == "zenith.org").count(),
        1,
        "{terms:?}"
    );
}

#[tokio::test]
async fn a_failing_crm_falls_through_to_the_accounts_file_in_source_order() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(COMPANIES))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"status": "error",
            "message": "Authentication credentials not found.", "category": "INVALID_AUTHENTICATION"})))
        .mount(&crm)
        .await;
    let w = world(
        "source = [\"crm\", \"file\"]\ncrm = \"hubspot\"\nfile = \"accounts.csv\"",
        &hubspot(&crm.uri()),
        Some("account_id,domain,name,owner,tier\nacc-1,acme.com,Acme,owner-file,tier_2\n"),
    )
    .await;
    let a = w.account(json!({"email": "ada@acme.com"})).await;
    assert_eq!(a["id"], "acc-1");
    assert_eq!(a["match"]["source"], "accounts.csv");
    assert_eq!(a["match"]["how"], "exact_domain");
    assert!(
        !crm.received_requests().await.unwrap().is_empty(),
        "the CRM was asked first"
    );
}

fn salesforce(url: &str) -> String {
    format!(
        r#"[providers.salesforce]
api_key = "3MVG9-client-id"
api_secret = "client-secret"
refresh_token = "5Aep-refresh"
token_url = "{url}/services/oauth2/token"
base_url = "{url}"
rate_limit_per_second = 500
burst = 100
"#
    )
}

fn soql_records(records: Vec<Value>) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"totalSize": records.len(), "done": true, "records": records}))
        .insert_header("Sforce-Limit-Info", "api-usage=18/100000")
}

fn sf_account(id: &str, name: &str, website: &str) -> Value {
    json!({"attributes": {"type": "Account", "url": format!("/services/data/v62.0/sobjects/Account/{id}")},
        "Id": id, "Name": name, "OwnerId": "0055e000001OWNR", "Website": website})
}

#[tokio::test]
async fn salesforce_accounts_by_a_configured_domain_field_and_by_fuzzy_name() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "00D!token",
            "instance_url": "https://acme.my.salesforce.com", "token_type": "Bearer", "issued_at": "1700000000000"})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/query"))
        .respond_with(|r: &Request| {
            let q = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if q.contains("WHERE Domain__c LIKE '%acme.com%'") {
                // LIKE also finds a look-alike; the real account comes second.
                soql_records(vec![
                    sf_account("001NOT", "Not Acme", "https://www.notacme.com"),
                    sf_account("001ACME", "Acme", "http://www.acme.com/"),
                ])
            } else if q.contains("WHERE Name LIKE '%kestrel%'") {
                soql_records(vec![
                    sf_account("001KP", "Kestrel Pharma", "kestrelpharma.com"),
                    sf_account("001KD", "Kestrel Data Corp", "kestrel.io"),
                ])
            } else if q.contains("FROM Account WHERE") {
                soql_records(vec![])
            } else {
                ResponseTemplate::new(400).set_body_json(
                    json!([{"message": "unexpected", "errorCode": "MALFORMED_QUERY"}]),
                )
            }
        })
        .mount(&crm)
        .await;
    let w = world(
        "source = \"crm\"\ncrm = \"salesforce\"\ndomain_field = \"Domain__c\"\nfuzzy_threshold = 0.9",
        &salesforce(&crm.uri()),
        None,
    )
    .await;

    let a = w.recorded_account(json!({"email": "ada@acme.com"})).await;
    assert_eq!(a["id"], "001ACME");
    assert_eq!(a["owner"], "0055e000001OWNR");
    assert_eq!(a["match"]["how"], "exact_domain");

    let f = w
        .recorded_account(json!({"email": "bo@kestrel-mail.net", "company": "Kestrel Data, Inc."}))
        .await;
    assert_eq!(f["id"], "001KD", "{f}");
    assert_eq!(f["match"]["how"], "fuzzy_name");
    assert!(f["match"]["confidence"].as_f64().unwrap() >= 0.9);

    // Below the threshold: no account rather than a guess.
    let g = w
        .account(json!({"email": "cy@kestrel-mail.net", "company": "Kestrel Aerospace"}))
        .await;
    assert_eq!(g, json!({}));
}

#[tokio::test]
async fn pipedrive_organizations_by_a_domain_custom_field() {
    let crm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/organizations/search"))
        .respond_with(|r: &Request| {
            let q: std::collections::HashMap<String, String> =
                r.url.query_pairs().into_owned().collect();
            let hit = q.get("term").map(String::as_str) == Some("acme.com")
                && q.get("fields").map(String::as_str) == Some("custom_fields")
                && q.get("exact_match").map(String::as_str) == Some("true");
            let items = if hit {
                vec![json!({"result_score": 1.0, "item": {"id": 42, "name": "Acme", "owner": {"id": 7},
                    "address": null, "visible_to": 3, "custom_fields": ["acme.com"]}})]
            } else {
                vec![]
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "data": {"items": items}, "additional_data": {"next_cursor": null}}))
                .insert_header("x-ratelimit-remaining", "19")
                .insert_header("x-ratelimit-reset", "2")
        })
        .mount(&crm)
        .await;
    let extra = format!(
        "[providers.pipedrive]\napi_key = \"pd-token\"\nbase_url = \"{}\"\n",
        crm.uri()
    );
    let w = world("source = \"crm\"\ncrm = \"pipedrive\"", &extra, None).await;
    let a = w.recorded_account(json!({"email": "ada@acme.com"})).await;
    assert_eq!(a["id"], "42");
    assert_eq!(a["owner"], "7");
    assert_eq!(a["match"]["how"], "exact_domain");
    assert_eq!(a["match"]["source"], "pipedrive");
    assert_eq!(w.account(json!({"email": "x@zenith.org"})).await, json!({}));
}

#[test]
fn account_match_keys_are_checked_with_the_key_and_rule() {
    let routing = format!("{ROUTING}source = [\"crm\", \"ldap\"]\nfuzzy_threshold = 1.5\ndomain_field = \"Website'--\"\n");
    let (_dir, file) = support::shipped_config(&routing, "");
    let settings = Settings::load(&file).unwrap();
    let Err(err) = Pipeline::build(&settings) else {
        panic!("the bad keys were accepted")
    };
    let err = err.to_string();
    assert!(
        err.contains("account_match.source") && err.contains("`ldap`"),
        "{err}"
    );
    assert!(err.contains("account_match.fuzzy_threshold"), "{err}");
    assert!(err.contains("account_match.domain_field"), "{err}");
}

// ---- polling: Pipedrive and Salesforce ---------------------------------------------------------

struct PollWorld {
    _dir: tempfile::TempDir,
    _db: tempfile::TempDir,
    db: std::path::PathBuf,
    settings: Settings,
    store: Store,
    crm: Arc<Crm>,
}

async fn poll_world(extra: &str) -> PollWorld {
    let (dir, file) = support::shipped_config(
        "[[rule]]\nid = \"all\"\nwhen = \"true\"\nassign = { owner = \"7\" }\n[fallback]\nreview = { reason = \"x\" }\n",
        extra,
    );
    let (db_dir, db) = temp_db();
    let settings = Settings::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let crm = Crm::build(&settings)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap();
    PollWorld {
        _dir: dir,
        _db: db_dir,
        db,
        settings,
        store,
        crm,
    }
}

impl PollWorld {
    fn state(&self, store: Store) -> leadgate::services::Services {
        leadgate::services::Services {
            delivery: Some(self.crm.clone()),
            ..leadgate::services::Services::new(Pipeline::build(&self.settings).unwrap(), store)
        }
    }
}

fn pd_person(id: u64, email: &str, updated: &str) -> Value {
    json!({"id": id, "name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
        "owner_id": 7, "org_id": null, "org_name": "Kestrel Data",
        "emails": [{"value": email, "primary": true, "label": "work"}],
        "phones": [], "add_time": "2026-04-01T09:00:00Z", "update_time": updated, "visible_to": 3})
}

#[tokio::test]
async fn pipedrive_polling_moves_its_cursor_and_repeats_nothing_across_a_restart() {
    use leadgate::crm::poll::poll_once;
    let crm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/persons"))
        .respond_with(|r: &Request| {
            let q: std::collections::HashMap<String, String> =
                r.url.query_pairs().into_owned().collect();
            let since = q.get("updated_since").cloned().unwrap_or_default();
            assert_eq!(q.get("sort_by").map(String::as_str), Some("update_time"));
            let all = [
                pd_person(101, "ada@kestrel-data.io", "2026-05-01T10:00:00Z"),
                pd_person(102, "bo@kestrel-data.io", "2026-05-01T10:05:00Z"),
            ];
            // RFC 3339 in UTC compares as text.
            let data: Vec<Value> = all
                .into_iter()
                .filter(|p| p["update_time"].as_str().unwrap() >= since.as_str())
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "data": data, "additional_data": {"next_cursor": null}}))
                .insert_header("x-ratelimit-remaining", "19")
                .insert_header("x-ratelimit-reset", "2")
        })
        .mount(&crm)
        .await;
    let cfg = format!("[providers.pipedrive]\napi_key = \"pd-token\"\nbase_url = \"{}\"\n[intake.poll.pipedrive]\ninterval = \"1s\"\nstart = \"2026-05-01T09:00:00Z\"\n", crm.uri());
    let w = poll_world(&cfg).await;
    let spec = w.crm.polls[0].clone();
    let first = poll_once(&w.state(w.store.clone()), &w.crm, &spec, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (first.seen, first.queued, first.duplicates),
        (2, 2, 0),
        "{first:?}"
    );
    let cursor = w.store.poll_cursor("pipedrive").await.unwrap().unwrap();
    assert!(cursor.starts_with("2026-05-01T10:05:00"), "{cursor}");

    // A restart on the same store: the record at the cursor comes again and is a duplicate.
    let store = Store::open(&format!("sqlite://{}", w.db.display()))
        .await
        .unwrap();
    let crm2 = Crm::build(&w.settings).unwrap().unwrap();
    let second = poll_once(&w.state(store), &crm2, &crm2.polls[0], chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (second.seen, second.queued, second.duplicates),
        (1, 0, 1),
        "{second:?}"
    );
    let asked: Vec<String> = crm
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "updated_since")
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    assert_eq!(asked, ["2026-05-01T09:00:00Z", "2026-05-01T10:05:00Z"]);
}

#[tokio::test]
async fn salesforce_polling_reads_soql_records_from_the_cursor() {
    use leadgate::crm::poll::poll_once;
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "00D!token",
            "instance_url": "https://acme.my.salesforce.com", "token_type": "Bearer", "issued_at": "1700000000000"})))
        .mount(&crm)
        .await;
    Mock::given(method("GET"))
        .and(path("/services/data/v62.0/query"))
        .respond_with(|r: &Request| {
            let q = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let lead = |id: &str, email: &str, at: &str| json!({"attributes": {"type": "Lead",
                "url": format!("/services/data/v62.0/sobjects/Lead/{id}")}, "Id": id, "Email": email,
                "FirstName": "Ada", "LastName": "Lovelace", "Company": "Kestrel Data", "Title": null,
                "Phone": null, "Website": null, "Country": "US", "LastModifiedDate": at});
            let records = if q.contains("FROM Lead WHERE LastModifiedDate >= 2026-05-01T09:00:00Z ORDER BY LastModifiedDate ASC") {
                vec![
                    lead("00Q1", "ada@kestrel-data.io", "2026-05-01T10:00:00.000+0000"),
                    lead("00Q2", "bo@kestrel-data.io", "2026-05-01T10:05:00.000+0000"),
                ]
            } else if q.contains("LastModifiedDate >= 2026-05-01T10:05:00Z") {
                vec![lead("00Q2", "bo@kestrel-data.io", "2026-05-01T10:05:00.000+0000")]
            } else {
                return ResponseTemplate::new(400).set_body_json(json!([{"message": format!("unexpected {q}"), "errorCode": "MALFORMED_QUERY"}]));
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"totalSize": records.len(), "done": true, "records": records}))
                .insert_header("Sforce-Limit-Info", "api-usage=20/100000")
        })
        .mount(&crm)
        .await;
    let cfg = format!(
        "{}[intake.poll.salesforce]\ninterval = \"1s\"\nstart = \"2026-05-01T09:00:00Z\"\n",
        salesforce(&crm.uri())
    );
    let w = poll_world(&cfg).await;
    let spec = w.crm.polls[0].clone();
    let state = w.state(w.store.clone());
    let first = poll_once(&state, &w.crm, &spec, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((first.seen, first.queued), (2, 2), "{first:?}");
    let again = poll_once(&state, &w.crm, &spec, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (again.seen, again.queued, again.duplicates),
        (1, 0, 1),
        "{again:?}"
    );
    let depth = w.store.queue_depth().await.unwrap();
    assert_eq!(depth.get("queued").copied(), Some(2), "{depth:?}");
}

// ---- rotated refresh tokens ------------------------------------------------------------------

/// An `application/x-www-form-urlencoded` body's fields.
fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    reqwest::Url::parse(&format!("http://form.invalid/?{text}"))
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_in_the_store_and_used_next_also_after_a_restart() {
    let crm = MockServer::start().await;
    // Outreach rotates: each refresh token works once and the answer names the next.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(|r: &Request| {
            let form = form(&r.body);
            let next = match form.get("refresh_token").map(String::as_str) {
                Some("or-refresh-0") => "or-refresh-1",
                Some("or-refresh-1") => "or-refresh-2",
                Some("or-refresh-2") => "or-refresh-3",
                _ => return ResponseTemplate::new(400).set_body_json(
                    json!({"error": "invalid_grant", "error_description": "refresh token revoked"}),
                ),
            };
            ResponseTemplate::new(200)
                .set_body_json(json!({"access_token": format!("access-{next}"),
                "token_type": "bearer", "expires_in": 7200, "refresh_token": next}))
        })
        .mount(&crm)
        .await;
    let cfg = format!(
        "[providers.outreach]\napi_key = \"or-client\"\napi_secret = \"or-secret\"\nrefresh_token = \"or-refresh-0\"\ntoken_url = \"{url}/oauth/token\"\nbase_url = \"{url}\"\n[[delivery.sequence]]\nname = \"mid-funnel\"\nconnector = \"outreach\"\nid = \"456\"\nmailbox_id = \"7\"\n",
        url = crm.uri()
    );
    let w = poll_world(&cfg).await;
    leadgate::crm::tokens::keep_rotated_tokens(&w.crm, &w.store)
        .await
        .unwrap();
    let source = w.crm.connector("outreach").unwrap().oauth().unwrap();
    let first = source.token().await.unwrap();
    assert_eq!(first.access_token, "access-or-refresh-1");
    // A 401 forces a refresh: the rotated token is the one sent.
    let second = source.refused(first.generation).await.unwrap();
    assert_eq!(second.access_token, "access-or-refresh-2");

    // A new process on the same store starts from the newest kept token, not the config's
    // (which the endpoint has revoked).
    let store = Store::open(&format!("sqlite://{}", w.db.display()))
        .await
        .unwrap();
    let crm2 = Crm::build(&w.settings).unwrap().unwrap();
    leadgate::crm::tokens::keep_rotated_tokens(&crm2, &store)
        .await
        .unwrap();
    let third = crm2
        .connector("outreach")
        .unwrap()
        .oauth()
        .unwrap()
        .token()
        .await
        .unwrap();
    assert_eq!(third.access_token, "access-or-refresh-3");
    let sent: Vec<String> = crm
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| form(&r.body).remove("refresh_token"))
        .collect();
    assert_eq!(sent, ["or-refresh-0", "or-refresh-1", "or-refresh-2"]);
}

/// The same on PostgreSQL: migration 0018 and the upsert of the newest token per chain.
#[cfg(feature = "postgres-tests")]
#[tokio::test]
async fn rotated_refresh_tokens_are_kept_per_chain_on_postgres() {
    let store = Store::open(&support::fresh_postgres_db().await)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotated_refresh_token("outreach", "chain-a")
            .await
            .unwrap(),
        None
    );
    store
        .keep_refresh_token("outreach", "chain-a", "t1")
        .await
        .unwrap();
    store
        .keep_refresh_token("outreach", "chain-a", "t2")
        .await
        .unwrap();
    assert_eq!(
        store
            .rotated_refresh_token("outreach", "chain-a")
            .await
            .unwrap()
            .as_deref(),
        Some("t2")
    );
    // A newly configured token starts another chain: the old one is not used for it.
    assert_eq!(
        store
            .rotated_refresh_token("outreach", "chain-b")
            .await
            .unwrap(),
        None
    );
}

// ---- HubSpot OAuth public app ----------------------------------------------------------------

#[tokio::test]
async fn a_hubspot_public_app_connects_with_an_authorization_code_then_refreshes() {
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .respond_with(|r: &Request| {
            let f = form(&r.body);
            let ok = f.get("client_id").map(String::as_str) == Some("hs-client")
                && f.get("client_secret").map(String::as_str) == Some("hs-secret");
            match (ok, f.get("grant_type").map(String::as_str)) {
                (true, Some("authorization_code"))
                    if f.get("code").map(String::as_str) == Some("code-1")
                        && f.get("redirect_uri").map(String::as_str) == Some("https://ops.example.com/cb") =>
                {
                    ResponseTemplate::new(200).set_body_json(json!({"token_type": "bearer",
                        "refresh_token": "hs-refresh-1", "access_token": "hs-access-1", "expires_in": 1800}))
                }
                (true, Some("refresh_token")) if f.get("refresh_token").map(String::as_str) == Some("hs-refresh-1") => {
                    ResponseTemplate::new(200).set_body_json(json!({"token_type": "bearer",
                        "refresh_token": "hs-refresh-1", "access_token": "hs-access-2", "expires_in": 1800}))
                }
                _ => ResponseTemplate::new(400).set_body_json(json!({"status": "BAD_AUTH_CODE",
                    "message": "missing or unknown auth code"})),
            }
        })
        .mount(&crm)
        .await;
    Mock::given(method("POST"))
        .and(path(COMPANIES))
        .and(wiremock::matchers::header(
            "authorization",
            "Bearer hs-access-2",
        ))
        .respond_with(hubspot_companies)
        .mount(&crm)
        .await;
    let cfg = format!(
        "[providers.hubspot]\napi_key = \"hs-client\"\napi_secret = \"hs-secret\"\ntoken_url = \"{url}/oauth/v1/token\"\nbase_url = \"{url}\"\n",
        url = crm.uri()
    );
    let w = poll_world(&cfg).await;
    // A wrong code is refused with what to do.
    let err = leadgate::crm::tokens::connect(
        &w.crm,
        &w.store,
        "hubspot",
        "stale",
        "https://ops.example.com/cb",
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("authorization code") && err.contains("HTTP 400"),
        "{err}"
    );
    leadgate::crm::tokens::connect(
        &w.crm,
        &w.store,
        "hubspot",
        "code-1",
        "https://ops.example.com/cb",
    )
    .await
    .unwrap();

    // `serve` later: a new process finds the refresh token in the store and refreshes with it.
    let store = Store::open(&format!("sqlite://{}", w.db.display()))
        .await
        .unwrap();
    let crm2 = Crm::build(&w.settings).unwrap().unwrap();
    leadgate::crm::tokens::keep_rotated_tokens(&crm2, &store)
        .await
        .unwrap();
    let hubspot = crm2.connector("hubspot").unwrap();
    let vars = std::collections::BTreeMap::from([("term", json!("acme.com"))]);
    let reply = hubspot.call("find_account", &vars).await.unwrap();
    assert!(reply.found, "{reply:?}");
}
