//! The lead parser and normalizer on any bytes: a request body goes through the same steps
//! as `POST /v1/leads` (JSON → object → `RawLead`, then `Normalizer::normalize`), and a JSONL
//! file through `intake::read_jsonl`. Same invariants as tests/props.rs: nothing panics,
//! errors are values, and whatever the normalizer accepts is identified (an email or a
//! domain), with a lowercase trimmed email holding one `@` and a domain of hostname
//! characters only.

#![no_main]

use std::collections::HashSet;

use leadgate::intake::read_jsonl;
use leadgate::lead::RawLead;
use leadgate::normalize::Normalizer;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The body parser of `POST /v1/leads` (server::routes::parse_lead): only an object is a
    // lead; anything else is a 400 there, an `Err` or a non-object here.
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) {
        let raw = RawLead(map);
        let n = Normalizer::new(
            HashSet::from(["gmail.com".to_string()]),
            HashSet::from(["mailinator.com".to_string()]),
        );
        if let Ok(lead) = n.normalize(&raw) {
            assert!(lead.email.is_some() || lead.domain.is_some(), "{lead:?}");
            if let Some(e) = &lead.email {
                assert_eq!(e, &e.trim().to_lowercase());
                assert_eq!(e.matches('@').count(), 1, "{e}");
            }
            if let Some(d) = &lead.domain {
                assert!(
                    d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
                    "{d}"
                );
            }
        }
    }

    // The JSONL reader: one row per non-blank line at most, each bad line a value that names
    // its line.
    let rows = read_jsonl(data);
    let lines = data.split(|b| *b == b'\n').count();
    assert!(
        rows.len() <= lines,
        "{} rows from {lines} lines",
        rows.len()
    );
    for (n, row) in &rows {
        if let Err(bad) = row {
            assert_eq!(bad.line, *n);
            assert!(!bad.reason.is_empty());
        }
    }
});
