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

    pub(crate) fn cel(&self) -> &Context<'static, 'static> {
        &self.ctx
    }

    /// Reads a dotted field (`company.employees`) back out as JSON, for explanations.
    pub fn lookup(&self, dotted: &str) -> Option<&Json> {
        let (root, field) = dotted.split_once('.')?;
        self.json.get(root)?.get(field)
    }
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

