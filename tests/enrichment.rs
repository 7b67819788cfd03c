//! The enrichment engine against local mock servers that answer like each vendor
//! (reference/connector-wire-formats.md §4): the shipped manifests, the waterfall, fallbacks
//! on every fault, cache and coalescing, limiter, breaker, budgets, parking, and a manifest
//! written inside a test. Every server is a wiremock on 127.0.0.1; nothing else is called.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use leadgate::enrich::report::{Catalog, ConnectorReport};
use leadgate::enrich::{build, Waterfall};
use leadgate::lead::{EnrichedLead, ProviderAttempt, ProviderOutcome, RawLead};
use leadgate::normalize::Normalizer;
use leadgate::settings::Settings;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A waterfall built exactly as `leadgate` builds it, from a config written to a temp dir.
struct Setup {
    _dir: tempfile::TempDir,
    waterfall: Waterfall,
    catalog: Catalog,
}

impl Setup {
    /// `enrichment` goes under `[enrichment]` after the waterfall; `providers` after that.
    fn new(waterfall: &[&str], enrichment: &str, providers: &str) -> Self {
        Self::with_connectors(&root().join("connectors"), waterfall, enrichment, providers)
    }

    fn with_connectors(
        connectors: &Path,
        waterfall: &[&str],
        enrichment: &str,
        providers: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "connectors = {connectors:?}\n[cache]\nttl = \"1h\"\nnegative_ttl = \"10m\"\n[enrichment]\nwaterfall = {waterfall:?}\n{enrichment}\n{providers}\n"
        );
        let file = dir.path().join("leadgate.toml");
        std::fs::write(&file, text).unwrap();
        let settings = Settings::load_with_env(&file, Default::default()).unwrap();
        let built = build::providers(&settings).unwrap_or_else(|e| panic!("{e:?}"));
        let stop_when = settings.config.enrichment.stop_when.clone();
        Self {
            _dir: dir,
            waterfall: Waterfall::new(built.providers, stop_when, Default::default())
                .with_validation(built.validation),
            catalog: built.catalog,
        }
    }

    async fn enrich(&self, email: &str) -> EnrichedLead {
        let raw = RawLead(json!({ "email": email }).as_object().unwrap().clone());
        let lead = Normalizer::default().normalize(&raw).unwrap();
        self.waterfall.enrich(lead, Utc::now()).await
    }

    fn report(&self, id: &str) -> ConnectorReport {
        self.catalog
            .report(&self.waterfall)
            .into_iter()
            .find(|r| r.id == id)
            .unwrap()
    }
}

/// `[providers.ID]` pointing at a mock, with a key and extra settings.
fn provider(id: &str, base: &str, extra: &str) -> String {
    format!("[providers.{id}]\napi_key = \"test_key_{id}\"\nbase_url = \"{base}\"\n{extra}\n")
}

fn line<'a>(e: &'a EnrichedLead, provider: &str) -> &'a ProviderAttempt {
    e.enrichment
        .providers
        .iter()
        .find(|p| p.provider == provider)
        .unwrap_or_else(|| panic!("{provider} not in {:?}", e.enrichment.providers))
}

fn reason(e: &EnrichedLead, provider: &str) -> String {
    line(e, provider).reason.clone().unwrap_or_default()
}

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

