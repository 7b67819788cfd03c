//! CRM webhooks: verify each vendor's signature or credentials, then turn its payload into
//! intake events — a lead to queue, or a CRM record id to fetch first. Nothing here queues
//! or calls out; the server route does the queueing and the worker does the fetching.
//!
//! A bad or stale signature is an error and nothing from that request is used.

mod hubspot;
mod pipedrive;
mod salesforce;

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::lead::RawLead;

pub use hubspot::HubspotWebhookConfig;
pub use pipedrive::PipedriveWebhookConfig;
pub use salesforce::SalesforceWebhookConfig;

/// `[webhooks.*]` in leadgate.toml: one section per CRM that may call leadgate.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    #[serde(default)]
    pub hubspot: Option<HubspotWebhookConfig>,
    #[serde(default)]
    pub salesforce: Option<SalesforceWebhookConfig>,
    #[serde(default)]
    pub pipedrive: Option<PipedriveWebhookConfig>,
}

/// Shortest secret (webhook token or password, client secret, API token) leadgate accepts:
/// 16 characters is 96 bits even from base64, beyond guessing over HTTP; an empty one let any
/// forged request through.
pub const MIN_SECRET_LEN: usize = 16;

impl WebhooksConfig {
    /// Every secret that is empty or too short, as (key, reason), for the settings check.
    pub fn weak_secrets(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut short = |key: &str, value: &str| {
            if value.trim().is_empty() {
                out.push((
                    key.to_string(),
                    "is empty: any request could pass as the CRM's".into(),
                ));
            } else if value.len() < MIN_SECRET_LEN {
                out.push((
                    key.to_string(),
                    format!(
                        "is {} characters; use at least {MIN_SECRET_LEN}",
                        value.len()
                    ),
                ));
            }
        };
        if let Some(h) = &self.hubspot {
            short("webhooks.hubspot.client_secret", &h.client_secret);
        }
        if let Some(s) = &self.salesforce {
            short("webhooks.salesforce.token", &s.token);
        }
        if let Some(p) = &self.pipedrive {
            short("webhooks.pipedrive.password", &p.password);
        }
        if let Some(s) = &self.salesforce {
            let id = s.organization_id.trim();
            if !(matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())) {
                out.push((
                    "webhooks.salesforce.organization_id".into(),
                    "must be the org's 15- or 18-character id (00D...)".into(),
                ));
            }
        }
        if let Some(p) = &self.pipedrive {
            if p.username.trim().is_empty() {
                out.push((
                    "webhooks.pipedrive.username".into(),
                    "is empty: set the webhook's http_auth_user".into(),
                ));
            }
        }
        out
    }
}

/// Why a webhook request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook connector `{0}` is not configured; add a [webhooks.{0}] section")]
    NotConfigured(String),
    #[error("unknown webhook connector `{0}`; leadgate accepts hubspot, salesforce and pipedrive")]
    UnknownConnector(String),
    #[error("signature check failed: {0}")]
    Unauthorized(String),
    #[error("payload not understood: {0}")]
    BadPayload(String),
}

/// The request as received: raw bytes are what signatures are computed over.
pub struct WebhookRequest<'a> {
    pub method: &'a str,
    /// The full URL the CRM called (scheme, host, path, query).
    pub url: String,
    pub headers: &'a HashMap<String, String>,
    pub body: &'a [u8],
    /// Now, in milliseconds since the epoch (tests fix it).
    pub now_ms: i64,
}

impl WebhookRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What one webhook event asks leadgate to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// The payload carried the lead's fields.
    Lead(RawLead),
    /// Only a record id: fetch the record from the CRM, then decide.
    Fetch { object: String, id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// The vendor's event id: a redelivery carries the same id and is queued once.
    pub event_id: String,
    pub intake: Intake,
}

/// The verified events of one request, what was ignored, and the body to answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub events: Vec<WebhookEvent>,
    pub ignored: usize,
    /// Content type and body the vendor expects back (Salesforce wants a SOAP ack).
    pub reply: Option<(&'static str, String)>,
}

impl WebhooksConfig {
    /// Verifies and parses a request for `connector`.
    pub fn handle(&self, connector: &str, req: &WebhookRequest) -> Result<Verified, WebhookError> {
        let missing = || WebhookError::NotConfigured(connector.to_string());
        match connector {
            "hubspot" => hubspot::handle(self.hubspot.as_ref().ok_or_else(missing)?, req),
            "salesforce" => salesforce::handle(self.salesforce.as_ref().ok_or_else(missing)?, req),
            "pipedrive" => pipedrive::handle(self.pipedrive.as_ref().ok_or_else(missing)?, req),
            other => Err(WebhookError::UnknownConnector(other.to_string())),
        }
    }
}

/// Why a CRM record could not be read, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FetchError {
    pub message: String,
    /// The record is gone, the id is not one, or nothing is configured to read it: retrying
    /// cannot help, so the lead is marked failed with the reason.
    pub permanent: bool,
}

impl FetchError {
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }

    pub fn temporary(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }
}

/// Reads the CRM record a webhook named (`contact` 123 in HubSpot) as a raw lead.
pub trait RecordSource: Send + Sync {
    fn fetch<'a>(
        &'a self,
        connector: &'a str,
        object: &'a str,
        id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<RawLead, FetchError>>;
}

/// The key that marks a stored payload as a CRM fetch job; refused in any lead from outside
/// (normalize), so only the webhook route can queue one.
pub const FETCH_MARKER: &str = "_fetch";

/// A fetch job's payload: the marker the worker looks for.
pub fn fetch_payload(connector: &str, object: &str, id: &str) -> RawLead {
    let v = json!({ FETCH_MARKER: { "connector": connector, "object": object, "id": id } });
    RawLead(v.as_object().cloned().unwrap_or_default())
}

/// The record a fetch job names, if the payload is one.
pub fn fetch_target(raw: &RawLead) -> Option<(String, String, String)> {
    let f = raw.0.get(FETCH_MARKER)?;
    let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    Some((s("connector")?, s("object")?, s("id")?))
}

/// Compares secrets without leaking where they differ through timing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
