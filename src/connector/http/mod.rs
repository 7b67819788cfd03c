//! The HTTP engine: one attempt of one named operation — render the request from the
//! template (lead values URL-encoded), add auth, send with a timeout, classify the answer by
//! the manifest's rules and status map, and read the rate-limit headers.
//!
//! Must not: retry, wait, cache or count credits (see `crate::resilience`). It never follows
//! redirects and never changes host: lead data goes only to the configured base URL.

pub mod auth;
pub mod headers;
pub mod limit_info;
pub mod response;
pub mod status;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Url;
use serde_json::Value;

use self::auth::Credentials;
use self::template::{Escape, Template, Vars};
use super::error::{ConnectorError, ErrorKind};
use super::manifest::{Method, StatusOutcome};
use super::spec::{Manifest, Operation, RateLimitSpec};
use crate::resilience::limit::RateSignal;

/// Longest vendor message kept in an error.
const MAX_VENDOR_MESSAGE: usize = 160;

/// The shared HTTP client: rustls, no redirects (lead data must not follow a redirect to
/// another host), a user agent vendors can recognise.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// A vendor's JSON body, kept as compact text. Answers live in the cache far longer than
/// they are read, and a parsed `serde_json::Value` tree costs about ten times its text in
/// memory (every object is a B-tree node); parsing again on use costs microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Body(Arc<str>);

impl Body {
    pub fn from_value(v: &Value) -> Self {
        Self(Arc::from(v.to_string()))
    }

    /// The body as JSON (it was valid JSON when stored).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> &str {
        &self.0
    }
}

/// A connector's answer, when it has one.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A record (the body).
    Found(Body),
    /// No record (a 404, an empty `found_if`, a mapped status).
    NotFound,
    /// Still being looked up (Clearbit 202).
    Pending,
}

/// An answer as the replicas share it through Redis (`resilience::redis`): a found body
/// embedded as the JSON text it already is, a not-found as a marker; a pending lookup is
/// never shared.
impl crate::resilience::redis::SharedText for Answer {
    fn to_shared(&self) -> Option<String> {
        match self {
            Answer::Found(body) => Some(format!("{{\"found\":{}}}", body.text())),
            Answer::NotFound => Some(serde_json::json!({"not_found": true}).to_string()),
            Answer::Pending => None,
        }
    }

    fn from_shared(text: &str) -> Option<(Self, crate::resilience::cache::Freshness)> {
        use crate::resilience::cache::Freshness;
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        if let Some(body) = v.get("found") {
            return Some((Answer::Found(Body::from_value(body)), Freshness::Positive));
        }
        v.get("not_found")
            .map(|_| (Answer::NotFound, Freshness::Negative))
    }
}

#[cfg(test)]
mod shared_text_tests {
    use super::*;
    use crate::resilience::cache::Freshness;
    use crate::resilience::redis::SharedText;

    #[test]
    fn answers_round_trip_through_their_redis_text() {
        let found = Answer::Found(Body::from_value(&serde_json::json!({"name": "Acme"})));
        let text = found.to_shared().unwrap();
        assert!(
            matches!(Answer::from_shared(&text), Some((Answer::Found(b), Freshness::Positive)) if b.value()["name"] == "Acme")
        );
        let text = Answer::NotFound.to_shared().unwrap();
        assert!(matches!(
            Answer::from_shared(&text),
            Some((Answer::NotFound, Freshness::Negative))
        ));
        assert!(Answer::Pending.to_shared().is_none());
    }
}

/// One attempt: the answer or error, what the vendor said about limits, and whether the
/// vendor bills it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub result: Result<Answer, ConnectorError>,
    pub signal: RateSignal,
    pub status: Option<u16>,
}

/// A request ready to send (without credentials — its text is the cache key).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
}

