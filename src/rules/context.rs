//! The per-lead evaluation context: built once per lead, shared by every rule.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map as CelMap};
use cel::{Context, Value};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value as Json};

use crate::lead::{EnrichedLead, Lead};

/// One lead's variables (`lead`, `company`, `person`, `email`, `events`, `account`, `now`),
/// converted to CEL values once.
pub struct RuleContext {
    ctx: Context<'static, 'static>,
    /// The same variables as JSON, to quote matched values in explanations.
    json: HashMap<String, Json>,
}

impl RuleContext {
    pub fn empty() -> Self {
        Self {
            ctx: Context::with_env(super::ENV.clone()),
            json: HashMap::new(),
        }
    }

    /// The context for an enriched lead, with `account` the matched CRM account (or empty).
    pub fn for_lead(enriched: &EnrichedLead, account: &Json, now: DateTime<Utc>) -> Self {
        let mut c = Self::empty();
        let lead = &enriched.lead;
        c.set("lead", &lead_json(lead));
        let (company, person) = enriched_objects(enriched);
        c.set("company", &company);
        c.set("person", &person);
        c.set("email", &email_json(lead));
        c.set("events", &serde_json::to_value(&lead.events).unwrap_or_else(|_| json!([])));
        c.set("account", account);
        c.set("activity", &activity_json(&lead.events, now));
        c.ctx
            .add_variable_from_value("now", Value::Timestamp(now.fixed_offset()));
        c
    }

    pub fn set(&mut self, name: &str, value: &Json) {
        self.ctx.add_variable_from_value(name, json_to_cel(value));
        self.json.insert(name.to_string(), value.clone());
    }

    pub fn set_value(&mut self, name: &str, value: Value) {
        self.ctx.add_variable_from_value(name, value);
    }

    /// Adds a function rules can call for this lead only (routing's `in_territory`). A name
    /// the CEL standard library already uses is refused, and the call is ignored.
    pub fn add_function<T: 'static, F>(&mut self, name: &str, f: F)
    where
        F: cel::extractors::IntoFunction<T> + 'static + Send + Sync,
    {
        if let Err(e) = self.ctx.add_function(name, f) {
            tracing::warn!(function = name, error = ?e, "cannot add a rule function");
        }
    }

    pub(crate) fn cel(&self) -> &Context<'static, 'static> {
        &self.ctx
    }

    /// Reads a dotted field (`company.employees`) back out as JSON, for explanations.
    pub fn lookup(&self, dotted: &str) -> Option<&Json> {
        let (root, field) = dotted.split_once('.')?;
        self.json.get(root)?.get(field)
    }
}

/// Frequency, recency and velocity of a lead's events, as `activity.*`:
/// `count` (all events), `count_7d` / `count_30d` / `count_90d` (events in the last 7, 30,
/// 90 days), `days_since_last` / `days_since_first` (absent without events), `velocity`
/// (events in the last 14 days minus the 14 days before: > 0 means speeding up) and
/// `types` (how many distinct event types). Future-dated events (clock skew) count as now.
pub fn activity_json(events: &[crate::lead::Event], now: DateTime<Utc>) -> Json {
    const DAY_MS: f64 = 86_400_000.0;
    let ages: Vec<f64> = events
        .iter()
        .map(|e| ((now - e.at).num_milliseconds().max(0) as f64) / DAY_MS)
        .collect();
    let within = |days: f64| ages.iter().filter(|a| **a < days).count() as i64;
    let recent = within(14.0);
    let before = within(28.0) - recent;
    let mut types: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    let mut m = Map::new();
    m.insert("count".into(), json!(events.len()));
    m.insert("count_7d".into(), json!(within(7.0)));
    m.insert("count_30d".into(), json!(within(30.0)));
    m.insert("count_90d".into(), json!(within(90.0)));
    m.insert("velocity".into(), json!(recent - before));
    m.insert("types".into(), json!(types.len()));
    if let Some(last) = ages.iter().copied().reduce(f64::min) {
        m.insert("days_since_last".into(), json!((last * 100.0).round() / 100.0));
    }
    if let Some(first) = ages.iter().copied().reduce(f64::max) {
        m.insert("days_since_first".into(), json!((first * 100.0).round() / 100.0));
    }
    Json::Object(m)
}

fn lead_json(lead: &Lead) -> Json {
    let mut v = serde_json::to_value(lead).unwrap_or_else(|_| json!({}));
    if let Some(obj) = v.as_object_mut() {
        obj.remove("email_info");
    }
    v
}

fn email_json(lead: &Lead) -> Json {
    let mut m = Map::new();
    if let Some(e) = &lead.email {
        m.insert("address".into(), json!(e));
        if let Some((local, _)) = e.split_once('@') {
            m.insert("local_part".into(), json!(local));
        }
    }
    if let Some(d) = &lead.email_info.domain {
        m.insert("domain".into(), json!(d));
    }
    m.insert("is_free".into(), json!(lead.email_info.is_free));
    m.insert("is_disposable".into(), json!(lead.email_info.is_disposable));
    Json::Object(m)
}

/// `company` and `person` objects from the enriched fields. `person.title` falls back to
/// the title the lead gave, so title rules work before any person enrichment.
fn enriched_objects(enriched: &EnrichedLead) -> (Json, Json) {
    let mut company = Map::new();
    let mut person = Map::new();
    for (name, p) in &enriched.enrichment.fields {
        if let Some(f) = name.strip_prefix("company.") {
            company.insert(f.into(), p.value.clone());
        } else if let Some(f) = name.strip_prefix("person.") {
            person.insert(f.into(), p.value.clone());
        }
    }
    if let Some(t) = &enriched.lead.title {
        person.entry("title").or_insert_with(|| json!(t));
    }
    (Json::Object(company), Json::Object(person))
}

/// JSON → CEL: integers stay integers (so `employees >= 1000` compares ints), RFC 3339
/// strings stay strings (rules call `timestamp()` when they need one).
pub fn json_to_cel(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Json::Object(o) => {
            let map: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                .collect();
            Value::Map(CelMap { map: Arc::new(map) })
        }
    }
}

