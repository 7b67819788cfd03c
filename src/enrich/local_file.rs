//! The local file provider: firmographics from a CSV the team keeps (or exported from a
//! vendor), keyed by domain. It is the embedded default: offline, no account.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{Lookup, Provider, ProviderAnswer, Reply, Skip, SkipKind};
use crate::lead::COMPANY_FIELDS;
use crate::normalize::domain_from_website;

#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: the header needs a `domain` column")]
    NoDomainColumn { path: String },
}

/// Columns parsed as numbers; the rest stay text.
const NUMERIC: &[&str] = &["employees", "revenue", "funding_total", "founded_year"];

pub struct LocalFileProvider {
    id: String,
    companies: HashMap<String, BTreeMap<String, Value>>,
}

impl LocalFileProvider {
    /// Loads a CSV whose header names company fields (`domain,name,industry,employees,...`);
    /// `tech` is a `;`-separated list. Unknown columns are ignored.
    pub fn from_csv(id: &str, path: &Path) -> Result<Self, LocalFileError> {
        let read_err = |reason: String| LocalFileError::Read {
            path: path.display().to_string(),
            reason,
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .map_err(|e| read_err(e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| read_err(e.to_string()))?
            .clone();
        let domain_col = headers
            .iter()
            .position(|h| h.trim() == "domain")
            .ok_or_else(|| LocalFileError::NoDomainColumn {
                path: path.display().to_string(),
            })?;
        let mut companies = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| read_err(e.to_string()))?;
            let Some(domain) = record.get(domain_col).and_then(domain_from_website) else {
                continue;
            };
            let mut fields = BTreeMap::new();
            for (header, cell) in headers.iter().zip(record.iter()) {
                let (header, cell) = (header.trim(), cell.trim());
                if cell.is_empty() || !COMPANY_FIELDS.contains(&header) {
                    continue;
                }
                let value = if header == "domain" {
                    json!(domain)
                } else if header == "tech" {
                    json!(cell
                        .split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>())
                } else if NUMERIC.contains(&header) {
                    match cell.parse::<i64>() {
                        Ok(n) => json!(n),
                        Err(_) => match cell.parse::<f64>() {
                            Ok(f) => json!(f),
                            Err(_) => continue,
                        },
                    }
                } else {
                    json!(cell)
                };
                fields.insert(format!("company.{header}"), value);
            }
            companies.insert(domain, fields);
        }
        Ok(Self {
            id: id.to_string(),
            companies,
        })
    }

    pub fn len(&self) -> usize {
        self.companies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.companies.is_empty()
    }
}

impl Provider for LocalFileProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn lookup<'a>(&'a self, lookup: &'a Lookup) -> BoxFuture<'a, Reply> {
        let answer = match &lookup.domain {
            None => ProviderAnswer::Skipped(Skip::new(
                SkipKind::NoInput,
                "the lead has no domain to look up by",
            )),
            Some(domain) => match self.companies.get(domain) {
                Some(fields) => ProviderAnswer::Found {
                    fields: fields.clone(),
                    confidence: Some(1.0),
                },
                None => ProviderAnswer::NotFound,
            },
        };
        Box::pin(std::future::ready(answer.into()))
    }
}
