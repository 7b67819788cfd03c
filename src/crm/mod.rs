//! CRMs and sequencing tools: the deliver stage (write-back, owner assignment, nurture
//! enrollment), fetching a record a webhook named by id, and polling intake — all through
//! the connector manifests' named operations (`connectors/hubspot.toml` ...), the same engine
//! and resilience stack as enrichment.
//!
//! - [`config`]  — `[delivery]` (target, field mappings with policies, sequences) and `[intake.poll]`
//! - [`client`]  — one live connector: operations through park → budget → retry → limiter →
//!   HTTP, with static or OAuth 2.0 auth
//! - [`body`]    — typed request bodies (properties objects, numeric ids, optional keys)
//! - [`deliver`] — the write and enroll steps, each through the outbox
//! - [`outbox`]  — the records of side effects the store keeps
//! - [`fetch`]   — [`crate::webhook::RecordSource`]: the record a webhook named
//! - [`poll`]    — polling a CRM for changed leads, with a cursor in the store
//! - [`account_match`] — lead-to-account matching against the CRM's own accounts
//!
//! Must not: decide anything about the lead (the pipeline has), or run for `leadgate run`,
//! `POST /v1/evaluate` or `--dry-run` — only the queue's workers deliver. With no
//! `[delivery] target`, no sequences and no polling, nothing here is built and leadgate stays
//! offline.

pub mod account_match;
mod at_rest;
pub mod backfill;
pub mod batching;
pub mod body;
pub mod client;
pub mod config;
pub mod deliver;
pub mod fence;
pub mod fetch;
pub mod outbox;
pub mod owner;
pub mod poll;
pub mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::connector::manifest::ConnectorKind;
use crate::connector::{ConnectorError, Registry};
use crate::lead::Decision;
use crate::settings::{parse_duration, ConfigErrors, ConfigIssue, Settings};
use crate::store::StoreError;

pub use client::CrmConnector;
pub use config::{DeliveryConfig, WriteMode, WritePolicy};

/// Why a delivery did not finish; the job is retried (the lead is not failed).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{connector} did not take the delivery yet ({}): {error}; the job will be retried", error.kind.as_str())]
    Transient {
        connector: String,
        error: ConnectorError,
    },
    #[error("connector `{0}` is not configured: set its credentials in [providers.{0}]")]
    NotConfigured(String),
    #[error("cannot record the delivery in the outbox: {0}")]
    Store(#[from] StoreError),
    #[error("internal error while delivering: {0}")]
    Internal(String),
}

/// A checked `[[delivery.field]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    pub canonical: String,
    pub property: String,
    pub policy: WritePolicy,
}

/// A checked `[intake.poll.ID]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSpec {
    pub connector: String,
    pub interval: Duration,
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    pub echo_window: Duration,
}

/// The live CRM side of leadgate: connectors with credentials, and what to deliver.
#[derive(Debug)]
pub struct Crm {
    pub connectors: BTreeMap<String, Arc<CrmConnector>>,
    pub target: Option<String>,
    pub write_mode: WriteMode,
    pub assign_owner: bool,
    pub fields: Vec<FieldMapping>,
    pub sequences: Vec<config::SequenceConfig>,
    pub polls: Vec<PollSpec>,
    /// `[crm] batch_wait`: writes grouped into the CRM's batch calls (none: one per lead).
    pub batcher: Option<Arc<batching::WriteBatcher>>,
}

