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
    /// Accounts whose name may be `name` (normalized by [`normalize_company_name`]), for the
    /// fuzzy fallback; the caller scores them. None by default.
    fn find_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, AccountError>> {
        let _ = name;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
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

    fn find_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, AccountError>> {
        // A scan: the file is small next to a CRM, and this runs only when no domain matched.
        let mut seen = std::collections::HashSet::new();
        let found = self
            .by_domain
            .values()
            .filter(|a| {
                a.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| name_similarity(name, &normalize_company_name(n)) > 0.0)
            })
            .filter(|a| seen.insert(a.get("id").map(Value::to_string)))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// Remembers another matcher's answers (found and not found) for a while; errors are not
/// remembered, so the next lead asks again.
pub struct CachedMatcher {
    inner: Arc<dyn AccountMatcher>,
    cache: moka::future::Cache<String, Option<Value>>,
    by_name: moka::future::Cache<String, Vec<Value>>,
}

impl CachedMatcher {
    pub fn new(inner: Arc<dyn AccountMatcher>, ttl: Duration) -> Self {
        Self {
            inner,
            cache: moka::future::Cache::builder()
                .max_capacity(ACCOUNT_CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
            by_name: moka::future::Cache::builder()
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

    fn find_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Value>, AccountError>> {
        Box::pin(async move {
            let inner = self.inner.clone();
            let key = name.to_string();
            self.by_name
                .try_get_with(key.clone(), async move { inner.find_by_name(&key).await })
                .await
                .map_err(|e: Arc<AccountError>| (*e).clone())
        })
    }
}

/// Where `[account_match] source` looks accounts up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSource {
    /// The CRM's own accounts (HubSpot companies, Salesforce Accounts, Pipedrive
    /// organizations), through the CRM connector.
    Crm,
    /// The local accounts CSV (`[account_match] file`).
    File,
}

impl AccountSource {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "crm" => Some(Self::Crm),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// How a lead matched its account, as the decision record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchHow {
    /// One of the lead's own hosts is the account's primary domain.
    ExactDomain,
    /// A parent of the lead's host (`eu.acme.com` → `acme.com`).
    Subdomain,
    /// One of the account's other domains (HubSpot additional domains, a second domain in
    /// the accounts file).
    Alias,
    /// No domain matched; the company names are alike (with a confidence).
    FuzzyName,
}

/// The ordered account sources and the optional name fallback.
#[derive(Clone)]
pub struct AccountMatching {
    pub sources: Vec<Arc<dyn AccountMatcher>>,
    /// Lowest name similarity (0–1) the fuzzy fallback accepts; `None` turns it off.
    pub fuzzy_threshold: Option<f64>,
}

impl AccountMatching {
    /// The account a lead belongs to, annotated with `match` (source, how, host or
    /// confidence), or an empty object. Every source is asked by domain (in order, most
    /// specific host first) before any is asked by name. A failing source is logged and
    /// skipped: the lead is still routed.
    pub async fn match_lead(&self, lead: &Lead) -> Value {
        let hosts = tagged_hosts(lead);
        for source in &self.sources {
            for (host, direct) in &hosts {
                match source.find(host).await {
                    Ok(Some(account)) => {
                        let how = if !direct {
                            MatchHow::Subdomain
                        } else if primary_domain(&account).is_some_and(|d| d != *host) {
                            MatchHow::Alias
                        } else {
                            MatchHow::ExactDomain
                        };
                        let note = json!({"source": source.source(), "how": how, "host": host});
                        return annotate(account, host, note);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, email = %lead.masked_email(), "account lookup failed; trying the next account source");
                        break;
                    }
                }
            }
        }
        let (Some(threshold), Some(company)) = (self.fuzzy_threshold, lead.company.as_deref())
        else {
            return json!({});
        };
        let wanted = normalize_company_name(company);
        if wanted.is_empty() {
            return json!({});
        }
        for source in &self.sources {
            let candidates = match source.find_by_name(&wanted).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, email = %lead.masked_email(), "account name search failed; trying the next account source");
                    continue;
                }
            };
            let best = candidates
                .into_iter()
                .filter_map(|a| {
                    let name = normalize_company_name(a.get("name")?.as_str()?);
                    Some((name_similarity(&wanted, &name), a))
                })
                .filter(|(score, _)| *score >= threshold)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((score, account)) = best {
                let confidence = (score * 1000.0).round() / 1000.0;
                let note = json!({"source": source.source(), "how": MatchHow::FuzzyName, "confidence": confidence});
                let host = primary_domain(&account).unwrap_or_default();
                return annotate(account, &host, note);
            }
        }
        json!({})
    }
}

fn annotate(mut account: Value, host: &str, note: Value) -> Value {
    if let Some(o) = account.as_object_mut() {
        if !host.is_empty() {
            o.entry("domain").or_insert_with(|| json!(host));
        }
        o.insert("match".into(), note);
    }
    account
}