fn json_response(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

// ---------------------------------------------------------------------------------------
// Vendor fixtures: bodies shaped as in the reference
// ---------------------------------------------------------------------------------------

fn clearbit_company(domain: &str) -> Value {
    json!({
        "id": "3f5d6a4e-c284-4f78-bfdf-7669b45af907", "name": "Acme", "legalName": "Acme Inc.",
        "domain": domain, "domainAliases": [], "foundedYear": 2011, "type": "private",
        "category": {"sector": "Information Technology", "industryGroup": "Software & Services",
                     "industry": "Software", "subIndustry": "Application Software",
                     "sicCode": "73", "naicsCode": "51"},
        "geo": {"city": "San Francisco", "state": "California", "stateCode": "CA",
                "country": "United States", "countryCode": "US"},
        "metrics": {"employees": 250, "employeesRange": "251-1K",
                    "estimatedAnnualRevenue": "$10M-$50M", "annualRevenue": null, "raised": 12000000},
        "tech": ["salesforce", "hubspot", "google_analytics"],
        "logo": "https://logo.clearbit.com/acme.io"
    })
}

fn pdl_company(domain: &str, likelihood: u8) -> Value {
    json!({
        "status": 200, "likelihood": likelihood,
        "id": "tnHcNHbCv8MKeLh92946LAkX6PKg", "name": "acme", "display_name": "Acme",
        "website": domain, "size": "51-200", "employee_count": 83, "founded": 2015,
        "industry": "computer software", "industry_v2": "software development",
        "location": {"name": "london, england, united kingdom", "locality": "london",
                     "region": "england", "country": "united kingdom", "continent": "europe"},
        "inferred_revenue": "$50M-$100M", "total_funding_raised": 25000000,
        "latest_funding_stage": "series_b", "type": "private", "tags": []
    })
}

/// PDL's answer naming the company whose `website` the request asked for.
fn pdl_company_asked_for(r: &Request) -> ResponseTemplate {
    let site = r
        .url
        .query_pairs()
        .find(|(k, _)| k == "website")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    json_response(200, pdl_company(&site, 9))
}

fn pdl_not_found() -> ResponseTemplate {
    json_response(
        404,
        json!({"status": 404, "error": {"type": "not_found", "message": "No records were found matching your request"}}),
    )
}

fn apollo_org(domain: &str) -> Value {
    json!({"organization": {
        "id": "5e66b6381e05b4008c8331b8", "name": "Acme", "website_url": format!("http://www.{domain}"),
        "primary_domain": domain, "industry": "information technology & services",
        "estimated_num_employees": 420, "annual_revenue": 52000000.0, "annual_revenue_printed": "52M",
        "total_funding": 30000000, "latest_funding_stage": "Series B", "founded_year": 2009,
        "city": "Austin", "state": "Texas", "country": "United States",
        "technology_names": ["Salesforce", "Outreach"]
    }})
}

fn hunter_domain_search(domain: &str) -> Value {
    json!({"data": {
        "domain": domain, "organization": "Acme", "pattern": "{first}", "webmail": false,
        "disposable": false, "accept_all": false,
        "emails": [
            {"value": format!("bo@{domain}"), "type": "personal", "confidence": 91, "first_name": "Bo",
             "last_name": "Diaz", "position": "CFO", "seniority": "executive", "department": "finance",
             "sources": [], "verification": {"date": null, "status": null}},
            {"value": format!("ada@{domain}"), "type": "personal", "confidence": 97, "first_name": "Ada",
             "last_name": "Lovelace", "position": "VP Sales", "seniority": "executive", "department": "sales",
             "sources": [], "verification": {"date": "2026-10-01", "status": "valid"}}
        ]},
        "meta": {"results": 2, "limit": 10, "offset": 0, "params": {"domain": domain}}})
}

// ---------------------------------------------------------------------------------------
// Each vendor's happy path through its shipped manifest
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn clearbit_hit_maps_the_company_and_sends_the_bearer_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/companies/find"))
        .and(query_param("domain", "acme.io"))
        .and(header("authorization", "Bearer test_key_clearbit"))
        .respond_with(json_response(200, clearbit_company("acme.io")))
        .expect(1)
        .mount(&server)
        .await;
    let s = Setup::new(&["clearbit"], "", &provider("clearbit", &server.uri(), ""));
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Hit);
    let f = &e.enrichment.fields;
    assert_eq!(f["company.industry"].value, json!("Software"));
    assert_eq!(f["company.industry"].provider, "clearbit");
    assert_eq!(f["company.employees"].value, json!(250));
    assert_eq!(f["company.revenue"].value, json!(10_000_000));
    assert_eq!(f["company.country"].value, json!("US"));
    assert_eq!(
        f["company.tech"].value,
        json!(["salesforce", "hubspot", "google_analytics"])
    );
    assert_eq!(f["company.funding_total"].value, json!(12_000_000));
}

#[tokio::test]
async fn pdl_likelihood_becomes_the_confidence() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v5/company/enrich"))
        .and(query_param("website", "acme.io"))
        .and(header("x-api-key", "test_key_peopledatalabs"))
        .respond_with(json_response(200, pdl_company("acme.io", 8)))
        .mount(&server)
        .await;
    let base = format!("{}/v5", server.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, ""),
    );
    let e = s.enrich("ada@acme.io").await;
    let industry = &e.enrichment.fields["company.industry"];
    // PDL's "computer software", in the words the shipped scoring rules use.
    assert_eq!(industry.value, json!("Software"));
    assert_eq!(industry.confidence, Some(0.8));
    assert_eq!(e.enrichment.fields["company.country"].value, json!("GB"));
    assert_eq!(
        e.enrichment.fields["company.revenue"].value,
        json!(50_000_000)
    );
}

#[tokio::test]
async fn apollo_null_organization_is_a_miss_and_a_record_is_a_hit() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/organizations/enrich"))
        .and(query_param("domain", "nobody.io"))
        .respond_with(json_response(200, json!({"organization": null})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/organizations/enrich"))
        .and(query_param("domain", "acme.io"))
        .and(header("x-api-key", "test_key_apollo"))
        .respond_with(json_response(200, apollo_org("acme.io")))
        .mount(&server)
        .await;
    let base = format!("{}/api/v1", server.uri());
    let s = Setup::new(&["apollo"], "", &provider("apollo", &base, ""));
    let miss = s.enrich("ada@nobody.io").await;
    assert_eq!(line(&miss, "apollo").outcome, ProviderOutcome::NotFound);
    let hit = s.enrich("ada@acme.io").await;
    assert_eq!(line(&hit, "apollo").outcome, ProviderOutcome::Hit);
    assert_eq!(hit.enrichment.fields["company.employees"].value, json!(420));
    assert_eq!(hit.enrichment.fields["company.country"].value, json!("US"));
    assert_eq!(
        hit.enrichment.fields["company.tech"].value,
        json!(["Salesforce", "Outreach"])
    );
}

#[tokio::test]
async fn hunter_domain_search_fills_the_leads_own_person_fields() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/domain-search"))
        .and(query_param("domain", "acme.io"))
        .and(query_param("api_key", "test_key_hunter"))
        .respond_with(json_response(200, hunter_domain_search("acme.io")))
        .expect(1)
        .mount(&server)
        .await;
    let base = format!("{}/v2", server.uri());
    let s = Setup::new(&["hunter"], "", &provider("hunter", &base, ""));
    let ada = s.enrich("ada@acme.io").await;
    assert_eq!(
        ada.enrichment.fields["person.title"].value,
        json!("VP Sales")
    );
    assert_eq!(
        ada.enrichment.fields["person.department"].value,
        json!("sales")
    );
    // Bo's lead is answered from the same cached domain search, with Bo's row.
    let bo = s.enrich("bo@acme.io").await;
    assert!(line(&bo, "hunter").cached);
    assert_eq!(bo.enrichment.fields["person.title"].value, json!("CFO"));
}

