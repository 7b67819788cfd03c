//! `[account_match] source = "crm"`: lead-to-account matching against the CRM's own
//! accounts — HubSpot companies (`domain` and `hs_additional_domains`), Salesforce Accounts
//! (a configurable website/domain field, SOQL through the manifest), Pipedrive organizations
//! — through the manifest's `find_account` / `find_account_by_name` operations, each record
//! read with the `get_account` map. Calls go through the connector's own limiter and budget,
//! so account searches share the CRM's rate limit with delivery; answers (found and not
//! found) are cached per domain for `cache_ttl`, one lookup in flight per domain
//! ([`CachedMatcher`]).
//!
//! Must not: decide the route (the router does), or trust a search hit without checking
//! the record's domain (Salesforce `LIKE` on a free-text Website also finds `notacme.com`).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::body::{text_vars, TypedVars};
use super::{Crm, CrmConnector};
use crate::route::{
    normalize_host, AccountError, AccountMatcher, AccountSource, CachedMatcher, Router,
    DEFAULT_ACCOUNT_CACHE_TTL,
};

/// The Salesforce field searched when `[account_match] domain_field` is not set.
pub const DEFAULT_DOMAIN_FIELD: &str = "Website";

/// One CRM's accounts as an [`AccountMatcher`].
pub struct CrmAccounts {
    connector: Arc<CrmConnector>,
    domain_field: String,
}

impl CrmAccounts {
    pub fn new(connector: Arc<CrmConnector>, domain_field: Option<&str>) -> Self {
        Self {
            connector,
            domain_field: domain_field.unwrap_or(DEFAULT_DOMAIN_FIELD).to_string(),
        }
    }

    fn vars(&self, term: &str) -> TypedVars {
        TypedVars::from([
            ("term", json!(term)),
            ("soql_term", json!(soql_like_literal(term))),
            ("account_field", json!(self.domain_field)),
        ])
    }

    fn lookup_error(&self, e: impl std::fmt::Display) -> AccountError {
        AccountError::Lookup {
            source_name: self.connector.id().to_string(),
            reason: e.to_string(),
        }
    }

