//! The manifest template engine (`connector::http::template`) on any template text and any
//! lead value. Same invariants as tests/props.rs, and more:
//! - parsing never panics, whatever a manifest author writes;
//! - a lead value rendered into the shipped-style path `companies/{domain}/profile` stays
//!   inside its one segment: joined onto the configured base URL, scheme, host, port and the
//!   other segments never change, no query or fragment appears, and the segment decodes
//!   back to the value (`.` and `..` are refused instead);
//! - for any path template the manifest loader accepts (starts with `/`, passes
//!   `Template::check_path`), rendered as `HttpConnector::prepare` does (base URL + path), a
//!   lead value changes nothing a harmless value (`x`) would not: same scheme, host, port,
//!   path segment count, query and fragment presence, still under the base path;
//! - a JSON-string render of a value is a JSON string holding exactly that value.
//!
//! Input: template text, a 0 byte, then the value (both lossy UTF-8).

#![no_main]

use leadgate::connector::http::template::{Escape, Template, Vars, VARIABLES};
use libfuzzer_sys::fuzz_target;
use url::Url;

fn vars(value: &str) -> Vars {
    VARIABLES.iter().map(|v| (*v, value.to_string())).collect()
}

/// What a render must not change, for a URL it produced.
fn shape(u: &Url) -> (String, Option<String>, Option<u16>, usize, bool, bool) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_string),
        u.port(),
        u.path_segments().map_or(0, |s| s.count()),
        u.query().is_some(),
        u.fragment().is_some(),
    )
}

fuzz_target!(|data: &[u8]| {
    let (text, value) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(text);
    let value = String::from_utf8_lossy(value).into_owned();
    let base = Url::parse("https://api.vendor.example:8443/v2/").unwrap();

    // 1. The fixed path: the value stays in its segment.
    let t = Template::parse("companies/{domain}/profile").unwrap();
    match t.render(
        &Vars::from([("domain", value.clone())]),
        Escape::PathSegment,
    ) {
        Err(missing) => {
            assert_eq!(missing, "domain");
            assert!(
                value.is_empty() || value == "." || value == "..",
                "{value:?} refused"
            );
        }
        Ok(path) => {
            let url = base.join(&path).unwrap();
            assert_eq!(url.scheme(), "https");
            assert_eq!(url.host_str(), Some("api.vendor.example"));
            assert_eq!(url.port(), Some(8443));
            assert_eq!(url.query(), None);
            assert_eq!(url.fragment(), None);
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 4, "{segments:?}");
            assert_eq!(
                (segments[0], segments[1], segments[3]),
                ("v2", "companies", "profile")
            );
            let decoded = percent_encoding::percent_decode_str(segments[2])
                .decode_utf8()
                .unwrap();
            assert_eq!(decoded, value.as_str());
        }
    }

    // 2. Any template: parsing never panics. One the manifest loader accepts as a path
    //    (`/…`, `Template::check_path`), rendered the way `HttpConnector::prepare` does
    //    (base URL + path, parsed), changes nothing with a lead value that `x` would not.
    let Ok(t) = Template::parse(&text) else {
        return;
    };
    if !text.starts_with('/') || t.check_path().is_err() {
        return;
    }
    let (Ok(reference), Ok(path)) = (
        t.render(&vars("x"), Escape::PathSegment),
        t.render(&vars(&value), Escape::PathSegment),
    ) else {
        return;
    };
    let url = |path: &str| Url::parse(&format!("https://api.vendor.example:8443/v2{path}"));
    match (url(&reference), url(&path)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(shape(&a), shape(&b), "{text:?} with {value:?}: {a} vs {b}");
            if a.path().starts_with("/v2/") {
                assert!(b.path().starts_with("/v2/"), "{text:?} with {value:?}: {b}");
            }
        }
        (a, b) => assert_eq!(a.is_ok(), b.is_ok(), "{text:?} with {value:?}"),
    }

    // 3. JSON string literals (JSONPath filters).
    let one = Template::parse("{email}").unwrap();
    if let Ok(lit) = one.render(&Vars::from([("email", value.clone())]), Escape::JsonString) {
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&lit).unwrap(),
            serde_json::Value::String(value.clone())
        );
    }
});
