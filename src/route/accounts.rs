//! Lead-to-account matching on the embedded default: a local accounts file keyed by
//! normalized domain (any website form in the file matches the lead's registrable domain).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::normalize::domain_from_website;

#[derive(Debug, Default)]
pub struct AccountBook {
    by_domain: HashMap<String, Value>,
}

impl AccountBook {
    /// Reads `account_id,domain,name,owner,owner_name,tier` (extra columns kept).
    pub fn from_csv(path: &Path) -> Result<Self, String> {
        let mut reader = csv::Reader::from_path(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let headers = reader.headers().map_err(|e| e.to_string())?.clone();
        let mut by_domain = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("{} line {}: {e}", path.display(), i + 2))?;
            let mut account = Map::new();
            for (h, v) in headers.iter().zip(record.iter()) {
                let key = if h == "account_id" { "id" } else { h };
                if !v.trim().is_empty() {
                    account.insert(key.to_string(), json!(v.trim()));
                }
            }
            let Some(domain) = account.get("domain").and_then(Value::as_str).and_then(domain_from_website) else {
                continue;
            };
            account.insert("domain".into(), json!(domain));
            by_domain.insert(domain, Value::Object(account));
        }
        Ok(Self { by_domain })
    }

    /// The account for a lead's registrable domain, or an empty object.
    pub fn lookup(&self, domain: Option<&str>) -> Value {
        domain
            .and_then(|d| self.by_domain.get(d))
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    pub fn len(&self) -> usize {
        self.by_domain.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_domain.is_empty()
    }
}