    /// Runs a search operation and reads each record with the `get_account` map.
    async fn search(&self, op: &str, term: &str) -> Result<Vec<Value>, AccountError> {
        let vars = self.vars(term);
        let reply = self
            .connector
            .call(op, &vars)
            .await
            .map_err(|e| self.lookup_error(e))?;
        if !reply.found {
            return Ok(Vec::new());
        }
        let Some(map) = self.connector.manifest().operations.get("get_account") else {
            return Err(self.lookup_error(format!(
                "connector {} has {op} but no get_account operation to read its records with",
                self.connector.id()
            )));
        };
        let text = text_vars(&vars);
        let records = match reply.fields.get("records") {
            Some(Value::Array(a)) => a.clone(),
            Some(one @ Value::Object(_)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(records
            .iter()
            .filter_map(|r| account_of(&map.map(r, &text).fields))
            .collect())
    }
}

/// A mapped CRM record as the account routing sees: `id`, `name`, `domain` (primary),
/// `domains` (all, normalized), `owner`, `tier`.
fn account_of(fields: &std::collections::BTreeMap<String, Value>) -> Option<Value> {
    let text = |k: &str| match fields.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let id = text("record_id")?;
    let mut account = Map::new();
    account.insert("id".into(), json!(id));
    for k in ["name", "owner", "owner_name", "tier"] {
        if let Some(v) = text(k) {
            account.insert(k.into(), json!(v));
        }
    }
    let primary = text("domain").and_then(|d| normalize_host(&d));
    let mut domains: Vec<String> = primary.iter().cloned().collect();
    let extra: Vec<String> = match fields.get("domains") {
        Some(Value::String(s)) => s.split([';', ',', ' ', '|']).map(str::to_string).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    for d in extra.iter().filter_map(|d| normalize_host(d)) {
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    if let Some(p) = primary {
        account.insert("domain".into(), json!(p));
    }
    account.insert("domains".into(), json!(domains));
    Some(Value::Object(account))
}

/// Whether a search hit really is `host`'s account: one of its domains is the host. A
/// record that carries no domain at all is taken on the CRM's word (a custom domain field
/// the manifest does not read back).
fn holds_host(account: &Value, host: &str) -> bool {
    match account.get("domains").and_then(Value::as_array) {
        Some(d) if !d.is_empty() => d.iter().any(|d| d.as_str() == Some(host)),
        _ => true,
    }
}

impl AccountMatcher for CrmAccounts {
    fn source(&self) -> &str {
        self.connector.id()
    }

    fn find<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Option<Value>, AccountError>> {
        Box::pin(async move {
            let found = self.search("find_account", host).await?;
            Ok(found.into_iter().find(|a| holds_host(a, host)))
        })
    }

    fn find_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, AccountError>> {
        Box::pin(async move {
            if !self.connector.has("find_account_by_name") {
                return Ok(Vec::new());
            }
            // The longest word is the most selective search term; the router scores the
            // whole names of what comes back.
            let Some(term) = name.split_whitespace().max_by_key(|w| w.len()) else {
                return Ok(Vec::new());
            };
            self.search("find_account_by_name", term).await
        })
    }
}

/// `'`, `\` escaped with `\` for a SOQL string literal, and `%` / `_` too so a value is
/// matched literally inside `LIKE '%…%'`.
pub fn soql_like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\'' | '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Why `[account_match] source = "crm"` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum AccountMatchError {
    #[error("[account_match] source = \"crm\" needs a CRM: set [account_match] crm = \"hubspot\" (or a [delivery] target) and its [providers.ID] credentials")]
    NoCrm,
    #[error("[account_match] crm = \"{0}\" is not a configured CRM connector (set [providers.{0}] credentials)")]
    NotConfigured(String),
    #[error("[account_match] crm = \"{0}\": its manifest has no find_account and get_account operations to search accounts with")]
    NoSearch(String),
}

/// Plugs the CRM's accounts into the router, in `[account_match] source` order, cached for
/// `cache_ttl`. Nothing changes when `source` does not name `crm`.
pub fn attach(router: &mut Router, crm: Option<&Crm>) -> Result<(), AccountMatchError> {
    let settings = router.account_match_settings().clone();
    if !settings.wants_crm() {
        return Ok(());
    }
    let crm = crm.ok_or(AccountMatchError::NoCrm)?;
    let id = settings
        .crm
        .clone()
        .or_else(|| crm.target.clone())
        .ok_or(AccountMatchError::NoCrm)?;
    let connector = crm
        .connector(&id)
        .ok_or_else(|| AccountMatchError::NotConfigured(id.clone()))?;
    if !(connector.has("find_account") && connector.has("get_account")) {
        return Err(AccountMatchError::NoSearch(id));
    }
    let ttl = settings.cache_ttl.unwrap_or(DEFAULT_ACCOUNT_CACHE_TTL);
    let from_crm: Arc<dyn AccountMatcher> = Arc::new(CachedMatcher::new(
        Arc::new(CrmAccounts::new(
            connector.clone(),
            settings.domain_field.as_deref(),
        )),
        ttl,
    ));
    let file: Arc<dyn AccountMatcher> = router.account_book();
    let sources = settings
        .sources
        .iter()
        .map(|s| match s {
            AccountSource::Crm => from_crm.clone(),
            AccountSource::File => file.clone(),
        })
        .collect();
    router.set_account_sources(sources);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soql_literals_cannot_end_the_string_or_widen_the_like() {
        assert_eq!(soql_like_literal("o'brien"), "o\\'brien");
        assert_eq!(soql_like_literal("a\\b%_"), "a\\\\b\\%\\_");
        assert_eq!(soql_like_literal("acme.com"), "acme.com");
    }

    #[test]
    fn a_hit_counts_only_when_it_holds_the_host() {
        let fields = std::collections::BTreeMap::from([
            ("record_id".to_string(), json!("001A")),
            ("domain".to_string(), json!("https://www.notacme.com/")),
            ("domains".to_string(), json!("acme.io;ACME.net")),
        ]);
        let a = account_of(&fields).unwrap();
        assert_eq!(a["domains"], json!(["notacme.com", "acme.io", "acme.net"]));
        assert!(!holds_host(&a, "acme.com"));
        assert!(holds_host(&a, "acme.net"));
    }
}
