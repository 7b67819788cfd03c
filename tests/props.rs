//! Property tests (proptest, bounded by its default case count): the lead parser, the CSV
//! and JSONL readers never panic on any input, and whatever the normalizer accepts has the
//! shape the rest of the pipeline relies on.

use leadgate::intake::{read_csv, read_jsonl};
use leadgate::lead::RawLead;
use leadgate::normalize::Normalizer;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[a-zA-Z0-9._%+-]{1,12}@[a-z0-9-]{1,10}\\.(com|io|co\\.uk|de|xyz)".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KEYS: &[&str] = &[
    "email",
    "domain",
    "website",
    "first_name",
    "title",
    "company",
    "events",
    "attributes",
    "external_id",
    "country",
    "x",
];

fn raw_lead() -> impl Strategy<Value = RawLead> {
    prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..8).prop_map(|pairs| {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert(k.to_string(), v);
        }
        RawLead(m)
    })
}

proptest! {
    #[test]
    fn the_normalizer_never_panics_and_accepted_leads_are_identified(raw in raw_lead()) {
        let n = Normalizer::new(["gmail.com".to_string()].into(), ["mailinator.com".to_string()].into());
        if let Ok(lead) = n.normalize(&raw) {
            prop_assert!(lead.email.is_some() || lead.domain.is_some());
            if let Some(e) = &lead.email {
                prop_assert_eq!(e.clone(), e.trim().to_lowercase());
                prop_assert_eq!(e.matches('@').count(), 1);
            }
            if let Some(d) = &lead.domain {
                prop_assert!(d.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            }
        }
    }

    #[test]
    fn the_csv_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut input = b"email,company,budget\n".to_vec();
        input.extend(bytes);
        let _ = read_csv(input.as_slice());
    }

    #[test]
    fn the_jsonl_reader_never_panics_and_counts_lines(text in "(.{0,30}\n){0,10}") {
        let rows = read_jsonl(text.as_bytes());
        prop_assert!(rows.len() <= text.lines().count());
    }
}

mod manifest_templates {
    use leadgate::connector::http::template::{Escape, Template, Vars};
    use proptest::prelude::*;

    proptest! {
        /// Whatever a lead's value holds, rendered into a path it stays inside its one
        /// segment: joined onto the configured base URL, host, port and the path's other
        /// segments never change.
        #[test]
        fn lead_values_never_change_host_or_path(value in prop_oneof![Just(".".to_string()), Just("..".to_string()), "\\PC{1,60}"]) {
            let base = reqwest::Url::parse("https://api.vendor.example:8443/v2/").unwrap();
            let t = Template::parse("companies/{domain}/profile").unwrap();
            let vars = Vars::from([("domain", value.clone())]);
            let Ok(path) = t.render(&vars, Escape::PathSegment) else {
                // Refused (a dot-segment): nothing is sent at all.
                prop_assert!(value == "." || value == "..");
                return Ok(());
            };
            let url = base.join(&path).unwrap();
            prop_assert_eq!(url.host_str(), Some("api.vendor.example"));
            prop_assert_eq!(url.port(), Some(8443));
            prop_assert_eq!(url.query(), None);
            prop_assert_eq!(url.fragment(), None);
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            prop_assert_eq!(segments.len(), 4, "{:?}", segments);
            prop_assert_eq!(segments[0], "v2");
            prop_assert_eq!(segments[1], "companies");
            prop_assert_eq!(segments[3], "profile");
            let decoded = percent_encoding::percent_decode_str(segments[2]).decode_utf8().unwrap();
            prop_assert_eq!(decoded.as_ref(), value.as_str());
        }

        /// The parser never panics, whatever a manifest author writes.
        #[test]
        fn template_parsing_never_panics(text in "\\PC{0,40}") {
            let _ = Template::parse(&text);
        }
    }
}
