//! The provider interface every enrichment source implements.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::lead::Lead;

/// What a provider is asked with: the keys a vendor can look a lead up by.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    pub domain: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
}

impl Lookup {
    pub fn for_lead(lead: &Lead) -> Self {
        Self {
            domain: lead.domain.clone(),
            email: lead.email.clone(),
            company: lead.company.clone(),
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
    /// The provider cannot answer this lead (no key it can look up by).
    Skipped(String),
    /// Down, slow, over quota, or answered garbage; the reason is for the decision record.
    Failed(String),
}

/// One enrichment source.
pub trait Provider: Send + Sync {
    /// The id used in `waterfall = [...]` and in provenance.
    fn id(&self) -> &str;
    fn lookup<'a>(&'a self, lookup: &'a Lookup) -> BoxFuture<'a, ProviderAnswer>;
}
