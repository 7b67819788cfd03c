//! The provider interface every enrichment source implements.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::lead::Lead;
use crate::resilience::breaker::CircuitState;

/// What a provider is asked with: the keys a vendor can look a lead up by.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub domain: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

impl Lookup {
    pub fn for_lead(lead: &Lead) -> Self {
        Self {
            domain: lead.domain.clone(),
            email: lead.email.clone(),
            company: lead.company.clone(),
            first_name: lead.first_name.clone(),
            last_name: lead.last_name.clone(),
        }
    }

    /// A company-only lookup (benchmarks, tests, account enrichment).
    pub fn domain(domain: &str) -> Self {
        Self {
            domain: Some(domain.to_string()),
            email: None,
            company: None,
            first_name: None,
            last_name: None,
        }
    }
}

/// Why a provider was not asked (or could not be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipKind {
    /// The `stop_when` fields were already filled.
    StopWhen,
    /// Our daily credit budget is spent, or the vendor's credits/quota are (parked).
    Budget,
    /// The circuit breaker is open after repeated failures.
    CircuitOpen,
    /// No permit soon enough (a long `Retry-After`, the daily request cap).
    RateLimited,
    /// No API key, or no manifest settings.
    NotConfigured,
    /// The lead lacks what this provider looks up by (no domain, no email).
    NoInput,
}

impl SkipKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipKind::StopWhen => "stop_when",
            SkipKind::Budget => "budget",
            SkipKind::CircuitOpen => "circuit_open",
            SkipKind::RateLimited => "rate_limited",
            SkipKind::NotConfigured => "not_configured",
            SkipKind::NoInput => "no_input",
        }
    }
}

/// A skip and its explanation: rendered `kind: detail` in the decision record.
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    pub kind: SkipKind,
    pub detail: String,
}

impl Skip {
    pub fn new(kind: SkipKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.as_str())
        } else {
            write!(f, "{}: {}", self.kind.as_str(), self.detail)
        }
    }
}

/// A provider's answer about one lead.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderAnswer {
    /// Canonical dotted field → value, and the vendor's confidence when it gives one.
    Found {
        fields: BTreeMap<String, Value>,
        confidence: Option<f64>,
    },
    NotFound,
    /// The vendor is still looking (Clearbit's 202): try again later, a miss for now.
    Pending,
    /// The provider was not asked; the kind says why.
    Skipped(Skip),
    /// Down, slow, over quota, or answered garbage; the reason is for the decision record
    /// (`kind: what happened`).
    Failed(String),
}

/// An answer and whether it cost an upstream call.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub answer: ProviderAnswer,
    /// From the cache, or shared from another lead's in-flight call.
    pub cached: bool,
}

impl From<ProviderAnswer> for Reply {
    fn from(answer: ProviderAnswer) -> Self {
        Self {
            answer,
            cached: false,
        }
    }
}

/// A provider's health and usage, for `leadgate connectors` and `GET /v1/connectors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderStatus {
    pub id: String,
    /// Ready to be asked: a manifest, settings, and credentials where needed.
    pub configured: bool,
    /// Whether the credentials it needs are set; absent when it needs none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_present: Option<bool>,
    /// Why it is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit: Option<CircuitState>,
    pub credits_used_today: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_budget: Option<f64>,
    pub requests_today: u64,
    /// Requests allowed per UTC day, when capped (alerts watch it run out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_cap: Option<u32>,
    /// The vendor's quota is exhausted: skipped until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_reason: Option<String>,
    /// The limiter is paused (Retry-After, an empty window) for this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_ms: Option<u64>,
    /// Upstream calls (attempts, retries included).
    pub calls: u64,
    /// Lookups answered with data / without / with an error, cached ones included.
    pub hits: u64,
    pub misses: u64,
    pub errors: u64,
    pub cache_hits: u64,
    /// 429 answers received.
    pub rate_limited: u64,
    /// Hits over lookups that got an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hit_rate: Option<f64>,
}

/// One enrichment source.
pub trait Provider: Send + Sync {
    /// The id used in `waterfall = [...]` and in provenance.
    fn id(&self) -> &str;
    fn lookup<'a>(&'a self, lookup: &'a Lookup) -> BoxFuture<'a, Reply>;
    /// The daily credit budget this provider spends, if it is a paid one: the store keeps
    /// its charges across restarts and replicas (`enrich::usage`).
    fn budget(&self) -> Option<&crate::resilience::budget::Budget> {
        None
    }

    /// Health and usage; a provider with no moving parts reports itself configured.
    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            id: self.id().to_string(),
            configured: true,
            ..ProviderStatus::default()
        }
    }
}

/// A provider listed in the waterfall that cannot run (no key, no settings): every lead
/// records it as `skipped: not_configured`, and none fails because of it.
pub struct NotConfigured {
    id: String,
    why: String,
    needs_key: bool,
    rate_limit: Option<String>,
}

impl NotConfigured {
    pub fn new(
        id: &str,
        why: impl Into<String>,
        needs_key: bool,
        rate_limit: Option<String>,
    ) -> Self {
        Self {
            id: id.to_string(),
            why: why.into(),
            needs_key,
            rate_limit,
        }
    }
}

impl Provider for NotConfigured {
    fn id(&self) -> &str {
        &self.id
    }

    fn lookup<'a>(&'a self, _: &'a Lookup) -> BoxFuture<'a, Reply> {
        let skip = Skip::new(SkipKind::NotConfigured, self.why.clone());
        Box::pin(std::future::ready(ProviderAnswer::Skipped(skip).into()))
    }

    fn status(&self) -> ProviderStatus {
        ProviderStatus {
            id: self.id.clone(),
            configured: false,
            credentials_present: self.needs_key.then_some(false),
            problem: Some(self.why.clone()),
            rate_limit: self.rate_limit.clone(),
            ..ProviderStatus::default()
        }
    }
}
