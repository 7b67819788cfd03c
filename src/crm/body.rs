//! Typed request bodies for CRM and nurture operations. Enrichment bodies only ever hold
//! lead text; a CRM write needs more: an object of properties, ids as numbers (Pipedrive,
//! Outreach), keys left out when leadgate has no value for them. Three forms, on top of the
//! engine's `{name}` placeholders (`crate::connector::http::template`):
//!
//! - `"{name}"` alone: the value with its JSON type (a string, a number, the properties
//!   object); with no value the key is left out instead of failing the request.
//! - `"#{name}"` alone: the value as a JSON number (`"#{owner_id}"` → `123`).
//! - `"..." = "{name}"` as an object key: the object's entries spread into the parent
//!   (`properties = { "..." = "{properties}", hubspot_owner_id = "{owner_id}" }`).
//!
//! Any other string is text with placeholders, and a missing value is an error naming it.
//! Values are inserted as JSON values, never spliced into JSON text.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::connector::http::template::{Escape, Template, Vars, VARIABLES};
use crate::connector::http::MissingInput;

/// The spread key: its object's entries land in the parent object.
pub const SPREAD: &str = "...";

/// Values for one call, with their JSON types.
pub type TypedVars = BTreeMap<&'static str, Value>;

/// The text form of typed values, for paths and query strings: arrays joined with commas,
/// objects as JSON, nulls left out.
pub fn text_vars(vars: &TypedVars) -> Vars {
    vars.iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            Some((*k, text))
        })
        .collect()
}

/// The variable a lone placeholder names (`{owner_id}` → `owner_id`), if `s` is one.
fn lone(s: &str) -> Option<&'static str> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    VARIABLES.iter().copied().find(|v| *v == inner)
}

/// Fills a body template. `Ok(None)` means the whole body was a lone placeholder without
/// a value.
pub fn render(template: &Value, vars: &TypedVars) -> Result<Option<Value>, MissingInput> {
    let text = text_vars(vars);
    render_with(template, vars, &text)
}

fn render_with(
    template: &Value,
    vars: &TypedVars,
    text: &Vars,
) -> Result<Option<Value>, MissingInput> {
    Ok(match template {
        Value::String(s) => {
            if let Some(name) = lone(s) {
                vars.get(name).filter(|v| !v.is_null()).cloned()
            } else if let Some(name) = s.strip_prefix('#').and_then(lone) {
                vars.get(name).filter(|v| !v.is_null()).and_then(as_number)
            } else if s.contains('{') {
                let t = Template::parse(s).map_err(|_| MissingInput("valid body template"))?;
                Some(Value::String(
                    t.render(text, Escape::None).map_err(MissingInput)?,
                ))
            } else {
                Some(template.clone())
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = render_with(item, vars, text)? {
                    out.push(v);
                }
            }
            Some(Value::Array(out))
        }
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                match (k.as_str(), render_with(v, vars, text)?) {
                    (_, None) => {}
                    (SPREAD, Some(Value::Object(spread))) => out.extend(spread),
                    (SPREAD, Some(_)) => return Err(MissingInput("object to spread with \"...\"")),
                    (_, Some(value)) => {
                        out.insert(k.clone(), value);
                    }
                }
            }
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    })
}

fn as_number(v: &Value) -> Option<Value> {
    match v {
        Value::Number(_) => Some(v.clone()),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().map(Value::from).ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            })
        }
        _ => None,
    }
}

/// Sets `value` at a property name; a dot nests (`custom_fields.abc` → `{custom_fields: {abc}}`).
pub fn set_path(into: &mut Map<String, Value>, property: &str, value: Value) {
    match property.split_once('.') {
        None => {
            into.insert(property.to_string(), value);
        }
        Some((head, rest)) => {
            let slot = into
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Reads a property (dots nest, as in [`set_path`]).
pub fn get_path<'v>(from: &'v Value, property: &str) -> Option<&'v Value> {
    if let Some(v) = from.get(property) {
        return Some(v);
    }
    let (head, rest) = property.split_once('.')?;
    get_path(from.get(head)?, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lone_placeholders_keep_their_type_and_vanish_without_a_value() {
        let t = json!({"properties": {"...": "{properties}", "hubspot_owner_id": "{owner_id}"},
                       "owner_id": "#{owner_id}", "email": "{email}", "name": "{first_name} {last_name}"});
        let vars = TypedVars::from([
            (
                "properties",
                json!({"industry": "Software", "leadgate_score": 73}),
            ),
            ("owner_id", json!("123")),
            ("email", json!("ada@acme.io")),
            ("first_name", json!("Ada")),
            ("last_name", json!("Lovelace")),
        ]);
        assert_eq!(
            render(&t, &vars).unwrap().unwrap(),
            json!({"properties": {"industry": "Software", "leadgate_score": 73, "hubspot_owner_id": "123"},
                   "owner_id": 123, "email": "ada@acme.io", "name": "Ada Lovelace"})
        );
        let without_owner = TypedVars::from([
            ("properties", json!({})),
            ("email", json!("a@b.io")),
            ("first_name", json!("A")),
            ("last_name", json!("B")),
        ]);
        let body = render(&t, &without_owner).unwrap().unwrap();
        assert!(
            body.get("owner_id").is_none() && body["properties"].get("hubspot_owner_id").is_none(),
            "{body}"
        );
    }

    #[test]
    fn text_with_a_missing_value_is_an_error_and_values_are_never_json_text() {
        let t = json!({"q": "SELECT Id FROM Lead WHERE Email = '{email}'"});
        assert_eq!(
            render(&t, &TypedVars::new()).unwrap_err(),
            MissingInput("email")
        );
        let tricky = TypedVars::from([("email", json!("x\"},\"admin\":true,\"a\":\"@b.io"))]);
        let body = render(&json!({"email": "{email}"}), &tricky)
            .unwrap()
            .unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1);
    }

    #[test]
    fn dotted_properties_nest() {
        let mut m = Map::new();
        set_path(&mut m, "custom_fields.abc", json!(1));
        set_path(&mut m, "custom_fields.def", json!(2));
        let v = Value::Object(m);
        assert_eq!(v, json!({"custom_fields": {"abc": 1, "def": 2}}));
        assert_eq!(get_path(&v, "custom_fields.def"), Some(&json!(2)));
    }
}
