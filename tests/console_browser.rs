//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver (fantoccini) against a daemon on 127.0.0.1 with a temp SQLite
//! file: sign in, filter the leads table, open a lead, resolve a review item, pause a pool
//! member — asserting on the page and on the store. Writes the screenshots in
//! docs/screenshots/. Fails, never skips, when Chromium or chromedriver is missing.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const TOKEN: &str = "console-admin-token";

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver() -> Driver {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("open a Chromium session through chromedriver")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// The element, once the page that has it is loaded: a click that navigates returns before
/// the next page is there.
async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.find(Locator::Css(css)).await {
            Ok(e) => return e,
            Err(e) if Instant::now() > deadline => panic!("{css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A click that submits a form returns before the next page has loaded: wait for its path.
async fn wait_for_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = c.current_url().await.unwrap();
        if now.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still at {now} instead of {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let e = find(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.unwrap();
}

async fn post_lead(http: &reqwest::Client, d: &Daemon, lead: Value) -> String {
    let res = http
        .post(d.url("/v1/leads"))
        .json(&lead)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_admin_signs_in_filters_opens_a_lead_resolves_a_review_item_and_pauses_a_member() {
    let driver = start_driver();
    let (dir, db) = temp_db();
    let d = Daemon::start(
        &db,
        2,
        &[
            ("LEADGATE__SERVER__API_TOKENS", TOKEN),
            ("LEADGATE__SERVER__PII_TOKENS", TOKEN),
        ],
    );
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let student = post_lead(
        &http,
        &d,
        json!({"email": "sam@uni-example.edu", "title": "Student", "company": "State University"}),
    )
    .await;
    let mut others = Vec::new();
    for (email, title) in [
        ("ada@acme.io", "VP Sales"),
        ("ops@globex.io", "RevOps Manager"),
        ("li@initech.io", "CTO"),
    ] {
        others.push(post_lead(&http, &d, json!({"email": email, "title": title})).await);
    }
    wait_for_status(&http, &d, &student, &["review"]).await;
    for id in &others {
        wait_for_status(&http, &d, id, &["done", "review", "failed"]).await;
    }

    let profile = dir.path().join("chromium-profile");
    let c = browser(&driver, &profile).await;

    // Sign in once: every page before it sends the browser to the login form.
    c.goto(&d.url("/")).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    shoot(&c, "login").await;
    fill(&c, "#token", "wrong").await;
    click(&c, "#sign-in").await;
    assert!(text(&c, "#error").await.contains("not one of"));
    fill(&c, "#token", TOKEN).await;
    click(&c, "#sign-in").await;
    wait_for_path(&c, "/").await;
    let rows = c.find_all(Locator::Css("tr.lead-row")).await.unwrap();
    assert_eq!(rows.len(), 4, "every decided lead is listed");
    shoot(&c, "leads").await;
    let cookie = c
        .get_named_cookie("leadgate_session")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");

    // Filter the table.
    fill(&c, "#f-q", "uni-example").await;
    click(&c, "#apply-filters").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("q=uni-example")
    {
        assert!(
            Instant::now() < deadline,
            "the filter form never loaded its page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = c.find_all(Locator::Css("tr.lead-row")).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0]
        .text()
        .await
        .unwrap()
        .contains("sam@uni-example.edu"));
    c.find(Locator::Css(
        "#f-status option[value='review'], #f-status option:nth-child(6)",
    ))
    .await
    .unwrap();

    // Open the lead: score factors, the rule that matched and why earlier ones missed.
    click(&c, "a.lead-link").await;
    assert_eq!(text(&c, "#lead-email").await, "sam@uni-example.edu");
    assert_eq!(text(&c, "#lead-status").await, "review");
    assert!(text(&c, "#routing").await.contains("students"));
    assert_eq!(
        text(&c, "#factor-total").await,
        text(&c, "#score h2")
            .await
            .split_whitespace()
            .nth(1)
            .unwrap()
    );
    shoot(&c, "lead").await;

    // A form post without the session's CSRF token is refused and changes nothing.
    let forged = reqwest::Client::new()
        .post(d.url("/pools/enterprise-ae/members/41629779/pause"))
        .header("cookie", format!("leadgate_session={}", cookie.value()))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Resolve the review item.
    click(&c, "#nav-review").await;
    let items = c.find_all(Locator::Css("tr.review-item")).await.unwrap();
    assert_eq!(items.len(), 1);
    shoot(&c, "review").await;
    fill(&c, "tr.review-item .r-target", "41629779").await;
    fill(
        &c,
        "tr.review-item .r-reason",
        "a real evaluator, not a student project",
    )
    .await;
    fill(&c, "tr.review-item .r-by", "ann").await;
    click(&c, "tr.review-item button.resolve").await;
    assert!(text(&c, "#notice").await.contains("Resolved"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let lead = loop {
        let lead: Value = http
            .get(d.url(&format!("/v1/leads/{student}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if lead["status"] == "done" {
            break lead;
        }
        assert!(
            Instant::now() < deadline,
            "the resolution was never delivered: {lead}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(lead["route"]["owner"], "41629779");
    assert!(lead["route"]["reason"]
        .as_str()
        .unwrap()
        .contains("review resolved by ann"));
    c.refresh().await.unwrap();
    assert!(c
        .find_all(Locator::Css("tr.review-item"))
        .await
        .unwrap()
        .is_empty());

    // Pause a pool member.
    click(&c, "#nav-pools").await;
    let member = "#pool-enterprise-ae tr.member[data-owner='41629779']";
    click(&c, &format!("{member} button.pause")).await;
    assert!(text(&c, "#notice").await.contains("paused"));
    assert_eq!(
        text(&c, &format!("{member} .member-status")).await,
        "paused"
    );
    shoot(&c, "pools").await;
    let pools: Value = http
        .get(d.url("/v1/pools"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ada = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "enterprise-ae")
        .unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["owner"] == "41629779")
        .unwrap()
        .clone();
    assert_eq!(ada["status"], "paused", "the store has the pause: {ada}");

    // The other pages render.
    click(&c, "#nav-providers").await;
    assert!(!c
        .find_all(Locator::Css("tr.provider"))
        .await
        .unwrap()
        .is_empty());
    shoot(&c, "providers").await;
    click(&c, "#nav-charts").await;
    assert!(c.find(Locator::Css("#chart-grades svg rect")).await.is_ok());
    shoot(&c, "charts").await;
    c.close().await.unwrap();
}