fn primary_domain(account: &Value) -> Option<String> {
    account
        .get("domain")
        .and_then(Value::as_str)
        .and_then(normalize_host)
}

/// Checks `[account_match] source`, `fuzzy_threshold` and `domain_field`; returns the
/// sources in order and the threshold, or each problem as (key, reason).
#[allow(clippy::type_complexity)]
pub fn check_match_config(
    m: &super::config::AccountMatchConfig,
) -> Result<(Vec<AccountSource>, Option<f64>), Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    if let Some(list) = &m.source {
        let names = list.names();
        if names.is_empty() {
            problems.push((
                "account_match.source",
                "lists no source; use \"crm\", \"file\" or [\"crm\", \"file\"]".to_string(),
            ));
        }
        for name in names {
            match AccountSource::parse(name) {
                Some(s) if sources.contains(&s) => {
                    problems.push(("account_match.source", format!("`{name}` is listed twice")))
                }
                Some(s) => sources.push(s),
                None => problems.push((
                    "account_match.source",
                    format!("`{name}` is not an account source; use \"crm\" or \"file\""),
                )),
            }
        }
        if sources.contains(&AccountSource::File) && m.file.is_none() {
            problems.push((
                "account_match.source",
                "`file` needs [account_match] file = \"accounts.csv\"".to_string(),
            ));
        }
    } else if m.file.is_some() {
        sources.push(AccountSource::File);
    }
    if let Some(t) = m.fuzzy_threshold {
        if !(t > 0.0 && t <= 1.0) {
            problems.push((
                "account_match.fuzzy_threshold",
                format!(
                    "{t} is not a similarity between 0 (exclusive) and 1; 0.9 is a careful start"
                ),
            ));
        }
    }
    if let Some(f) = &m.domain_field {
        if !is_soql_field(f) {
            problems.push((
                "account_match.domain_field",
                format!("`{f}` is not a Salesforce field name (letters, digits and _, like `Website` or `Domain__c`)"),
            ));
        }
    }
    if problems.is_empty() {
        Ok((sources, m.fuzzy_threshold))
    } else {
        Err(problems)
    }
}

/// A Salesforce field API name: it goes into SOQL unquoted, so nothing else may pass.
pub fn is_soql_field(f: &str) -> bool {
    let mut chars = f.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && f.len() <= 80
}

/// Legal-form words dropped before names are compared (`Acme, Inc.` is `acme`).
const LEGAL_SUFFIXES: &[&str] = &[
    "inc",
    "incorporated",
    "llc",
    "llp",
    "ltd",
    "limited",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "sarl",
    "srl",
    "spa",
    "bv",
    "nv",
    "oy",
    "ab",
    "as",
    "pty",
    "kk",
    "group",
];

/// A company name for comparison: lowercase, punctuation to spaces, legal suffixes
/// dropped from the end (`"ACME Holdings, Inc."` → `"acme holdings"`).
pub fn normalize_company_name(name: &str) -> String {
    let cleaned: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let mut words: Vec<&str> = cleaned.split_whitespace().collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_SUFFIXES.contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// How alike two normalized names are, 0–1 (Jaro–Winkler: forgiving of a missing word at
/// the end, strict about a different start).
pub fn name_similarity(a: &str, b: &str) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    strsim::jaro_winkler(a, b)
}

/// [`candidate_hosts`], each with whether it is one of the lead's own hosts (true) or a
/// parent reached by walking up (false).
///
/// The lead's `domain` counts as its own only without a website or email: normalizing
/// derives it from them as the registrable domain, so `eu.acme.com` would always look exact.
pub fn tagged_hosts(lead: &Lead) -> Vec<(String, bool)> {
    let seen = [
        lead.website.as_deref(),
        lead.email
            .as_deref()
            .and_then(|e| e.rsplit_once('@').map(|(_, d)| d)),
    ];
    let mut direct: Vec<String> = seen
        .into_iter()
        .flatten()
        .filter_map(normalize_host)
        .collect();
    if direct.is_empty() {
        direct.extend(lead.domain.as_deref().and_then(normalize_host));
    }
    candidate_hosts(lead)
        .into_iter()
        .map(|h| {
            let own = direct.contains(&h);
            (h, own)
        })
        .collect()
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
    fn company_names_compare_without_legal_form_punctuation_or_case() {
        assert_eq!(
            normalize_company_name("ACME Holdings, Inc."),
            "acme holdings"
        );
        assert_eq!(normalize_company_name("Acme GmbH & Co"), "acme");
        assert_eq!(normalize_company_name("Inc"), "inc");
        assert!(name_similarity("acme holdings", "acme holding") > 0.95);
        assert!(name_similarity("acme", "zenith") < 0.6);
        assert_eq!(name_similarity("", "acme"), 0.0);
    }

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
