//! One CRM or nurture connector, live: its manifest's named operations run through the
//! connector engine (`crate::connector::http`) inside the resilience stack
//! ([`crate::resilience::stack`], without the breaker) plus the
//! connector's auth: a static token or key, or an OAuth 2.0 token shared by every worker
//! and refreshed on a 401 ([`crate::connector::oauth`]).
//!
//! Must not: decide what to write or when (that is [`super::deliver`]); cache (a CRM answer
//! about a record is stale as soon as someone edits it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::body::{self, TypedVars};
use crate::connector::http::auth::Credentials;
use crate::connector::manifest::AuthConfig;
use crate::connector::oauth::{Grant, TokenSource};
use crate::connector::spec::{Manifest, Operation, RateLimitSpec, DEFAULT_RETRY_AFTER_HEADER};
use crate::connector::{Answer, ConnectorError, ErrorKind, HttpConnector};
use crate::enrich::build::effective_limit;
use crate::resilience::budget::Budget;
use crate::resilience::limit::{Limiter, RateSignal, Remaining};
use crate::resilience::park::Park;
use crate::resilience::stack::{CallError, Permits, Refusal, Stack};
use crate::settings::{ConfigIssue, ProviderSettings};

/// A quota window with fewer calls left than this is paced: the rest is spread over the
/// time until it resets, so the CRM's allocation slows leadgate down before it runs out.
pub const LOW_QUOTA: u64 = 500;
/// How long a connector rests after the CRM says its quota is exhausted (Salesforce 403
/// REQUEST_LIMIT_EXCEEDED, HubSpot DAILY): Salesforce's 24-hour window rolls, so look again
/// within the hour rather than at midnight.
pub const QUOTA_RECHECK: Duration = Duration::from_secs(3600);

/// What a successful call returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// False for an answer the manifest maps to `not_found` (a search with no match, 404).
    pub found: bool,
    /// The parsed body (`null` for 204 No Content or no record).
    pub body: Value,
    /// The operation's response map applied to the body (`record_id`, `properties` ...).
    pub fields: BTreeMap<String, Value>,
}

impl Reply {
    /// A mapped field as text (ids come as numbers or strings).
    pub fn text(&self, field: &str) -> Option<String> {
        match self.fields.get(field)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// A live CRM or nurture connector.
pub struct CrmConnector {
    manifest: Arc<Manifest>,
    base_url: reqwest::Url,
    /// `[providers.ID] base_url` was set: an OAuth `instance_url` does not replace it.
    base_overridden: bool,
    creds: Credentials,
    oauth: Option<TokenSource>,
    client: reqwest::Client,
    timeout: Duration,
    spec: RateLimitSpec,
    /// park → budget → retry → limiter (`resilience::stack`); no breaker: a CRM's
    /// refusal is about the lead, not a reason to stop asking.
    stack: Stack,
    /// Operations with a limit of their own (`own_rate_limit`), by name.
    paced: BTreeMap<String, Pacer>,
}

/// Spaces one operation's calls evenly. Hand-written rather than a second GCRA: the
/// vendor counts these per rolling second, so no burst (and no timer tolerance) is allowed.
struct Pacer {
    spacing: Duration,
    last: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    async fn wait(&self) {
        let mut last = self.last.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until(at + self.spacing).await;
        }
        *last = Some(tokio::time::Instant::now());
    }
}

impl CrmConnector {
    /// The connector's daily credit budget (`[providers.ID] daily_budget`), which
    /// `enrich::usage` keeps in the store with the enrichment providers'.
    pub fn budget(&self) -> &Budget {
        &self.stack.budget
    }
}

impl CrmConnector {
    /// Shares the daily cap, budget and the CRM's pauses with other replicas
    /// (`resilience::shared`).
    pub fn with_shared_limits(
        mut self,
        share: Option<crate::resilience::shared::SharedHandle>,
    ) -> Self {
        let Stack {
            park,
            breaker,
            budget,
            retry,
            limiter,
        } = self.stack;
        self.stack = Stack {
            park: park.with_shared_limits(share.clone()),
            breaker,
            budget: budget.with_shared_limits(share.clone()),
            retry,
            limiter: limiter.with_shared_limits(share),
        };
        self
    }
}

impl std::fmt::Debug for CrmConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrmConnector")
            .field("id", &self.manifest.id)
            .field("base_url", &self.base_url.as_str())
            .finish()
    }
}

