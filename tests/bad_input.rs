//! A corpus of malformed leads against the real daemon: each gets a 4xx JSON error that
//! names the problem (or is accepted and handled safely), nothing panics, and the daemon
//! keeps serving.

mod support;

use serde_json::{json, Value};
use support::{temp_db, wait_for_status, Daemon};

#[tokio::test]
async fn malformed_leads_get_4xx_and_the_daemon_keeps_serving() {
    let (_dir, db) = temp_db();
    let d = Daemon::start(&db, 2, &[]);
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(d.url("/v1/leads"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let corpus: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        (
            "invalid UTF-8",
            vec![b'{', b'"', b'e', 0xff, 0xfe, b'"', b':', b'1', b'}'],
            400,
            None,
        ),
        ("not JSON", b"email=a@acme.io".to_vec(), 400, None),
        (
            "a JSON list",
            b"[{\"email\": \"a@acme.io\"}]".to_vec(),
            400,
            None,
        ),
        ("deeply nested JSON", deep.into_bytes(), 400, None),
        ("empty body", Vec::new(), 400, None),
        (
            "email is a list",
            json!({"email": ["a@acme.io"]}).to_string().into_bytes(),
            422,
            Some("email"),
        ),
        (
            "email is an object",
            json!({"email": {"$ne": null}}).to_string().into_bytes(),
            422,
            Some("email"),
        ),
        (
            "huge email",
            json!({"email": format!("{}@acme.io", "a".repeat(5000))})
                .to_string()
                .into_bytes(),
            422,
            Some("email"),
        ),
        (
            "huge title",
            json!({"email": "a@acme.io", "title": "x".repeat(5000)})
                .to_string()
                .into_bytes(),
            422,
            Some("title"),
        ),
        (
            "events is a string",
            json!({"email": "a@acme.io", "events": "page_view"})
                .to_string()
                .into_bytes(),
            422,
            Some("events"),
        ),
        (
            "event without a time",
            json!({"email": "a@acme.io", "events": [{"type": "page_view", "at": "yesterday"}]})
                .to_string()
                .into_bytes(),
            422,
            Some("events[0]"),
        ),
        (
            "attributes is a number",
            json!({"email": "a@acme.io", "attributes": 5})
                .to_string()
                .into_bytes(),
            422,
            Some("attributes"),
        ),
        (
            "header injection in email",
            json!({"email": "a@acme.io\r\nX-Injected: 1"})
                .to_string()
                .into_bytes(),
            422,
            Some("email"),
        ),
        (
            "SQL in email",
            json!({"email": "x'); DROP TABLE leads;--@acme.io"})
                .to_string()
                .into_bytes(),
            422,
            Some("email"),
        ),
        (
            "script as website only",
            json!({"website": "javascript:alert(1)"})
                .to_string()
                .into_bytes(),
            422,
            Some("website"),
        ),
        (
            "path traversal as domain",
            json!({"domain": "../../etc/passwd"})
                .to_string()
                .into_bytes(),
            422,
            Some("domain"),
        ),
    ];
    for (name, body, status, field) in corpus {
        let res = post(body).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(res.status().as_u16(), status, "{name}");
        let err: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: error body is not JSON: {e}"));
        assert!(
            err["error"]["code"].is_string() && err["error"]["message"].is_string(),
            "{name}: {err}"
        );
        if let Some(f) = field {
            assert_eq!(err["error"]["field"], f, "{name}: {err}");
        }
    }

    // Odd but valid input is accepted and stays data: the company name with URL syntax is
    // text, the domain from a URL with a path is only its registrable domain.
    let res = client
        .post(d.url("/v1/leads"))
        .json(&json!({"email": "ok@acme.io", "company": "x&api_key=steal#", "domain": "acme.io/../../admin?x=1", "note": "<script>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let done = wait_for_status(&client, &d, &id, &["done", "review"]).await;
    assert_eq!(done["lead"]["domain"], "acme.io");
    assert_eq!(done["lead"]["company"], "x&api_key=steal#");

    assert_eq!(
        client.get(d.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        client.get(d.url("/readyz")).send().await.unwrap().status(),
        200
    );
}
