//! Lead-to-account matching: which existing CRM account a lead belongs to, by domain.
//!
//! The lookup sits behind [`AccountMatcher`] so a CRM connector's account search can plug in;
//! [`CachedMatcher`] keeps its answers for a while so a burst of leads from one company asks
//! the CRM once. The embedded default is [`AccountBook`], a local accounts CSV.
//!
//! Matching tries the most specific host first and walks up to the registrable domain: a
//! lead at `eu.sales.acme.com` matches an account for `eu.sales.acme.com`, then
//! `sales.acme.com`, then `acme.com`. Hosts come from the lead's website, its email
//! address and its domain (matching runs before enrichment, so scoring sees the account
//! too); websites in any common form
//! (`https://www.acme.com/pricing`, `WWW.ACME.COM`, `acme.com:443`) normalize the same way,
//! in the lead and in the accounts file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use crate::lead::Lead;
use crate::normalize::registrable_domain;

/// How long a looked-up account is remembered when `[account_match] cache_ttl` is not set.
pub const DEFAULT_ACCOUNT_CACHE_TTL: Duration = Duration::from_secs(600);
/// Most distinct hosts kept in the account cache.
const ACCOUNT_CACHE_CAPACITY: u64 = 100_000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    #[error("cannot read the accounts file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("account search in {source_name} failed: {reason}")]
    Lookup { source_name: String, reason: String },
}

/// Finds the account for one normalized host (`acme.com`, `eu.acme.com`).
pub trait AccountMatcher: Send + Sync {
    /// Names the source in explanations (`accounts.csv`, `hubspot`).
    fn source(&self) -> &str;
    fn find<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Option<Value>, AccountError>>;
}

/// The accounts of a local CSV, keyed by normalized host.
#[derive(Debug, Default)]
pub struct AccountBook {
    source: String,
    by_domain: HashMap<String, Value>,
}