// ---------------------------------------------------------------------------------------
// Waterfall order and fallbacks on each fault
// ---------------------------------------------------------------------------------------

/// clearbit first, PDL as the fallback that answers.
async fn clearbit_then_pdl(
    clearbit_answer: ResponseTemplate,
    clearbit_extra: &str,
) -> (MockServer, MockServer, Setup) {
    let cb = MockServer::start().await;
    Mock::given(path("/v2/companies/find"))
        .respond_with(clearbit_answer)
        .mount(&cb)
        .await;
    let pdl = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(move |r: &Request| {
            let site = r
                .url
                .query_pairs()
                .find(|(k, _)| k == "website")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default();
            json_response(200, pdl_company(&site, 9))
        })
        .mount(&pdl)
        .await;
    let providers = provider("clearbit", &cb.uri(), clearbit_extra)
        + &provider("peopledatalabs", &format!("{}/v5", pdl.uri()), "");
    let s = Setup::new(
        &["clearbit", "peopledatalabs"],
        "stop_when = [\"company.industry\"]",
        &providers,
    );
    (cb, pdl, s)
}

#[tokio::test]
async fn waterfall_asks_in_order_and_stops_when_the_fields_are_filled() {
    let (cb, pdl, s) = clearbit_then_pdl(json_response(200, clearbit_company("acme.io")), "").await;
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Hit);
    let skipped = line(&e, "peopledatalabs");
    assert_eq!(skipped.outcome, ProviderOutcome::Skipped);
    assert!(
        skipped.reason.as_deref().unwrap().starts_with("stop_when"),
        "{skipped:?}"
    );
    assert_eq!(calls(&cb).await, 1);
    assert_eq!(calls(&pdl).await, 0);
}

#[tokio::test]
async fn falls_back_when_clearbit_returns_500_after_bounded_retries() {
    let (cb, _pdl, s) = clearbit_then_pdl(ResponseTemplate::new(500), "").await;
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Error);
    assert!(
        reason(&e, "clearbit").starts_with("upstream"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(
        calls(&cb).await,
        3,
        "3 attempts in all, as the manifest says"
    );
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
}

#[tokio::test]
async fn falls_back_when_clearbit_says_202_pending_and_does_not_cache_it() {
    let (cb, _pdl, s) = clearbit_then_pdl(ResponseTemplate::new(202), "").await;
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Pending);
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
    let again = s.enrich("ada@acme.io").await;
    assert!(!line(&again, "clearbit").cached);
    assert_eq!(calls(&cb).await, 2, "a pending answer is asked again");
}

#[tokio::test]
async fn falls_back_on_401_without_retrying() {
    let body = json!({"error": {"type": "auth", "message": "Invalid API key"}});
    let (cb, _pdl, s) = clearbit_then_pdl(json_response(401, body), "").await;
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Error);
    let why = reason(&e, "clearbit");
    assert!(
        why.starts_with("auth_failed") && why.contains("api_key"),
        "{why}"
    );
    assert!(
        !why.contains("test_key"),
        "a secret leaked into the record: {why}"
    );
    assert_eq!(calls(&cb).await, 1);
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
}

#[tokio::test]
async fn falls_back_on_422_invalid_domain_without_retrying() {
    let (cb, _pdl, s) = clearbit_then_pdl(
        json_response(
            422,
            json!({"error": {"type": "domain_invalid", "message": "Invalid domain"}}),
        ),
        "",
    )
    .await;
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "clearbit").starts_with("invalid"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(calls(&cb).await, 1);
    assert!(e.enrichment.fields.contains_key("company.industry"));
}

#[tokio::test]
async fn falls_back_when_clearbit_is_slow() {
    let slow = json_response(200, clearbit_company("acme.io")).set_delay(Duration::from_secs(5));
    let (_cb, _pdl, s) = clearbit_then_pdl(slow, "timeout = \"150ms\"").await;
    let started = Instant::now();
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "clearbit").starts_with("timeout"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn falls_back_on_malformed_json() {
    let garbage =
        ResponseTemplate::new(200).set_body_raw("{\"name\": \"Acme\", \"metr", "application/json");
    let (cb, _pdl, s) = clearbit_then_pdl(garbage, "").await;
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "clearbit").starts_with("bad_response"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(calls(&cb).await, 1, "garbage is not retried");
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
}

#[tokio::test]
async fn falls_back_when_the_returned_domain_is_not_the_leads() {
    let (_cb, _pdl, s) =
        clearbit_then_pdl(json_response(200, clearbit_company("someone-else.com")), "").await;
    let e = s.enrich("ada@acme.io").await;
    let cb = line(&e, "clearbit");
    assert_eq!(cb.outcome, ProviderOutcome::NotFound);
    assert!(
        cb.reason.as_deref().unwrap().contains("does not match"),
        "{cb:?}"
    );
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
}

#[tokio::test]
async fn falls_back_when_a_required_field_is_missing() {
    let mut thin = clearbit_company("acme.io");
    thin["category"] = json!(null);
    let (_cb, _pdl, s) = clearbit_then_pdl(
        json_response(200, thin),
        "required_fields = [\"company.industry\"]",
    )
    .await;
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "clearbit").contains("company.industry"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(
        e.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let moved =
        ResponseTemplate::new(301).insert_header("location", "http://127.0.0.1:9/elsewhere");
    let (cb, _pdl, s) = clearbit_then_pdl(moved, "").await;
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "clearbit").starts_with("redirect"),
        "{}",
        reason(&e, "clearbit")
    );
    assert_eq!(calls(&cb).await, 1);
}