impl Prepared {
    /// The request's identity without secrets: method, URL, body.
    pub fn key(&self) -> String {
        match &self.body {
            Some(b) => format!("{:?} {} {b}", self.method, self.url),
            None => format!("{:?} {}", self.method, self.url),
        }
    }
}

/// A lead value the request needs is missing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the lead has no {0} to look up by")]
pub struct MissingInput(pub &'static str);

/// A live HTTP connector: a checked manifest with its base URL, credentials and client.
pub struct HttpConnector {
    manifest: Arc<Manifest>,
    base_url: Url,
    creds: Credentials,
    client: reqwest::Client,
    timeout: Duration,
    rate_limit: Option<RateLimitSpec>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnector")
            .field("id", &self.manifest.id)
            .field("base_url", &self.base_url.as_str())
            .finish()
    }
}

impl HttpConnector {
    /// `base_url` overrides the manifest's (tests, proxies, EU endpoints).
    pub fn new(
        manifest: Arc<Manifest>,
        base_url: Url,
        creds: Credentials,
        client: reqwest::Client,
        timeout: Duration,
        rate_limit: Option<RateLimitSpec>,
    ) -> Self {
        Self {
            manifest,
            base_url,
            creds,
            client,
            timeout,
            rate_limit,
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.manifest.operations.get(name)
    }

    /// Renders an operation's request for a lead's values.
    pub fn prepare(&self, op: &Operation, vars: &Vars) -> Result<Prepared, MissingInput> {
        let path = op
            .path
            .render(vars, Escape::PathSegment)
            .map_err(MissingInput)?;
        let mut text = self.base_url.as_str().trim_end_matches('/').to_string();
        text.push_str(&path);
        let mut url = Url::parse(&text).map_err(|_| MissingInput("valid value"))?;
        if url.host_str() != self.base_url.host_str() || url.port() != self.base_url.port() {
            // Unreachable with a percent-encoded path; kept as the last line of defence.
            return Err(MissingInput("value that stays on the configured host"));
        }
        if !op.query.is_empty() {
            let mut pairs = Vec::with_capacity(op.query.len());
            for (k, t) in &op.query {
                pairs.push((k, t.render(vars, Escape::None).map_err(MissingInput)?));
            }
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, &v);
            }
        }
        let body = match &op.body {
            Some(b) => Some(render_body(b, vars)?),
            None => None,
        };
        Ok(Prepared {
            method: op.method,
            url,
            body,
        })
    }

    /// Sends a prepared request once and classifies the answer.
    pub async fn send(&self, op: &Operation, prepared: &Prepared) -> Exchange {
        let id = &self.manifest.id;
        let mut url = prepared.url.clone();
        auth::apply_to_url(&self.manifest.auth, &self.creds, &mut url);
        let method = match prepared.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut request = self
            .client
            .request(method, url)
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in &op.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &prepared.body {
            request = request.json(b);
        }
        request = auth::apply_to_request(&self.manifest.auth, &self.creds, request);

        let failed = |e: reqwest::Error| {
            let e = e.without_url();
            let (kind, message) = if e.is_timeout() {
                (
                    ErrorKind::Timeout,
                    format!("{id} did not answer within {:?}", self.timeout),
                )
            } else if e.is_connect() {
                (
                    ErrorKind::Connect,
                    format!("cannot connect to {id} at {}: {e}", self.base_url),
                )
            } else {
                (
                    ErrorKind::Connect,
                    format!("the request to {id} failed: {e}"),
                )
            };
            Exchange {
                result: Err(ConnectorError::new(kind, None, message)),
                signal: RateSignal::default(),
                status: None,
            }
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return failed(e),
        };
        let signal = headers::read(self.rate_limit.as_ref(), &headers, Utc::now());
        let result = self.interpret(op, status, &headers, &body, &signal);
        Exchange {
            result,
            signal,
            status: Some(status),
        }
    }

    fn interpret(
        &self,
        op: &Operation,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        signal: &RateSignal,
    ) -> Result<Answer, ConnectorError> {
        let id = &self.manifest.id;
        if (300..400).contains(&status) && !op.status.contains_key(&status) {
            return Err(ConnectorError::new(
                ErrorKind::Redirect,
                Some(status),
                format!("{id} answered HTTP {status} (a redirect); leadgate does not follow redirects: check base_url"),
            ));
        }
        let outcome = status::classify(&op.rules, &op.status, status, headers, body);
        let vendor = vendor_message(body);
        let err = |kind: ErrorKind, text: String| {
            let mut e = ConnectorError::new(kind, Some(status), text);
            e.retry_after = signal.retry_after;
            Err(e)
        };
        match outcome {
            StatusOutcome::Found => match serde_json::from_slice::<Value>(body) {
                Ok(v) if v.is_object() || v.is_array() => {
                    if op.is_found(&v) {
                        Ok(Answer::Found(Body::from_value(&v)))
                    } else {
                        Ok(Answer::NotFound)
                    }
                }
                Ok(_) => err(
                    ErrorKind::BadResponse,
                    format!("{id} answered HTTP {status} with JSON that is not an object"),
                ),
                Err(e) => err(
                    ErrorKind::BadResponse,
                    format!("{id} answered HTTP {status} with a body that is not JSON ({e})"),
                ),
            },
            StatusOutcome::NotFound => Ok(Answer::NotFound),
            StatusOutcome::Pending => Ok(Answer::Pending),
            StatusOutcome::RateLimited => err(
                ErrorKind::RateLimited,
                match signal.retry_after {
                    Some(w) => format!("{id} is rate limiting us (HTTP {status}, retry after {w:?}){vendor}"),
                    None => format!("{id} is rate limiting us (HTTP {status}){vendor}"),
                },
            ),
            StatusOutcome::QuotaExhausted => err(
                ErrorKind::QuotaExhausted,
                format!("{id} says the account's credits or plan quota are used up (HTTP {status}){vendor}; top up or raise the plan"),
            ),
            StatusOutcome::Invalid => err(
                ErrorKind::Invalid,
                format!("{id} refused the request as invalid (HTTP {status}){vendor}"),
            ),
            StatusOutcome::AuthFailed => err(
                ErrorKind::AuthFailed,
                format!("{id} refused our credentials (HTTP {status}){vendor}: check [providers.{id}] api_key and the plan's access"),
            ),
            StatusOutcome::Retry => err(ErrorKind::Upstream, format!("{id} failed (HTTP {status}){vendor}")),
        }
    }
}

