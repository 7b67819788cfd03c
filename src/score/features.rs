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

/// Extracts only the features a model reads, by their place in the model's list, with the
/// values [`extract`] gives them: scoring does this for every lead, and naming every feature
/// of the lead and filling a map with them cost more than the model itself.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// Where each model feature's value comes from, in model order.
    sources: Vec<Source>,
    /// Event types counted, each with the places that count it.
    events: Vec<(Box<str>, Vec<usize>)>,
}

/// The sources [`extract`] reads a feature name from, in its order (a later one overrides).
#[derive(Debug, Clone)]
struct Source {
    fixed: Option<Fixed>,
    /// An enrichment field of this name (never an identifying one).
    field: Option<Box<str>>,
    /// The `attributes.` key.
    attribute: Option<Box<str>>,
}

#[derive(Debug, Clone, Copy)]
enum Fixed {
    Country,
    Source,
    TitleLevel,
    IsFree,
    IsDisposable,
}

impl Extractor {
    /// For features named `names` (a model's, in its order).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut sources = Vec::new();
        let mut events: Vec<(Box<str>, Vec<usize>)> = Vec::new();
        for (i, name) in names.into_iter().enumerate() {
            let fixed = match name {
                "lead.country" => Some(Fixed::Country),
                "lead.source" => Some(Fixed::Source),
                "lead.title_level" => Some(Fixed::TitleLevel),
                "email.is_free" => Some(Fixed::IsFree),
                "email.is_disposable" => Some(Fixed::IsDisposable),
                _ => None,
            };
            let field = (!IDENTIFYING_ENRICHED.contains(&name)).then(|| name.into());
            let attribute = name.strip_prefix("attributes.").map(Into::into);
            if let Some(kind) = name.strip_prefix("events.") {
                match events.iter_mut().find(|(k, _)| **k == *kind) {
                    Some((_, at)) => at.push(i),
                    None => events.push((kind.into(), vec![i])),
                }
            }
            sources.push(Source {
                fixed,
                field,
                attribute,
            });
        }
        Self { sources, events }
    }

    /// The lead's value of each feature (`None`: the lead lacks it), equal to
    /// `extract(lead).get(name)` for each name.
    pub fn extract(&self, lead: &EnrichedLead) -> Vec<Option<RawValue>> {
        let l = &lead.lead;
        let mut out: Vec<Option<RawValue>> = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            let mut v = s.fixed.and_then(|f| match f {
                Fixed::Country => l.country.clone().map(RawValue::Text),
                Fixed::Source => l.source.clone().map(RawValue::Text),
                Fixed::TitleLevel => lead
                    .enrichment
                    .value("person.title")
                    .and_then(Value::as_str)
                    .or(l.title.as_deref())
                    .and_then(title_level)
                    .map(|level| RawValue::Text(level.into())),
                Fixed::IsFree => l
                    .email
                    .is_some()
                    .then_some(RawValue::Bool(l.email_info.is_free)),
                Fixed::IsDisposable => l
                    .email
                    .is_some()
                    .then_some(RawValue::Bool(l.email_info.is_disposable)),
            });
            if let Some(found) = s
                .field
                .as_deref()
                .and_then(|f| lead.enrichment.fields.get(f))
                .and_then(|p| raw_value(&p.value))
            {
                v = Some(found);
            }
            if let Some(found) = s
                .attribute
                .as_deref()
                .and_then(|k| l.attributes.get(k))
                .and_then(raw_value)
            {
                v = Some(found);
            }
            out.push(v);
        }
        if !self.events.is_empty() {
            for e in &l.events {
                let Some((_, at)) = self.events.iter().find(|(k, _)| **k == *e.kind) else {
                    continue;
                };
                for &i in at {
                    let entry = out[i].get_or_insert(RawValue::Num(0.0));
                    if let RawValue::Num(n) = entry {
                        *n += 1.0;
                    }
                }
            }
        }
        out
    }
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
    // Compared without lowering a copy: every text feature of every scored lead asks.
    let t = s.trim();
    let is = |w: &str| t.eq_ignore_ascii_case(w);
    if is("yes") || is("true") || is("y") {
        Some(true)
    } else if is("no") || is("false") || is("n") {
        Some(false)
    } else {
        None
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

    fn lead(raw: Value, fields: Value) -> EnrichedLead {
        let lead =
            crate::normalize::Normalizer::new(["gmail.com".to_string()].into(), Default::default())
                .normalize(&crate::lead::RawLead(raw.as_object().unwrap().clone()))
                .unwrap();
        let mut enrichment = crate::lead::Enrichment::default();
        for (k, v) in fields.as_object().unwrap() {
            enrichment.fields.insert(
                k.clone(),
                crate::lead::Provenanced {
                    value: v.clone(),
                    provider: "t".into(),
                    at: chrono::Utc::now(),
                    confidence: None,
                },
            );
        }
        EnrichedLead { lead, enrichment }
    }

    #[test]
    fn the_extractor_gives_each_feature_the_value_extract_does() {
        let leads = [
            lead(
                serde_json::json!({"email": "ada@gmail.com", "title": "VP Sales", "country": "DE",
                    "source": "webinar", "budget": "50k+", "seats": "12", "trial": "yes",
                    "empty": " ", "tags": ["A", "b"],
                    "events": [{"type": "page_view", "at": "2026-11-01T00:00:00Z"},
                               {"type": "page_view", "at": "2026-11-02T00:00:00Z"},
                               {"type": "form_submit", "at": "2026-11-02T00:00:00Z"}]}),
                // An enrichment field overrides a lead field of the same name, an attribute
                // overrides the field, and a number under an event's name is counted on.
                serde_json::json!({"company.employees": 240, "company.name": "Acme",
                    "person.title": "Chief Executive Officer", "lead.country": "FR",
                    "attributes.seats": "3", "events.page_view": 2.5,
                    "events.form_submit": "many", "company.tech": ["aws", null, 3]}),
            ),
            lead(
                serde_json::json!({"domain": "acme.io"}),
                serde_json::json!({}),
            ),
        ];
        let mut names: Vec<String> = leads.iter().flat_map(|l| extract(l).into_keys()).collect();
        names.extend(
            [
                "company.name",
                "person.title",
                "attributes.none",
                "events.email_click",
            ]
            .map(String::from),
        );
        names.push("lead.country".into());
        let extractor = Extractor::new(names.iter().map(String::as_str));
        for l in &leads {
            let all = extract(l);
            let got = extractor.extract(l);
            assert_eq!(got.len(), names.len());
            for (name, v) in names.iter().zip(&got) {
                assert_eq!(v.as_ref(), all.get(name), "{name}");
            }
        }
        let first = extractor.extract(&leads[0]);
        let at = |n: &str| names.iter().position(|x| x == n).unwrap();
        assert_eq!(first[at("events.page_view")], Some(RawValue::Num(4.5)));
        assert_eq!(first[at("lead.country")], Some(RawValue::Text("FR".into())));
        assert_eq!(
            first[at("lead.title_level")],
            Some(RawValue::Text("c_level".into()))
        );
        assert_eq!(first[at("company.name")], None);
    }

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