#[tokio::test]
async fn pdl_low_likelihood_is_a_miss_under_min_confidence() {
    let pdl = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(json_response(200, pdl_company("acme.io", 4)))
        .mount(&pdl)
        .await;
    let base = format!("{}/v5", pdl.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, "min_confidence = 0.6"),
    );
    let e = s.enrich("ada@acme.io").await;
    let l = line(&e, "peopledatalabs");
    assert_eq!(l.outcome, ProviderOutcome::NotFound);
    assert!(
        l.reason.as_deref().unwrap().contains("confidence 0.40"),
        "{l:?}"
    );
    assert!(e.enrichment.fields.is_empty());
}

// ---------------------------------------------------------------------------------------
// Slow down vs out of budget
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn pdl_429_waits_for_retry_after_then_succeeds() {
    let pdl = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(
            json_response(
                429,
                json!({"status": 429, "error": {"type": "rate_limit_error",
                "message": "An error occurred due to requests hitting the API too quick"}}),
            )
            .insert_header("retry-after", "1"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&pdl)
        .await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(json_response(200, pdl_company("acme.io", 9)))
        .with_priority(2)
        .mount(&pdl)
        .await;
    let base = format!("{}/v5", pdl.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, ""),
    );
    let started = Instant::now();
    let e = s.enrich("ada@acme.io").await;
    assert_eq!(line(&e, "peopledatalabs").outcome, ProviderOutcome::Hit);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(calls(&pdl).await, 2);
    assert_eq!(s.report("peopledatalabs").status.rate_limited, 1);
}

#[tokio::test]
async fn a_long_retry_after_skips_the_provider_instead_of_stalling_the_lead() {
    let (cb, _pdl, s) = clearbit_then_pdl(
        ResponseTemplate::new(429).insert_header("retry-after", "3600"),
        "",
    )
    .await;
    let first = s.enrich("ada@acme.io").await;
    assert!(
        reason(&first, "clearbit").starts_with("rate_limited"),
        "{}",
        reason(&first, "clearbit")
    );
    assert_eq!(
        first.enrichment.fields["company.industry"].provider,
        "peopledatalabs"
    );
    // The limiter is paused for an hour: the next lead skips Clearbit without calling it.
    let second = s.enrich("bo@beta.io").await;
    let l = line(&second, "clearbit");
    assert_eq!(l.outcome, ProviderOutcome::Skipped);
    assert!(
        l.reason.as_deref().unwrap().starts_with("rate_limited"),
        "{l:?}"
    );
    assert_eq!(calls(&cb).await, 1);
}

#[tokio::test]
async fn pdl_402_parks_the_provider_until_its_quota_resets() {
    let pdl = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(json_response(402, json!({"status": 402, "error": {"type": "payment_required",
            "message": "You have hit your account maximum for company enrichment (all matches used)"}})))
        .mount(&pdl)
        .await;
    let base = format!("{}/v5", pdl.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, ""),
    );
    let first = s.enrich("ada@acme.io").await;
    assert!(
        reason(&first, "peopledatalabs").starts_with("quota_exhausted"),
        "{}",
        reason(&first, "peopledatalabs")
    );
    let second = s.enrich("bo@beta.io").await;
    let l = line(&second, "peopledatalabs");
    assert_eq!(l.outcome, ProviderOutcome::Skipped);
    assert!(
        l.reason.as_deref().unwrap().starts_with("budget")
            && l.reason.as_deref().unwrap().contains("parked until"),
        "{l:?}"
    );
    assert_eq!(
        calls(&pdl).await,
        1,
        "402 is not retried, and a parked provider is not called"
    );
    assert!(s.report("peopledatalabs").status.parked_until.is_some());
}

#[tokio::test]
async fn apollo_422_insufficient_credits_parks_but_another_422_is_only_invalid() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/organizations/enrich"))
        .and(query_param("domain", "bad-domain.io"))
        .respond_with(json_response(422, json!({"error": "Invalid domain"})))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/organizations/enrich"))
        .and(query_param("domain", "acme.io"))
        .respond_with(json_response(
            422,
            json!({"error": "Insufficient credits. Please upgrade your plan."}),
        ))
        .mount(&server)
        .await;
    let base = format!("{}/api/v1", server.uri());
    let s = Setup::new(&["apollo"], "", &provider("apollo", &base, ""));
    let invalid = s.enrich("ada@bad-domain.io").await;
    assert!(
        reason(&invalid, "apollo").starts_with("invalid"),
        "{}",
        reason(&invalid, "apollo")
    );
    assert!(s.report("apollo").status.parked_until.is_none());
    let credits = s.enrich("ada@acme.io").await;
    assert!(
        reason(&credits, "apollo").starts_with("quota_exhausted"),
        "{}",
        reason(&credits, "apollo")
    );
    assert!(s.report("apollo").status.parked_until.is_some());
}