/// Fills placeholders in a JSON body template's strings.
fn render_body(template: &Value, vars: &Vars) -> Result<Value, MissingInput> {
    Ok(match template {
        Value::String(s) if s.contains('{') => {
            let t = Template::parse(s).map_err(|_| MissingInput("valid body template"))?;
            Value::String(t.render(vars, Escape::None).map_err(MissingInput)?)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|v| render_body(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), render_body(v, vars)?)))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// `: <the vendor's own words>`, short, emails masked; empty when there are none.
fn vendor_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let pick = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let text = pick("/error/message")
        .or_else(|| pick("/error"))
        .or_else(|| pick("/message"))
        .or_else(|| pick("/errors/0/details"))
        .or_else(|| pick("/errors/0/message"));
    match text {
        Some(t) => {
            let masked: Vec<String> = t
                .split_whitespace()
                .map(|w| {
                    if w.contains('@') {
                        crate::lead::mask_email(w)
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            let mut s = masked.join(" ");
            if s.len() > MAX_VENDOR_MESSAGE {
                let cut = (0..=MAX_VENDOR_MESSAGE)
                    .rev()
                    .find(|i| s.is_char_boundary(*i))
                    .unwrap_or(0);
                s.truncate(cut);
                s.push('…');
            }
            format!(": {s}")
        }
        None => String::new(),
    }
}