impl AccountBook {
    /// Reads `account_id,domain,name,owner,owner_name,tier` (extra columns kept). `domain`
    /// may hold several domains separated by `;` or spaces, in any website form.
    pub fn from_csv(path: &Path) -> Result<Self, String> {
        let mut reader = csv::Reader::from_path(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let headers = reader.headers().map_err(|e| e.to_string())?.clone();
        if !headers.iter().any(|h| h == "domain" || h == "domains") {
            return Err(format!("{} has no `domain` column", path.display()));
        }
        let mut by_domain = HashMap::new();
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("{} line {}: {e}", path.display(), i + 2))?;
            let mut account = Map::new();
            let mut hosts = Vec::new();
            for (h, v) in headers.iter().zip(record.iter()) {
                let v = v.trim();
                if h == "domain" || h == "domains" {
                    hosts.extend(v.split([';', ',', ' ', '|']).filter_map(normalize_host));
                    continue;
                }
                let key = if h == "account_id" { "id" } else { h };
                if !v.is_empty() {
                    account.insert(key.to_string(), json!(v));
                }
            }
            let Some(primary) = hosts.first().cloned() else {
                continue;
            };
            account.insert("domain".into(), json!(primary));
            let account = Value::Object(account);
            for host in hosts {
                by_domain.entry(host).or_insert_with(|| account.clone());
            }
        }
        Ok(Self {
            source: path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "accounts file".into()),
            by_domain,
        })
    }

    /// The account for a domain or website in any form, or an empty object.
    pub fn lookup(&self, domain: Option<&str>) -> Value {
        domain
            .and_then(normalize_host)
            .and_then(|d| {
                host_and_parents(&d)
                    .into_iter()
                    .find_map(|h| self.by_domain.get(&h))
            })
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

impl AccountMatcher for AccountBook {
    fn source(&self) -> &str {
        &self.source
    }

    fn find<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Option<Value>, AccountError>> {
        Box::pin(std::future::ready(Ok(self.by_domain.get(host).cloned())))
    }
}

/// Remembers another matcher's answers (found and not found) for a while; errors are not
/// remembered, so the next lead asks again.
pub struct CachedMatcher {
    inner: Arc<dyn AccountMatcher>,
    cache: moka::future::Cache<String, Option<Value>>,
}

impl CachedMatcher {
    pub fn new(inner: Arc<dyn AccountMatcher>, ttl: Duration) -> Self {
        Self {
            inner,
            cache: moka::future::Cache::builder()
                .max_capacity(ACCOUNT_CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
        }
    }
}

impl AccountMatcher for CachedMatcher {
    fn source(&self) -> &str {
        self.inner.source()
    }

    fn find<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Result<Option<Value>, AccountError>> {
        Box::pin(async move {
            let inner = self.inner.clone();
            let key = host.to_string();
            self.cache
                .try_get_with(key.clone(), async move { inner.find(&key).await })
                .await
                .map_err(|e: Arc<AccountError>| (*e).clone())
        })
    }
}

/// The hosts to look a lead up by, most specific first, without repeats.
pub fn candidate_hosts(lead: &Lead) -> Vec<String> {
    let sources = [
        lead.website.as_deref(),
        lead.email_info.domain.as_deref(),
        lead.email
            .as_deref()
            .and_then(|e| e.rsplit_once('@').map(|(_, d)| d)),
        lead.domain.as_deref(),
    ];
    let mut out: Vec<String> = Vec::new();
    // The email's domain, `email_info.domain` and `domain` are usually the same text:
    // normalizing it once spares two public-suffix lookups a lead.
    let mut seen: Vec<&str> = Vec::with_capacity(sources.len());
    let distinct = sources.into_iter().flatten().filter(|s| {
        let new = !seen.contains(s);
        seen.push(s);
        new
    });
    for host in distinct.filter_map(normalize_host) {
        for h in host_and_parents(&host) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// `eu.sales.acme.co.uk` → `[eu.sales.acme.co.uk, sales.acme.co.uk, acme.co.uk]`: up to the
/// registrable domain, never to a public suffix.
pub fn host_and_parents(host: &str) -> Vec<String> {
    let Some(registrable) = registrable_domain(host) else {
        return vec![host.to_string()];
    };
    let mut out = vec![host.to_string()];
    let mut h = host;
    while h.len() > registrable.len() {
        match h.split_once('.') {
            Some((_, rest)) => {
                h = rest;
                out.push(h.to_string());
            }
            None => break,
        }
    }
    out
}

/// A website, URL, email domain or bare domain → its lowercase host without `www.`:
/// `https://WWW.Acme.com:443/pricing?x=1` → `acme.com`.
pub fn normalize_host(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let s = s.split_once("://").map_or(s.as_str(), |(_, rest)| rest);
    let host = s.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.');
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.')
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-'))
    .then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websites_in_any_form_normalize_to_one_host() {
        for w in [
            "acme.com",
            "ACME.COM",
            "www.acme.com",
            "https://www.acme.com/pricing?x=1",
            "http://acme.com:8080",
            "acme.com.",
            "user@acme.com",
        ] {
            assert_eq!(normalize_host(w).as_deref(), Some("acme.com"), "{w}");
        }
        assert_eq!(
            normalize_host("eu.acme.com").as_deref(),
            Some("eu.acme.com")
        );
        assert_eq!(normalize_host("localhost"), None);
        assert_eq!(normalize_host(""), None);
    }

    #[test]
    fn parents_stop_at_the_registrable_domain() {
        assert_eq!(
            host_and_parents("eu.sales.acme.co.uk"),
            ["eu.sales.acme.co.uk", "sales.acme.co.uk", "acme.co.uk"]
        );
        assert_eq!(host_and_parents("acme.com"), ["acme.com"]);
    }

    #[test]
    fn candidates_come_most_specific_first_without_repeats() {
        let mut lead: Lead = serde_json::from_value(json!({
            "email": "ada@acme.co.uk",
            "domain": "acme.co.uk",
            "website": "https://www.eu.sales.acme.co.uk/about",
            "email_info": {"domain": "ACME.co.uk", "is_free": false, "is_disposable": false},
        }))
        .unwrap();
        assert_eq!(
            candidate_hosts(&lead),
            ["eu.sales.acme.co.uk", "sales.acme.co.uk", "acme.co.uk"]
        );
        // A sister domain on the email still counts, after the website's.
        lead.email = Some("ada@acme-group.com".into());
        assert_eq!(
            candidate_hosts(&lead),
            [
                "eu.sales.acme.co.uk",
                "sales.acme.co.uk",
                "acme.co.uk",
                "acme-group.com"
            ]
        );
    }
}
