//! `${ENV_VAR}` interpolation in config string values, so secrets stay out of files.
//! Hand-written because it is a dozen lines and must report the key path of a missing
//! variable, which general template crates do not.

use std::collections::HashMap;

use serde_json::Value;

/// Replaces `${NAME}` in every string of `value`; returns (key, reason) for each one unset.
pub fn interpolate(
    value: &mut Value,
    env: &HashMap<String, String>,
) -> Result<(), Vec<(String, String)>> {
    let mut issues = Vec::new();
    walk(value, String::new(), env, &mut issues);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

fn walk(
    v: &mut Value,
    key: String,
    env: &HashMap<String, String>,
    issues: &mut Vec<(String, String)>,
) {
    match v {
        Value::String(s) if s.contains("${") => match substitute(s, env) {
            Ok(out) => *s = out,
            Err(var) => issues.push((
                key,
                format!("environment variable {var} is not set (referenced as ${{{var}}})"),
            )),
        },
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let path = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                walk(child, path, env, issues);
            }
        }
        Value::Array(list) => {
            for (i, child) in list.iter_mut().enumerate() {
                walk(child, format!("{key}[{i}]"), env, issues);
            }
        }
        _ => {}
    }
}

fn substitute(s: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        // `${NAME:-fallback}`: optional, as in a shell; `${KEY:-}` leaves a secret empty, so
        // a provider without its key is reported `not_configured` instead of failing startup.
        match name.split_once(":-") {
            Some((var, fallback)) => {
                out.push_str(env.get(var).map(String::as_str).unwrap_or(fallback))
            }
            None => out.push_str(env.get(name).ok_or_else(|| name.to_string())?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