impl Crm {
    /// Builds every CRM and nurture connector that has `[providers.ID]` credentials, and
    /// checks `[delivery]` and `[intake.poll]`, reporting every issue at once. `Ok(None)`
    /// when nothing is configured (the shipped default).
    pub fn build(settings: &Settings) -> Result<Option<Arc<Crm>>, ConfigErrors> {
        let c = &settings.config;
        let file = settings.file_name();
        let mut issues: Vec<ConfigIssue> = Vec::new();
        let issue = |key: String, reason: String| ConfigIssue {
            file: file.clone(),
            line: None,
            key,
            reason,
        };
        let d = &c.delivery;
        let dir = settings.resolve(&c.connectors);
        let (registry, manifest_issues) = if dir.is_dir() {
            Registry::load(&dir)
        } else {
            (Registry::default(), Vec::new())
        };

        let client = crate::connector::http::client();
        // Daily caps, budgets and pauses shared by replicas (`resilience::shared`).
        let shared_limits = crate::enrich::build::limits_backend(settings, None);
        let mut connectors = BTreeMap::new();
        let mut unconfigured: BTreeMap<String, String> = BTreeMap::new();
        for m in registry
            .manifests()
            .filter(|m| m.kind != ConnectorKind::Enrichment)
        {
            let Some(ps) = c.providers.get(&m.id) else {
                continue;
            };
            match CrmConnector::build(m, ps, &file, &client) {
                Ok(Some(connector)) => {
                    let connector = connector
                        .with_shared_limits(shared_limits.as_ref().map(|l| l.for_connector(&m.id)));
                    connectors.insert(m.id.clone(), Arc::new(connector));
                }
                Ok(None) => {
                    let why = ps.unset_secret.clone().unwrap_or_else(|| {
                        format!("no credentials: set [providers.{}] api_key", m.id)
                    });
                    unconfigured.insert(m.id.clone(), why);
                }
                Err(mut e) => issues.append(&mut e),
            }
        }
        let needs = |key: String, id: &str, role: &str, issues: &mut Vec<ConfigIssue>| {
            if connectors.contains_key(id) {
                return;
            }
            let reason = match (registry.get(id), unconfigured.get(id)) {
                (None, _) => format!(
                    "no connector manifest `{id}` in {} (known: {})",
                    dir.display(),
                    registry.ids().join(", ")
                ),
                (Some(m), _) if m.kind == ConnectorKind::Enrichment => {
                    format!("`{id}` is an enrichment connector, not a CRM or sequencing tool")
                }
                (Some(_), Some(why)) => format!("{role} `{id}` is not configured: {why}"),
                (Some(_), None) => {
                    format!("{role} `{id}` has no [providers.{id}] section with its credentials")
                }
            };
            issues.push(issue(key, reason));
        };
        if let Some(t) = &d.target {
            needs(
                "delivery.target".into(),
                t,
                "the delivery target",
                &mut issues,
            );
        }
        let mut fields = Vec::new();
        for (i, f) in d.field.iter().enumerate() {
            if !deliver::is_known(&f.canonical) {
                issues.push(issue(
                    format!("delivery.field[{i}].canonical"),
                    format!("`{}` is not a decision value; use company.*, person.*, email.*, lead.*, score, grade, scores.ID, grades.ID, route.rule, route.reason, route.owner, route.pool, route.sequence or decided_at", f.canonical),
                ));
            }
            if f.property.trim().is_empty() {
                issues.push(issue(
                    format!("delivery.field[{i}].property"),
                    "must name the CRM property".into(),
                ));
            }
            fields.push(FieldMapping {
                canonical: f.canonical.clone(),
                property: f.property.trim().to_string(),
                policy: f.policy,
            });
        }
        if !d.field.is_empty() && d.target.is_none() {
            issues.push(issue(
                "delivery.field".into(),
                "field mappings need [delivery] target = \"...\" (the CRM they are written to)"
                    .into(),
            ));
        }
        for (i, s) in d.sequence.iter().enumerate() {
            match s.connector.as_deref().or(d.target.as_deref()) {
                Some(id) => needs(
                    format!("delivery.sequence[{i}].connector"),
                    id,
                    "the sequence's connector",
                    &mut issues,
                ),
                None => issues.push(issue(
                    format!("delivery.sequence[{i}].connector"),
                    format!(
                        "sequence `{}` needs connector = \"...\" (or a [delivery] target)",
                        s.name
                    ),
                )),
            }
            if s.id.is_empty()
                || !s
                    .id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'))
            {
                issues.push(issue(
                    format!("delivery.sequence[{i}].id"),
                    format!("`{}` is not a plain id (letters, digits, - _ .)", s.id),
                ));
            }
        }
        let mut polls = Vec::new();
        for (id, p) in &c.intake.poll {
            let key = |k: &str| format!("intake.poll.{id}.{k}");
            needs(
                format!("intake.poll.{id}"),
                id,
                "the polled CRM",
                &mut issues,
            );
            if let Some(m) = registry.get(id) {
                if !m.operations.keys().any(|op| op.starts_with("poll_")) {
                    issues.push(issue(
                        format!("intake.poll.{id}"),
                        format!("connector `{id}` has no poll_OBJECT operation to poll with"),
                    ));
                }
            }
            let interval = parse_duration(&file, &key("interval"), &p.interval)
                .map_err(|e| issues.push(e))
                .ok();
            let echo_window = parse_duration(&file, &key("echo_window"), &p.echo_window)
                .map_err(|e| issues.push(e))
                .ok();
            let start = match &p.start {
                None => None,
                Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| {
                        issues.push(issue(
                            key("start"),
                            format!("`{s}` is not an RFC 3339 time ({e})"),
                        ))
                    })
                    .ok(),
            };
            if let (Some(interval), Some(echo_window)) = (interval, echo_window) {
                polls.push(PollSpec {
                    connector: id.clone(),
                    interval,
                    start,
                    echo_window,
                });
            }
        }
        let batcher = match &c.crm.batch_wait {
            None => None,
            Some(w) => parse_duration(&file, "crm.batch_wait", w)
                .map_err(|e| issues.push(e))
                .ok()
                .map(|wait| {
                    let size = c.crm.batch_size.unwrap_or(100);
                    if !(1..=200).contains(&size) {
                        issues.push(issue(
                            "crm.batch_size".into(),
                            format!("{size} is not between 1 and 200 (HubSpot takes 100 per batch, Salesforce 200)"),
                        ));
                    }
                    Arc::new(batching::WriteBatcher::new(wait, size))
                }),
        };
        let used = d.target.is_some() || !d.sequence.is_empty() || !c.intake.poll.is_empty();
        // A broken manifest matters here only when it is one of the connectors in use
        // (enrichment reports its own).
        let wanted: Vec<&str> = d
            .target
            .iter()
            .map(String::as_str)
            .chain(d.sequence.iter().filter_map(|s| s.connector.as_deref()))
            .chain(c.intake.poll.keys().map(String::as_str))
            .collect();
        issues.extend(manifest_issues.into_iter().filter(|i| {
            let stem = std::path::Path::new(&i.file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            wanted.contains(&stem.as_str())
        }));
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        if connectors.is_empty() && !used {
            return Ok(None);
        }
        Ok(Some(Arc::new(Crm {
            connectors,
            target: d.target.clone(),
            write_mode: d.write,
            assign_owner: d.assign_owner,
            fields,
            sequences: d.sequence.clone(),
            polls,
            batcher,
        })))
    }

    /// Each connector's id and daily credit budget.
    pub fn budgets(&self) -> Vec<(&str, &crate::resilience::budget::Budget)> {
        self.connectors
            .iter()
            .map(|(id, c)| (id.as_str(), c.budget()))
            .collect()
    }

    pub fn connector(&self, id: &str) -> Option<&Arc<CrmConnector>> {
        self.connectors.get(id)
    }
}

/// Why a delivered decision failed (the CRM's own words), if it did: the job's error.
pub fn failure_reason(decision: &Decision) -> Option<String> {
    decision.failure_reason()
}