#[tokio::test]
async fn apollo_429_with_an_empty_day_is_quota_not_rate() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/organizations/enrich"))
        .respond_with(
            json_response(429, json!({"message": "The maximum number of api calls allowed for api/v1/organizations/enrich is 2000 times per day.",
                "error_details": {"code": "USAGE.RATE_LIMIT.API_RATE_LIMIT_EXCEEDED"}}))
            .insert_header("x-24-hour-requests-left", "0")
            .insert_header("x-minute-requests-left", "150"),
        )
        .mount(&server)
        .await;
    let base = format!("{}/api/v1", server.uri());
    let s = Setup::new(&["apollo"], "", &provider("apollo", &base, ""));
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "apollo").starts_with("quota_exhausted"),
        "{}",
        reason(&e, "apollo")
    );
    assert_eq!(calls(&server).await, 1, "an empty day is not retried");
}

#[tokio::test]
async fn hunter_403_is_slow_down_and_429_is_monthly_quota() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/domain-search"))
        .and(query_param("domain", "slow.io"))
        .respond_with(json_response(403, json!({"errors": [{"id": "too_many_requests", "code": 403, "details": "You have reached the rate limit"}]})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/domain-search"))
        .and(query_param("domain", "acme.io"))
        .respond_with(json_response(429, json!({"errors": [{"id": "too_many_requests", "code": 429, "details": "You have reached your usage limit"}]})))
        .mount(&server)
        .await;
    let base = format!("{}/v2", server.uri());
    let s = Setup::new(&["hunter"], "", &provider("hunter", &base, ""));
    let slow = s.enrich("ada@slow.io").await;
    assert!(
        reason(&slow, "hunter").starts_with("rate_limited"),
        "{}",
        reason(&slow, "hunter")
    );
    assert_eq!(calls(&server).await, 3, "a rate limit is retried");
    assert!(s.report("hunter").status.parked_until.is_none());
    let quota = s.enrich("ada@acme.io").await;
    assert!(
        reason(&quota, "hunter").starts_with("quota_exhausted"),
        "{}",
        reason(&quota, "hunter")
    );
    assert_eq!(calls(&server).await, 4, "exhausted quota is not retried");
    assert!(s.report("hunter").status.parked_until.is_some());
}

// ---------------------------------------------------------------------------------------
// Cache and coalescing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn coalescing_100_concurrent_leads_of_one_domain_make_one_upstream_call() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/companies/find"))
        .respond_with(
            json_response(200, clearbit_company("acme.io")).set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let s = Setup::new(&["clearbit"], "", &provider("clearbit", &server.uri(), ""));
    let emails: Vec<String> = (0..100).map(|i| format!("person{i}@acme.io")).collect();
    let all = futures::future::join_all(emails.iter().map(|e| s.enrich(e))).await;
    assert_eq!(calls(&server).await, 1);
    assert!(all
        .iter()
        .all(|e| e.enrichment.fields["company.industry"].value == json!("Software")));
    assert_eq!(
        all.iter().filter(|e| line(e, "clearbit").cached).count(),
        99
    );
    let r = s.report("clearbit").status;
    assert_eq!((r.calls, r.hits, r.cache_hits), (1, 100, 99));
}

#[tokio::test]
async fn not_found_is_cached_for_the_negative_ttl_only() {
    let pdl = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(pdl_not_found())
        .mount(&pdl)
        .await;
    let base = format!("{}/v5", pdl.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, ""),
    );
    let first = s.enrich("ada@ghost.io").await;
    assert_eq!(
        line(&first, "peopledatalabs").outcome,
        ProviderOutcome::NotFound
    );
    let second = s.enrich("bo@ghost.io").await;
    assert!(line(&second, "peopledatalabs").cached);
    assert_eq!(calls(&pdl).await, 1);
    // Past the 10-minute negative TTL (the positive one is an hour), it is asked again.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    tokio::time::resume();
    let third = s.enrich("cy@ghost.io").await;
    assert!(!line(&third, "peopledatalabs").cached);
    assert_eq!(calls(&pdl).await, 2);
    assert_eq!(
        s.report("peopledatalabs").status.credits_used_today,
        0.0,
        "PDL 404s are free"
    );
}

#[tokio::test]
async fn a_found_record_outlives_the_negative_ttl() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/companies/find"))
        .respond_with(json_response(200, clearbit_company("acme.io")))
        .mount(&server)
        .await;
    let s = Setup::new(&["clearbit"], "", &provider("clearbit", &server.uri(), ""));
    s.enrich("ada@acme.io").await;
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(11 * 60)).await;
    tokio::time::resume();
    assert!(line(&s.enrich("bo@acme.io").await, "clearbit").cached);
    assert_eq!(calls(&server).await, 1);
}

// ---------------------------------------------------------------------------------------
// Limiter, breaker, budget
// ---------------------------------------------------------------------------------------

/// A vendor that counts arrivals in a sliding window and answers 429 past its quota.
#[derive(Clone)]
struct StrictVendor {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    quota: usize,
    window: Duration,
}