impl CrmConnector {
    /// Builds the connector from its manifest and `[providers.ID]`; `Ok(None)` when the
    /// credentials are not set (the connector is simply not configured).
    pub fn build(
        manifest: &Arc<Manifest>,
        ps: &ProviderSettings,
        file: &str,
        client: &reqwest::Client,
    ) -> Result<Option<Self>, Vec<ConfigIssue>> {
        let id = &manifest.id;
        let mut issues = Vec::new();
        let issue = |key: &str, reason: String| ConfigIssue {
            file: file.to_string(),
            line: None,
            key: format!("providers.{id}.{key}"),
            reason,
        };
        let creds = Credentials {
            api_key: ps.api_key.clone(),
            api_secret: ps.api_secret.clone(),
        };
        if manifest.needs_key() && creds.key().is_none() {
            return Ok(None);
        }
        let base_url = match &ps.base_url {
            Some(u) => match reqwest::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                    Some(url)
                }
                _ => {
                    issues.push(issue(
                        "base_url",
                        format!("`{u}` is not an http(s) URL with a host"),
                    ));
                    None
                }
            },
            None => manifest.base_url.clone(),
        };
        let timeout = match &ps.timeout {
            Some(t) => humantime::parse_duration(t).unwrap_or_else(|e| {
                issues.push(issue("timeout", format!("`{t}` is not a duration ({e})")));
                manifest.timeout
            }),
            None => manifest.timeout,
        };
        let oauth = match &manifest.auth {
            AuthConfig::OAuth2 {
                token_url,
                lifetime,
            } => {
                let url_text = ps.token_url.as_deref().unwrap_or(token_url);
                let token_url = reqwest::Url::parse(url_text)
                    .map_err(|e| {
                        issues.push(issue(
                            "token_url",
                            format!("`{url_text}` is not a URL: {e}"),
                        ))
                    })
                    .ok();
                let lifetime = lifetime
                    .as_deref()
                    .and_then(|l| humantime::parse_duration(l).ok());
                let client_id = creds.key().unwrap_or_default().to_string();
                let secret = creds.api_secret.clone().filter(|s| !s.trim().is_empty());
                let grant = match (
                    ps.refresh_token.clone().filter(|t| !t.trim().is_empty()),
                    secret,
                ) {
                    (Some(refresh_token), client_secret) => Some(Grant::RefreshToken {
                        client_id,
                        client_secret,
                        refresh_token,
                    }),
                    (None, Some(client_secret)) => Some(Grant::ClientCredentials {
                        client_id,
                        client_secret,
                    }),
                    (None, None) => {
                        issues.push(issue(
                            "refresh_token",
                            format!("OAuth needs a refresh_token, or api_secret (the client secret) for the client-credentials grant; set [providers.{id}] refresh_token = \"${{{}_REFRESH_TOKEN}}\"", id.to_uppercase()),
                        ));
                        None
                    }
                };
                match (token_url, grant) {
                    (Some(u), Some(g)) => {
                        Some(TokenSource::new(id, u, g, lifetime, client.clone()))
                    }
                    _ => None,
                }
            }
            // A HubSpot public app: the manifest's bearer token comes from OAuth when
            // `token_url` is set (the refresh token from config, or kept by
            // `leadgate crm connect` in the store).
            _ if ps.token_url.is_some() => {
                let url_text = ps.token_url.as_deref().unwrap_or_default();
                match reqwest::Url::parse(url_text) {
                    Ok(u) => Some(TokenSource::new(
                        id,
                        u,
                        Grant::RefreshToken {
                            client_id: creds.key().unwrap_or_default().to_string(),
                            client_secret: creds
                                .api_secret
                                .clone()
                                .filter(|s| !s.trim().is_empty()),
                            refresh_token: ps.refresh_token.clone().unwrap_or_default(),
                        },
                        None,
                        client.clone(),
                    )),
                    Err(e) => {
                        issues.push(issue(
                            "token_url",
                            format!("`{url_text}` is not a URL: {e}"),
                        ));
                        None
                    }
                }
            }
            _ => None,
        };
        let Some(base_url) = base_url else {
            issues.push(issue(
                "base_url",
                "the connector has no base_url; set one".into(),
            ));
            return Err(issues);
        };
        if !issues.is_empty() {
            return Err(issues);
        }
        let limit = effective_limit(manifest, ps);
        let spec = RateLimitSpec {
            limit: limit.clone(),
            headers: manifest
                .rate_limit
                .as_ref()
                .map(|r| r.headers.clone())
                .unwrap_or_default(),
            retry_after_header: manifest.rate_limit.as_ref().map_or_else(
                || DEFAULT_RETRY_AFTER_HEADER.to_string(),
                |r| r.retry_after_header.clone(),
            ),
        };
        Ok(Some(Self {
            manifest: manifest.clone(),
            base_url,
            base_overridden: ps.base_url.is_some(),
            creds,
            oauth,
            client: client.clone(),
            timeout,
            spec,
            stack: Stack {
                park: Park::default(),
                breaker: None,
                budget: Budget::new(ps.daily_budget),
                retry: manifest.retry,
                limiter: Limiter::new(limit),
            },
            paced: manifest
                .operations
                .iter()
                .filter_map(|(name, op)| {
                    op.own_spacing.map(|spacing| {
                        (
                            name.clone(),
                            Pacer {
                                spacing,
                                last: tokio::sync::Mutex::new(None),
                            },
                        )
                    })
                })
                .collect(),
        }))
    }

    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn has(&self, op: &str) -> bool {
        self.manifest.operations.contains_key(op)
    }

    /// The record property that holds the owner: the key whose value is `{owner_id}` in the
    /// `update_with_owner` (else `update`) body (`hubspot_owner_id`, `OwnerId`, `owner_id`).
    pub fn owner_property(&self) -> Option<String> {
        fn find(v: &Value) -> Option<String> {
            match v {
                Value::Object(t) => t.iter().find_map(|(k, v)| match v {
                    Value::String(s) if s == "{owner_id}" || s == "#{owner_id}" => Some(k.clone()),
                    other => find(other),
                }),
                Value::Array(a) => a.iter().find_map(find),
                _ => None,
            }
        }
        ["update_with_owner", "update"]
            .iter()
            .filter_map(|op| self.manifest.operations.get(*op))
            .find_map(|op| op.body.as_ref().and_then(find))
    }

    /// The OAuth token source, when the connector uses OAuth (reports, tests).
    pub fn oauth(&self) -> Option<&TokenSource> {
        self.oauth.as_ref()
    }

    /// The first value `op` needs that `vars` lacks, if any.
    pub fn missing(&self, op: &str, vars: &TypedVars) -> Option<&'static str> {
        let op = self.manifest.operations.get(op)?;
        let text = body::text_vars(vars);
        let bare = without_body(op);
        let connector = self.engine(self.base_url.clone(), self.creds.clone());
        if let Err(m) = connector.prepare(&bare, &text) {
            return Some(m.0);
        }
        op.body
            .as_ref()
            .and_then(|b| body::render(b, vars).err())
            .map(|m| m.0)
    }

    /// Runs one named operation.
    pub async fn call(&self, op_name: &str, vars: &TypedVars) -> Result<Reply, ConnectorError> {
        let id = self.id().to_string();
        let op = self.manifest.operations.get(op_name).ok_or_else(|| {
            ConnectorError::new(
                ErrorKind::Invalid,
                None,
                format!(
                    "connector {id} has no operation `{op_name}` (see {})",
                    self.manifest.file.display()
                ),
            )
        })?;
        let invalid = |m: crate::connector::http::MissingInput| {
            ConnectorError::new(ErrorKind::Invalid, None, format!("{id} {op_name}: {m}"))
        };
        let request_body = match &op.body {
            Some(b) => body::render(b, vars).map_err(invalid)?,
            None => None,
        };
        let text = body::text_vars(vars);
        let bare = without_body(op);
        let paced = self.paced.get(op_name);
        let attempt = || async {
            if let Some(p) = paced {
                p.wait().await;
            }
            let (mut exchange, generation) =
                self.send_once(op, &bare, &text, &request_body).await?;
            // A 401 refreshes the token once (shared by every caller refused the same token)
            // and the call is made again with the new one.
            if exchange.0 == Some(401) {
                if let Some(source) = &self.oauth {
                    source.refused(generation).await?;
                    exchange = self.send_once(op, &bare, &text, &request_body).await?.0;
                }
            }
            let (status, result, signal) = exchange;
            self.observe(&signal);
            self.stack.limiter.share_pauses(&signal).await;
            self.share_parks(&signal).await;
            match result {
                Ok(answer) => Ok((status.unwrap_or(200), answer)),
                // 204 No Content (a Salesforce PATCH) is a success with nothing to read.
                Err(e) if status == Some(204) && e.kind == ErrorKind::BadResponse => Ok((
                    204,
                    Answer::Found(crate::connector::http::Body::from_value(&Value::Null)),
                )),
                Err(e) => Err(e),
            }
        };
        let result = self
            .stack
            .call_with(
                self.manifest.cost_per_call,
                |_| true,
                // An operation paced on its own limit spends none of the connector's permits.
                if paced.is_some() {
                    Permits::OwnLimit
                } else {
                    Permits::Connector
                },
                attempt,
            )
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CallError::Refused(Refusal::Limited(_))) => "rate_limited",
            Err(CallError::Refused(_)) => ErrorKind::QuotaExhausted.as_str(),
            Err(CallError::Failed(e)) => e.kind.as_str(),
        };
        metrics::counter!("leadgate_crm_calls_total", "connector" => id.clone(), "op" => op_name.to_string(), "outcome" => outcome).increment(1);
        match result {
            Ok(called) => {
                let (status, answer) = called.value;
                let (found, body) = match answer {
                    Answer::Found(b) => (true, b.value()),
                    Answer::NotFound | Answer::Pending => (false, Value::Null),
                };
                let fields = if found {
                    op.map(&body, &text).fields
                } else {
                    BTreeMap::new()
                };
                Ok(Reply {
                    status,
                    found,
                    body,
                    fields,
                })
            }
            Err(CallError::Refused(Refusal::Limited(e))) => Err(ConnectorError::new(
                ErrorKind::RateLimited,
                None,
                format!("{id}: {e}"),
            )),
            // Parked (the CRM's quota is spent) or the daily budget: not before it resets.
            Err(CallError::Refused(other)) => Err(ConnectorError::new(
                ErrorKind::QuotaExhausted,
                None,
                format!("{id}: {other}"),
            )),
            Err(CallError::Failed(e)) => {
                if e.kind == ErrorKind::QuotaExhausted {
                    let until = Utc::now()
                        + chrono::Duration::from_std(QUOTA_RECHECK)
                            .unwrap_or_else(|_| chrono::Duration::hours(1));
                    self.stack
                        .park
                        .park_everywhere(until, e.message.clone())
                        .await;
                }
                tracing::warn!(connector = %id, op = op_name, error_kind = e.kind.as_str(), status = ?e.status, "CRM call failed");
                Err(e)
            }
        }
    }

    /// One HTTP exchange with the current credentials; returns (status, result, signal) and
    /// the OAuth token generation used.
    #[allow(clippy::type_complexity)]
    async fn send_once(
        &self,
        op: &Operation,
        bare: &Operation,
        text: &crate::connector::http::template::Vars,
        request_body: &Option<Value>,
    ) -> Result<
        (
            (Option<u16>, Result<Answer, ConnectorError>, RateSignal),
            u64,
        ),
        ConnectorError,
    > {
        let (connector, generation) = match &self.oauth {
            None => (self.engine(self.base_url.clone(), self.creds.clone()), 0),
            Some(source) => {
                let token = source.token().await?;
                let base = match token
                    .instance_url
                    .as_deref()
                    .and_then(|u| reqwest::Url::parse(u).ok())
                {
                    Some(u) if !self.base_overridden && same_site(&u, &self.base_url) => u,
                    _ => self.base_url.clone(),
                };
                let creds = Credentials {
                    api_key: Some(token.access_token.clone()),
                    api_secret: None,
                };
                (self.engine(base, creds), token.generation)
            }
        };
        let mut prepared = connector.prepare(bare, text).map_err(|m| {
            ConnectorError::new(
                ErrorKind::Invalid,
                None,
                format!("{} {}: {m}", self.id(), op.name),
            )
        })?;
        prepared.body = request_body.clone();
        let exchange = connector.send(op, &prepared).await;
        Ok((
            (exchange.status, exchange.result, exchange.signal),
            generation,
        ))
    }

    fn engine(&self, base: reqwest::Url, creds: Credentials) -> HttpConnector {
        HttpConnector::new(
            self.manifest.clone(),
            base,
            creds,
            self.client.clone(),
            self.timeout,
            Some(self.spec.clone()),
        )
    }

    /// Takes in the CRM's limit headers: pause on Retry-After or an empty window, pace a
    /// low one, park on an exhausted quota.
    fn observe(&self, signal: &RateSignal) {
        self.stack.limiter.observe(signal);
        let low: Vec<Remaining> = signal
            .windows
            .iter()
            .filter(|w| w.quota && w.remaining > 0 && w.remaining < LOW_QUOTA)
            .map(|w| Remaining {
                quota: false,
                ..w.clone()
            })
            .collect();
        if !low.is_empty() {
            tracing::info!(connector = %self.id(), remaining = low[0].remaining, "the CRM's API allocation is running low; slowing down");
            self.stack.limiter.observe(&RateSignal {
                retry_after: None,
                windows: low,
            });
        }
        for w in signal
            .windows
            .iter()
            .filter(|w| w.quota && w.remaining == 0)
        {
            let until = Utc::now()
                + chrono::Duration::from_std(w.reset_in.min(QUOTA_RECHECK))
                    .unwrap_or_else(|_| chrono::Duration::hours(1));
            self.stack.park.park(
                until,
                format!("{} reports its API allocation used up", self.id()),
            );
        }
    }
}

