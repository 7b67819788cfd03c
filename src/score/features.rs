//! Model features: what the predictive model sees of one enriched lead. The same function
//! feeds training (`leadgate train`) and scoring, so a model never sees a lead differently
//! from the leads it learned on.
//!
//! Features are named by where they come from: `lead.country`, `lead.title_level`,
//! `email.is_free`, `company.employees`, `person.seniority`, `attributes.budget` (every
//! non-canonical column), `events.page_view` (events per type). Identifiers (email, names,
//! phone, ids, company name, domain, website) are never features.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lead::EnrichedLead;

/// One raw feature value, before encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Num(f64),
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

impl RawValue {
    /// The value as JSON, for explanations.
    pub fn to_json(&self) -> Value {
        match self {
            RawValue::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            RawValue::Bool(b) => Value::Bool(*b),
            RawValue::Text(t) => Value::String(t.clone()),
            RawValue::List(l) => Value::from(l.clone()),
        }
    }
}

/// A lead's features by name.
pub type Features = BTreeMap<String, RawValue>;

/// Enriched fields that identify rather than describe a company.
const IDENTIFYING_ENRICHED: &[&str] = &["company.name", "company.domain", "person.title"];

/// Extracts every feature of `lead`.
pub fn extract(lead: &EnrichedLead) -> Features {
    let mut f = Features::new();
    let l = &lead.lead;
    if let Some(c) = &l.country {
        f.insert("lead.country".into(), RawValue::Text(c.clone()));
    }
    if let Some(s) = &l.source {
        f.insert("lead.source".into(), RawValue::Text(s.clone()));
    }
    let title = lead
        .enrichment
        .value("person.title")
        .and_then(Value::as_str)
        .or(l.title.as_deref());
    if let Some(level) = title.and_then(title_level) {
        f.insert("lead.title_level".into(), RawValue::Text(level.into()));
    }
    if l.email.is_some() {
        f.insert("email.is_free".into(), RawValue::Bool(l.email_info.is_free));
        f.insert(
            "email.is_disposable".into(),
            RawValue::Bool(l.email_info.is_disposable),
        );
    }
    for (name, p) in &lead.enrichment.fields {
        if IDENTIFYING_ENRICHED.contains(&name.as_str()) {
            continue;
        }
        if let Some(v) = raw_value(&p.value) {
            f.insert(name.clone(), v);
        }
    }
    for (key, value) in &l.attributes {
        if let Some(v) = raw_value(value) {
            f.insert(format!("attributes.{key}"), v);
        }
    }
    for e in &l.events {
        let entry = f
            .entry(format!("events.{}", e.kind))
            .or_insert(RawValue::Num(0.0));
        if let RawValue::Num(n) = entry {
            *n += 1.0;
        }
    }
    f
}

/// JSON → feature value: numbers, booleans, `yes`/`no`/`true`/`false` strings as booleans,
/// numeric strings as numbers, other strings as categories, lists as sets. Empty → absent.
fn raw_value(v: &Value) -> Option<RawValue> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(RawValue::Bool(*b)),
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()).map(RawValue::Num),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return None;
            }
            if let Some(b) = parse_bool(t) {
                return Some(RawValue::Bool(b));
            }
            match t.parse::<f64>() {
                Ok(x) if x.is_finite() => Some(RawValue::Num(x)),
                _ => Some(RawValue::Text(t.to_string())),
            }
        }
        Value::Array(a) => Some(RawValue::List(
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.trim().to_lowercase()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
        )),
        Value::Object(_) => None,
    }
}

/// `yes`/`no`, `true`/`false`, `y`/`n` (any case) → a boolean. `1`/`0` stay numbers here;
/// an outcome column also accepts them (see [`parse_outcome`]).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" => Some(true),
        "no" | "false" | "n" => Some(false),
        _ => None,
    }
}

/// An outcome cell: yes/no, true/false, y/n, 1/0 (a JSON boolean or number too).
pub fn parse_outcome(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "1" => Some(true),
            "0" => Some(false),
            t => parse_bool(t),
        },
        _ => None,
    }
}

/// A job title's level: `student`, `c_level`, `vp`, `director`, `manager` or `individual`.
/// Keyword matching, because titles are free text and a one-hot of raw titles would be
/// mostly pooled away.
pub fn title_level(title: &str) -> Option<&'static str> {
    let t = title.to_lowercase();
    if t.trim().is_empty() {
        return None;
    }
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    Some(if has("student") || has("intern") || has("internship") {
        "student"
    } else if [
        "ceo",
        "cfo",
        "cto",
        "cmo",
        "cro",
        "coo",
        "cio",
        "ciso",
        "chief",
        "founder",
        "cofounder",
        "president",
        "owner",
    ]
    .iter()
    .any(|w| has(w))
        && !has("vice")
    {
        "c_level"
    } else if has("vp") || has("svp") || has("evp") || t.contains("vice president") {
        "vp"
    } else if has("director") || t.contains("head of") || has("head") {
        "director"
    } else if has("manager") || has("lead") || has("supervisor") {
        "manager"
    } else {
        "individual"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_titles_by_level() {
        assert_eq!(title_level("Chief Revenue Officer"), Some("c_level"));
        assert_eq!(title_level("Co-Founder & CEO"), Some("c_level"));
        assert_eq!(title_level("Vice President, Sales"), Some("vp"));
        assert_eq!(title_level("Head of RevOps"), Some("director"));
        assert_eq!(title_level("Sales Director, EMEA"), Some("director"));
        assert_eq!(title_level("Growth Marketing Manager"), Some("manager"));
        assert_eq!(title_level("MBA Student"), Some("student"));
        assert_eq!(title_level("Software Engineer"), Some("individual"));
        assert_eq!(title_level("  "), None);
    }

    #[test]
    fn outcomes_accept_the_usual_spellings() {
        for (v, want) in [
            (serde_json::json!("yes"), Some(true)),
            (serde_json::json!("No"), Some(false)),
            (serde_json::json!("TRUE"), Some(true)),
            (serde_json::json!(1), Some(true)),
            (serde_json::json!("0"), Some(false)),
            (serde_json::json!(false), Some(false)),
            (serde_json::json!("maybe"), None),
            (serde_json::json!(""), None),
        ] {
            assert_eq!(parse_outcome(&v), want, "{v}");
        }
    }
}