impl Respond for StrictVendor {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut a = self.arrivals.lock().unwrap();
        a.push(now);
        let in_window = a
            .iter()
            .filter(|t| now.duration_since(**t) < self.window)
            .count();
        if in_window > self.quota {
            return ResponseTemplate::new(429).insert_header("retry-after", "1");
        }
        let domain = r
            .url
            .query_pairs()
            .find(|(k, _)| k == "domain")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        json_response(200, clearbit_company(&domain))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_never_exceeds_the_quota_in_any_window() {
    let vendor = StrictVendor {
        arrivals: Arc::default(),
        quota: 20,
        window: Duration::from_secs(1),
    };
    let server = MockServer::start().await;
    Mock::given(path("/v2/companies/find"))
        .respond_with(vendor.clone())
        .mount(&server)
        .await;
    let s = Arc::new(Setup::new(
        &["clearbit"],
        "",
        &provider("clearbit", &server.uri(), "rate_limit_per_second = 20"),
    ));
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.enrich(&format!("ada@company{i}.io")).await })
        })
        .collect();
    for t in tasks {
        let e = t.await.unwrap();
        assert_eq!(
            line(&e, "clearbit").outcome,
            ProviderOutcome::Hit,
            "{:?}",
            e.enrichment.providers
        );
    }
    let arrivals = vendor.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 50, "no 429, so no retries");
    for (i, t) in arrivals.iter().enumerate() {
        let n = arrivals[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(n <= 20, "{n} requests within a second");
    }
    // Waiting, not failing: 50 requests at 20/s take about 2.5 s.
    assert!(
        started.elapsed() >= Duration::from_millis(2300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.report("clearbit").status.rate_limited, 0);
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures() {
    let (cb, _pdl, s) = clearbit_then_pdl(ResponseTemplate::new(503), "").await;
    for i in 0..5 {
        let e = s.enrich(&format!("ada@down{i}.io")).await;
        assert_eq!(line(&e, "clearbit").outcome, ProviderOutcome::Error);
    }
    assert_eq!(calls(&cb).await, 15, "5 leads × 3 attempts");
    let e = s.enrich("ada@down5.io").await;
    let l = line(&e, "clearbit");
    assert_eq!(l.outcome, ProviderOutcome::Skipped);
    assert!(
        l.reason.as_deref().unwrap().starts_with("circuit_open"),
        "{l:?}"
    );
    assert_eq!(calls(&cb).await, 15, "an open circuit calls nobody");
    assert!(
        e.enrichment.fields.contains_key("company.industry"),
        "the lead still gets enriched by PDL"
    );
    assert_eq!(
        s.report("clearbit").status.circuit,
        Some(leadgate::resilience::breaker::CircuitState::Open)
    );
}

#[tokio::test]
async fn the_daily_budget_skips_the_provider_once_spent() {
    let server = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .and(query_param("website", "ghost.io"))
        .respond_with(pdl_not_found())
        .mount(&server)
        .await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(pdl_company_asked_for)
        .mount(&server)
        .await;
    let base = format!("{}/v5", server.uri());
    let s = Setup::new(
        &["peopledatalabs"],
        "",
        &provider("peopledatalabs", &base, "daily_budget = 2"),
    );
    assert_eq!(
        line(&s.enrich("a@one.io").await, "peopledatalabs").outcome,
        ProviderOutcome::Hit
    );
    // A 404 is not billed by PDL, so it does not spend the budget.
    assert_eq!(
        line(&s.enrich("a@ghost.io").await, "peopledatalabs").outcome,
        ProviderOutcome::NotFound
    );
    assert_eq!(
        line(&s.enrich("a@two.io").await, "peopledatalabs").outcome,
        ProviderOutcome::Hit
    );
    let spent = s.enrich("a@three.io").await;
    let l = line(&spent, "peopledatalabs");
    assert_eq!(l.outcome, ProviderOutcome::Skipped);
    assert!(l.reason.as_deref().unwrap().starts_with("budget"), "{l:?}");
    assert_eq!(calls(&server).await, 3);
    let r = s.report("peopledatalabs").status;
    assert_eq!((r.credits_used_today, r.daily_budget), (2.0, Some(2.0)));
    // Cached answers cost nothing, even with the budget spent.
    assert!(line(&s.enrich("b@one.io").await, "peopledatalabs").cached);
}

/// A daily budget spent by one process stays spent for the next: the store keeps each
/// provider's credits per day (`provider_usage`), a new process starts from them, and two
/// processes on one store add up.
#[tokio::test]
async fn a_restart_does_not_begin_the_days_budget_again() {
    let server = MockServer::start().await;
    Mock::given(path("/v5/company/enrich"))
        .respond_with(pdl_company_asked_for)
        .mount(&server)
        .await;
    let base = format!("{}/v5", server.uri());
    let dir = tempfile::tempdir().unwrap();
    let store = leadgate::store::Store::open(&format!(
        "sqlite://{}",
        dir.path().join("leadgate.db").display()
    ))
    .await
    .unwrap();
    let process = || {
        Setup::new(
            &["peopledatalabs"],
            "",
            &provider("peopledatalabs", &base, "daily_budget = 3"),
        )
    };
    use leadgate::enrich::usage::sync;

    let first = process();
    sync(&first.waterfall, &store).await.unwrap();
    for domain in ["one.io", "two.io"] {
        let e = first.enrich(&format!("a@{domain}")).await;
        assert_eq!(line(&e, "peopledatalabs").outcome, ProviderOutcome::Hit);
    }
    sync(&first.waterfall, &store).await.unwrap();
    sync(&first.waterfall, &store).await.unwrap(); // nothing new: nothing added twice

    // The restart: a new process on the same store.
    let second = process();
    sync(&second.waterfall, &store).await.unwrap();
    assert_eq!(
        second.report("peopledatalabs").status.credits_used_today,
        2.0
    );
    let e = second.enrich("a@three.io").await;
    assert_eq!(line(&e, "peopledatalabs").outcome, ProviderOutcome::Hit);
    let spent = second.enrich("a@four.io").await;
    let l = line(&spent, "peopledatalabs");
    assert_eq!(l.outcome, ProviderOutcome::Skipped);
    assert!(l.reason.as_deref().unwrap().starts_with("budget"), "{l:?}");
    assert_eq!(calls(&server).await, 3, "three credits, three paid calls");

    // The first process, still running, learns of the second's spending at its next sync.
    sync(&second.waterfall, &store).await.unwrap();
    sync(&first.waterfall, &store).await.unwrap();
    assert_eq!(
        first.report("peopledatalabs").status.credits_used_today,
        3.0
    );
    let today = Utc::now().date_naive().to_string();
    assert_eq!(
        store.provider_credits_on(&today).await.unwrap()["peopledatalabs"],
        3.0
    );
}

// ---------------------------------------------------------------------------------------
// Configuration: unconfigured providers, a manifest written here, URL-encoding, reports
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_shipped_config_runs_offline_and_skips_providers_without_keys() {
    let settings =
        Settings::load_with_env(&root().join("config/leadgate.toml"), Default::default()).unwrap();
    let built = build::providers(&settings).unwrap();
    let w = Waterfall::new(built.providers, vec![], Default::default())
        .with_validation(built.validation);
    let raw = RawLead(
        json!({"email": "someone@salesforce.com"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let lead = Normalizer::default().normalize(&raw).unwrap();
    let e = w.enrich(lead, Utc::now()).await;
    assert_eq!(line(&e, "local_file").outcome, ProviderOutcome::Hit);
    for id in ["clearbit", "peopledatalabs", "apollo", "hunter"] {
        let l = line(&e, id);
        assert_eq!(l.outcome, ProviderOutcome::Skipped, "{l:?}");
        assert!(
            l.reason.as_deref().unwrap().starts_with("not_configured"),
            "{l:?}"
        );
    }
    let reports = built.catalog.report(&w);
    let clearbit = reports.iter().find(|r| r.id == "clearbit").unwrap();
    assert!(!clearbit.status.configured);
    assert_eq!(clearbit.status.credentials_present, Some(false));
    assert_eq!(clearbit.status.rate_limit.as_deref(), Some("600/1m"));
    assert_eq!(reports[0].id, "local_file");
}

#[tokio::test]
async fn a_missing_key_variable_is_not_configured_not_a_startup_failure() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leadgate.toml");
    std::fs::write(
        &file,
        format!(
            "connectors = {:?}\n[enrichment]\nwaterfall = [\"clearbit\"]\n[providers.clearbit]\napi_key = \"${{LEADGATE_TEST_UNSET_KEY}}\"\n",
            root().join("connectors")
        ),
    )
    .unwrap();
    let settings = Settings::load_with_env(&file, Default::default()).unwrap();
    let built = build::providers(&settings).unwrap();
    let w = Waterfall::new(built.providers, vec![], Default::default());
    let raw = RawLead(json!({"email": "a@acme.io"}).as_object().unwrap().clone());
    let e = w
        .enrich(Normalizer::default().normalize(&raw).unwrap(), Utc::now())
        .await;
    let why = reason(&e, "clearbit");
    assert!(
        why.starts_with("not_configured") && why.contains("LEADGATE_TEST_UNSET_KEY"),
        "{why}"
    );
}

/// A vendor nobody has written code for: POST with a JSON body, a custom key header,
/// nested records, its own status codes.
const ACMEDATA: &str = r#"
version = 1
id = "acmedata"
kind = "enrichment"
name = "AcmeData firmographics"
base_url = "https://api.acmedata.example/v3"
timeout = "5s"
cost_per_call = 0.5

[auth]
kind = "api_key_header"
header = "X-AcmeData-Token"
prefix = "Token "

[rate_limit]
requests = 50
per = "10s"

[operations.lookup]
method = "POST"
path = "/firms/lookup"
body = { match = { domain = "{domain}", company = "{company}" }, fields = ["basic", "finance"] }
found_if = "$.result.firm"

[operations.lookup.status]
not_found = [204, 410]
rate_limited = [420]

[operations.lookup.confidence]
path = "$.result.score"
scale = 100

[operations.lookup.response]
"company.name" = "$.result.firm.legal_name"
"company.domain" = { path = "$.result.firm.web", as = "domain" }
"company.industry" = "$.result.firm.sector.label"
"company.employees" = { path = "$.result.firm.staff", as = "integer" }
"company.tech" = { path = "$.result.firm.stack[*].name", as = "list" }
"#;

#[tokio::test]
async fn a_manifest_written_in_the_test_works_without_code_changes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v3/firms/lookup"))
        .and(header("x-acmedata-token", "Token test_key_acmedata"))
        .and(wiremock::matchers::body_json(json!({"match": {"domain": "acme.io", "company": "Acme & Sons"}, "fields": ["basic", "finance"]})))
        .respond_with(json_response(200, json!({"result": {"score": 87, "firm": {
            "legal_name": "Acme & Sons Ltd", "web": "https://www.acme.io", "sector": {"label": "Manufacturing"},
            "staff": "1200", "stack": [{"name": "sap"}, {"name": "workday"}]}}})))
        .expect(1)
        .mount(&server)
        .await;
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(connectors.path().join("acmedata.toml"), ACMEDATA).unwrap();
    let base = format!("{}/v3", server.uri());
    let s = Setup::with_connectors(
        connectors.path(),
        &["acmedata"],
        "",
        &provider("acmedata", &base, "daily_budget = 10"),
    );
    let raw = RawLead(
        json!({"email": "ada@acme.io", "company": "Acme & Sons"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let lead = Normalizer::default().normalize(&raw).unwrap();
    let e = s.waterfall.enrich(lead, Utc::now()).await;
    assert_eq!(
        line(&e, "acmedata").outcome,
        ProviderOutcome::Hit,
        "{:?}",
        e.enrichment.providers
    );
    let f = &e.enrichment.fields;
    assert_eq!(f["company.industry"].value, json!("Manufacturing"));
    assert_eq!(f["company.employees"].value, json!(1200));
    assert_eq!(f["company.tech"].value, json!(["sap", "workday"]));
    assert_eq!(f["company.industry"].confidence, Some(0.87));
    let r = s.report("acmedata");
    assert_eq!(r.status.credits_used_today, 0.5);
    assert_eq!(r.status.rate_limit.as_deref(), Some("50/10s"));
}

const PATHY: &str = r#"
version = 1
id = "pathy"
kind = "enrichment"
base_url = "https://pathy.example"
[operations.find]
path = "/companies/{company}/profile"
query = { hint = "{company}" }
[operations.find.response]
"company.name" = "$.name"
"#;

/// Found by `cargo fuzz run manifest_template` (docs/scale-out.md, "Fuzzing"): a path whose
/// own text holds a stray `%2` before a placeholder let the lead value `e` complete `%2e`, a
/// dot segment, and the request left `/companies/`. Such a manifest is refused at load.
#[test]
fn a_manifest_path_with_a_stray_percent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pathy.toml");
    std::fs::write(
        &file,
        PATHY.replace(
            "/companies/{company}/profile",
            "/companies/.%2{company}/profile",
        ),
    )
    .unwrap();
    let issues = leadgate::connector::registry::load_file(&file).expect_err("refused");
    assert!(
        issues
            .iter()
            .any(|i| i.key == "operations.find.path" && i.reason.contains("percent-escape")),
        "{issues:?}"
    );
    std::fs::write(&file, PATHY).unwrap();
    assert!(leadgate::connector::registry::load_file(&file).is_ok());
}

#[tokio::test]
async fn lead_values_are_url_encoded_and_never_change_the_host_or_path() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json_response(200, json!({"name": "Evil"})))
        .mount(&server)
        .await;
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(connectors.path().join("pathy.toml"), PATHY).unwrap();
    let s = Setup::with_connectors(
        connectors.path(),
        &["pathy"],
        "",
        &format!("[providers.pathy]\nbase_url = \"{}\"\n", server.uri()),
    );
    let evil = "../../admin?x=1&y=@evil.example#frag";
    let raw = RawLead(
        json!({"email": "ada@acme.io", "company": evil})
            .as_object()
            .unwrap()
            .clone(),
    );
    let lead = Normalizer::default().normalize(&raw).unwrap();
    s.waterfall.enrich(lead, Utc::now()).await;
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let url = &requests[0].url;
    // It arrived here (the one configured host), with the value inside one path segment.
    assert_eq!(
        url.path(),
        "/companies/..%2F..%2Fadmin%3Fx%3D1%26y%3D%40evil.example%23frag/profile"
    );
    assert_eq!(
        url.query_pairs()
            .find(|(k, _)| k == "hint")
            .map(|(_, v)| v.to_string())
            .as_deref(),
        Some(evil)
    );
}

#[tokio::test]
async fn a_provider_without_the_leads_lookup_key_is_skipped() {
    let server = MockServer::start().await;
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(connectors.path().join("pathy.toml"), PATHY).unwrap();
    let s = Setup::with_connectors(
        connectors.path(),
        &["pathy"],
        "",
        &format!("[providers.pathy]\nbase_url = \"{}\"\n", server.uri()),
    );
    let e = s.enrich("ada@acme.io").await;
    assert!(
        reason(&e, "pathy").starts_with("no_input"),
        "{}",
        reason(&e, "pathy")
    );
    assert_eq!(calls(&server).await, 0);
}

#[test]
fn a_broken_manifest_is_reported_with_file_line_and_key() {
    let connectors = tempfile::tempdir().unwrap();
    std::fs::write(
        connectors.path().join("broken.toml"),
        ACMEDATA.replace("timeout = \"5s\"", "timeout = \"5s\"\nretries = 3"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leadgate.toml");
    std::fs::write(
        &file,
        format!(
            "connectors = {:?}\n[enrichment]\nwaterfall = [\"acmedata\"]\n",
            connectors.path()
        ),
    )
    .unwrap();
    let settings = Settings::load_with_env(&file, Default::default()).unwrap();
    let issues = build::providers(&settings).err().unwrap();
    let text = issues
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("broken.toml:8"), "{text}");
    assert!(text.contains("retries"), "{text}");
}