impl CrmConnector {
    /// Parks every replica when the CRM reports its allocation used up (see `observe`).
    async fn share_parks(&self, signal: &RateSignal) {
        for w in signal
            .windows
            .iter()
            .filter(|w| w.quota && w.remaining == 0)
        {
            let until = Utc::now()
                + chrono::Duration::from_std(w.reset_in.min(QUOTA_RECHECK))
                    .unwrap_or_else(|_| chrono::Duration::hours(1));
            self.stack
                .park
                .park_everywhere(
                    until,
                    format!("{} reports its API allocation used up", self.id()),
                )
                .await;
        }
    }
}

/// The operation without its body template: the engine renders path and query, leadgate
/// renders typed bodies (`super::body`).
fn without_body(op: &Operation) -> Operation {
    let mut bare = op.clone();
    bare.body = None;
    bare
}

/// Whether an OAuth `instance_url` may replace the configured base URL: same scheme and
/// the same last two host labels (`acme.my.salesforce.com` for `login.salesforce.com`), so
/// a token answer can never send lead data to an unrelated host.
fn same_site(candidate: &reqwest::Url, configured: &reqwest::Url) -> bool {
    let tail = |u: &reqwest::Url| {
        let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
        let labels: Vec<&str> = host.rsplit('.').take(2).collect();
        labels.join(".")
    };
    candidate.scheme() == "https"
        && configured.scheme() == "https"
        && tail(candidate) == tail(configured)
        && !tail(candidate).is_empty()
}

#[cfg(test)]
mod tests {
    use super::same_site;

    #[test]
    fn an_instance_url_must_stay_on_the_vendor_site() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(same_site(
            &u("https://acme.my.salesforce.com"),
            &u("https://login.salesforce.com")
        ));
        assert!(!same_site(
            &u("https://evil.example.com"),
            &u("https://login.salesforce.com")
        ));
        assert!(!same_site(
            &u("http://acme.my.salesforce.com"),
            &u("https://login.salesforce.com")
        ));
    }
}
