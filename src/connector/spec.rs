//! The checked manifest: every duration parsed, every template and JSONPath compiled, every
//! status code in range — or every issue found, each with file, line and key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::http::response::{FieldMap, PathSource};
use super::http::status::{ResponseRule, StatusMap};
use super::http::template::Template;
use super::manifest::{
    AuthConfig, BilledOutcome, ConnectorKind, Driver, ManifestConfig, Method, OperationConfig,
    ResetUnit, MANIFEST_VERSION,
};
use crate::lead::{COMPANY_FIELDS, PERSON_FIELDS};
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::limit::{RateLimit, DEFAULT_MAX_WAIT};
use crate::resilience::retry::RetryPolicy;
use crate::settings::ConfigIssue;

/// Default per-attempt timeout: enrichment APIs answer in well under a second; ten is slow.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The header a 429 carries its wait in, unless the manifest names another.
pub const DEFAULT_RETRY_AFTER_HEADER: &str = "Retry-After";

/// A checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub id: String,
    pub kind: ConnectorKind,
    pub name: String,
    pub docs: Option<String>,
    pub driver: Driver,
    /// The file it was read from.
    pub file: PathBuf,
    pub base_url: Option<reqwest::Url>,
    pub auth: AuthConfig,
    pub timeout: Duration,
    pub rate_limit: Option<RateLimitSpec>,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    pub cost_per_call: f64,
    pub billed: Vec<BilledOutcome>,
    /// Operations run for each lead (enrichment connectors).
    pub enrich: Vec<String>,
    pub operations: BTreeMap<String, Operation>,
}

impl Manifest {
    /// True when calls need a key from `[providers.ID] api_key`.
    pub fn needs_key(&self) -> bool {
        self.driver == Driver::Http && self.auth != AuthConfig::None
    }

    pub fn is_billed(&self, outcome: BilledOutcome) -> bool {
        self.billed.contains(&outcome)
    }
}

#[derive(Debug, Clone)]
pub struct RateLimitSpec {
    pub limit: RateLimit,
    pub headers: Vec<RemainingHeader>,
    pub retry_after_header: String,
}

#[derive(Debug, Clone)]
pub struct RemainingHeader {
    pub remaining: String,
    pub key: Option<String>,
    pub reset: Option<String>,
    pub reset_unit: ResetUnit,
    pub window: Duration,
    pub quota: bool,
}

/// One checked operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    pub rules: Vec<ResponseRule>,
    pub status: StatusMap,
    pub found_if: Option<serde_json_path::JsonPath>,
    pub confidence: Option<Confidence>,
    pub response: Vec<FieldMap>,
    /// Every lead value the request needs.
    pub needs: BTreeSet<&'static str>,
    /// The least time between two calls of this operation, when it has a limit of its own
    /// (`own_rate_limit`); such calls do not take the connector's permits.
    pub own_spacing: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Confidence {
    pub path: Option<serde_json_path::JsonPath>,
    pub scale: f64,
    pub default: Option<f64>,
}

/// Collects issues against one manifest file.
struct Issues<'a> {
    file: String,
    text: &'a str,
    list: Vec<ConfigIssue>,
}

impl Issues<'_> {
    /// Records an issue; the line is the first that mentions `near` (a key or a table).
    fn add(&mut self, key: impl Into<String>, near: &str, reason: impl Into<String>) {
        let line = self
            .text
            .lines()
            .position(|l| !near.is_empty() && l.contains(near))
            .map(|i| i + 1);
        self.list.push(ConfigIssue {
            file: self.file.clone(),
            line,
            key: key.into(),
            reason: reason.into(),
        });
    }

    fn duration(
        &mut self,
        key: &str,
        near: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(v) => humantime::parse_duration(v).unwrap_or_else(|e| {
                self.add(
                    key,
                    near,
                    format!("`{v}` is not a duration ({e}); write e.g. 500ms, 10s, 1m"),
                );
                default
            }),
        }
    }
}

/// Checks a parsed manifest; `text` is the file's content, for line numbers.
pub fn check(raw: ManifestConfig, file: PathBuf, text: &str) -> Result<Manifest, Vec<ConfigIssue>> {
    let mut is = Issues {
        file: file.display().to_string(),
        text,
        list: Vec::new(),
    };
    if raw.version != MANIFEST_VERSION {
        is.add(
            "version",
            "version",
            format!("manifest version {} is not supported; this leadgate reads version {MANIFEST_VERSION}", raw.version),
        );
    }
    let id_ok = !raw.id.is_empty()
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !id_ok {
        is.add(
            "id",
            "id",
            "must be lower-case letters, digits, `_` or `-` (it is used in config keys)",
        );
    }
    let base_url = match (&raw.driver, &raw.base_url) {
        (Driver::Http, None) => {
            is.add(
                "base_url",
                "",
                "an HTTP connector needs a base_url (https://...)",
            );
            None
        }
        (_, Some(u)) => match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Some(url)
            }
            Ok(_) => {
                is.add(
                    "base_url",
                    "base_url",
                    format!("`{u}` must be an http(s) URL with a host"),
                );
                None
            }
            Err(e) => {
                is.add("base_url", "base_url", format!("`{u}` is not a URL: {e}"));
                None
            }
        },
        (Driver::CsvFile, None) => None,
    };
    if let AuthConfig::ApiKeyHeader { header, .. } = &raw.auth {
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
            is.add(
                "auth.header",
                "header",
                format!("`{header}` is not a valid header name"),
            );
        }
    }
    let timeout = is.duration(
        "timeout",
        "timeout",
        raw.timeout.as_deref(),
        DEFAULT_TIMEOUT,
    );
    if !(raw.cost_per_call >= 0.0 && raw.cost_per_call.is_finite()) {
        is.add(
            "cost_per_call",
            "cost_per_call",
            "must be zero or more credits",
        );
    }

    let rate_limit = raw.rate_limit.as_ref().map(|r| {
        let per = is.duration(
            "rate_limit.per",
            "per",
            Some(&r.per),
            Duration::from_secs(1),
        );
        if r.requests == 0 {
            is.add("rate_limit.requests", "requests", "must be at least 1");
        }
        let burst = r.burst.unwrap_or(1);
        if burst == 0 || burst > r.requests.max(1) {
            is.add(
                "rate_limit.burst",
                "burst",
                format!("must be between 1 and requests ({})", r.requests),
            );
        }
        if r.daily == Some(0) {
            is.add(
                "rate_limit.daily",
                "daily",
                "must be at least 1 (leave it out for no daily cap)",
            );
        }
        let max_wait = is.duration(
            "rate_limit.max_wait",
            "max_wait",
            r.max_wait.as_deref(),
            DEFAULT_MAX_WAIT,
        );
        let headers = r
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let key = format!("rate_limit.headers[{i}].window");
                RemainingHeader {
                    remaining: h.remaining.clone(),
                    key: h.key.clone(),
                    reset: h.reset.clone(),
                    reset_unit: h.reset_unit,
                    window: is.duration(
                        &key,
                        &h.remaining,
                        Some(&h.window),
                        Duration::from_secs(60),
                    ),
                    quota: h.quota,
                }
            })
            .collect();
        RateLimitSpec {
            limit: RateLimit {
                requests: r.requests.max(1),
                per,
                burst: burst.clamp(1, r.requests.max(1)),
                daily: r.daily.filter(|d| *d > 0),
                max_wait,
            },
            headers,
            retry_after_header: r
                .retry_after_header
                .clone()
                .unwrap_or_else(|| DEFAULT_RETRY_AFTER_HEADER.to_string()),
        }
    });

    let mut retry = RetryPolicy::default();
    if let Some(r) = &raw.retry {
        if let Some(a) = r.attempts {
            if a == 0 {
                is.add(
                    "retry.attempts",
                    "attempts",
                    "must be at least 1 (1 means no retries)",
                );
            }
            retry.attempts = a.max(1);
        }
        retry.min_delay = is.duration(
            "retry.min_delay",
            "min_delay",
            r.min_delay.as_deref(),
            retry.min_delay,
        );
        retry.max_delay = is.duration(
            "retry.max_delay",
            "max_delay",
            r.max_delay.as_deref(),
            retry.max_delay,
        );
        retry.max_retry_after = is.duration(
            "retry.max_retry_after",
            "max_retry_after",
            r.max_retry_after.as_deref(),
            retry.max_retry_after,
        );
    }
    let mut breaker = BreakerConfig::default();
    if let Some(b) = &raw.breaker {
        if let Some(f) = b.failures {
            if f == 0 {
                is.add("breaker.failures", "failures", "must be at least 1");
            }
            breaker.failures = f.max(1);
        }
        breaker.cooldown = is.duration(
            "breaker.cooldown",
            "cooldown",
            b.cooldown.as_deref(),
            breaker.cooldown,
        );
    }

    let mut operations = BTreeMap::new();
    for (name, op) in &raw.operations {
        if let Some(checked) = check_operation(&mut is, raw.kind, name, op) {
            operations.insert(name.clone(), checked);
        }
    }
    let enrich = if raw.kind != ConnectorKind::Enrichment || raw.driver != Driver::Http {
        raw.enrich.clone()
    } else if raw.enrich.is_empty() {
        match raw.operations.keys().collect::<Vec<_>>().as_slice() {
            [only] => vec![(*only).clone()],
            [] => {
                is.add(
                    "operations",
                    "",
                    "an HTTP enrichment connector needs at least one [operations.NAME]",
                );
                vec![]
            }
            _ => {
                is.add(
                    "enrich",
                    "",
                    "with several operations, name the ones run for each lead: enrich = [\"...\"]",
                );
                vec![]
            }
        }
    } else {
        for name in &raw.enrich {
            if !raw.operations.contains_key(name) {
                is.add(
                    "enrich",
                    "enrich",
                    format!("no operation named `{name}` (see [operations.{name}])"),
                );
            }
        }
        raw.enrich.clone()
    };

    if !is.list.is_empty() {
        return Err(is.list);
    }
    Ok(Manifest {
        name: raw.name.clone().unwrap_or_else(|| raw.id.clone()),
        id: raw.id,
        kind: raw.kind,
        docs: raw.docs,
        driver: raw.driver,
        file,
        base_url,
        auth: raw.auth,
        timeout,
        rate_limit,
        retry,
        breaker,
        cost_per_call: raw.cost_per_call,
        billed: raw.billed.unwrap_or_else(|| vec![BilledOutcome::Found]),
        enrich,
        operations,
    })
}

fn check_operation(
    is: &mut Issues<'_>,
    kind: ConnectorKind,
    name: &str,
    op: &OperationConfig,
) -> Option<Operation> {
    let at = |k: &str| format!("operations.{name}.{k}");
    let table = format!("[operations.{name}");
    let before = is.list.len();
    let mut needs = BTreeSet::new();
    let mut template =
        |is: &mut Issues<'_>, key: String, near: &str, text: &str| match Template::parse(text) {
            Ok(t) => {
                needs.extend(t.variables());
                Some(t)
            }
            Err(e) => {
                is.add(key, near, e);
                None
            }
        };
    if !op.path.starts_with('/') {
        is.add(
            at("path"),
            &op.path,
            "must start with `/` (it is appended to base_url)",
        );
    }
    let path = template(is, at("path"), &op.path, &op.path);
    if let Some(Err(e)) = path.as_ref().map(Template::check_path) {
        is.add(at("path"), &op.path, e);
    }
    let query: Vec<(String, Template)> = op
        .query
        .iter()
        .filter_map(|(k, v)| template(is, at(&format!("query.{k}")), v, v).map(|t| (k.clone(), t)))
        .collect();
    for (k, v) in &op.headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(v).is_err()
        {
            is.add(
                at(&format!("headers.{k}")),
                k,
                "not a valid header name and value",
            );
        }
    }
    let body = op.body.as_ref().map(|b| {
        let json = serde_json::to_value(b).unwrap_or(serde_json::Value::Null);
        check_body_templates(is, &at("body"), &json, &mut needs);
        json
    });
    if body.is_some() && op.method == Method::Get {
        is.add(
            at("body"),
            "body",
            "a GET request has no body; use method = \"POST\"",
        );
    }

    let mut status = StatusMap::default();
    for (outcome, codes) in op.status.entries() {
        for &code in codes {
            if !(100..=599).contains(&code) {
                is.add(
                    at("status"),
                    &code.to_string(),
                    format!("{code} is not an HTTP status"),
                );
            } else if let Some(prev) = status.insert(code, outcome) {
                is.add(
                    at("status"),
                    &code.to_string(),
                    format!(
                        "{code} is listed as both {} and {}",
                        prev.as_str(),
                        outcome.as_str()
                    ),
                );
            }
        }
    }
    let rules = op
        .rules
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            if r.header_equals.is_some() && r.header.is_none() {
                is.add(
                    at(&format!("rules[{i}]")),
                    "header_equals",
                    "header_equals needs header = \"...\"",
                );
                return None;
            }
            if r.status.is_empty() && r.body_contains.is_none() && r.header.is_none() {
                is.add(
                    at(&format!("rules[{i}]")),
                    "outcome",
                    "a rule needs status, body_contains or header",
                );
                return None;
            }
            Some(ResponseRule {
                status: r.status.clone(),
                body_contains: r.body_contains.as_ref().map(|s| s.to_lowercase()),
                header: r.header.clone(),
                header_equals: r.header_equals.clone(),
                outcome: r.outcome,
            })
        })
        .collect();

    let jsonpath =
        |is: &mut Issues<'_>, key: String, p: &str| match serde_json_path::JsonPath::parse(p) {
            Ok(jp) => Some(jp),
            Err(e) => {
                is.add(key, p, format!("`{p}` is not an RFC 9535 JSONPath: {e}"));
                None
            }
        };
    let found_if = op
        .found_if
        .as_ref()
        .and_then(|p| jsonpath(is, at("found_if"), p));
    let confidence = op.confidence.as_ref().map(|c| {
        let scale = c.scale.unwrap_or(1.0);
        if !(scale > 0.0 && scale.is_finite()) {
            is.add(at("confidence.scale"), "scale", "must be a positive number");
        }
        if c.default.is_some_and(|d| !(0.0..=1.0).contains(&d)) {
            is.add(
                at("confidence.default"),
                "default",
                "must be between 0 and 1",
            );
        }
        Confidence {
            path: c
                .path
                .as_ref()
                .and_then(|p| jsonpath(is, at("confidence.path"), p)),
            scale: if scale > 0.0 { scale } else { 1.0 },
            default: c.default,
        }
    });
    let mut response = Vec::new();
    for (field, source) in &op.response {
        if kind == ConnectorKind::Enrichment && !is_canonical(field) {
            is.add(
                at(&format!("response.\"{field}\"")),
                field,
                format!(
                    "`{field}` is not an enriched field; use company.{{{}}} or person.{{{}}}",
                    COMPANY_FIELDS.join(","),
                    PERSON_FIELDS.join(",")
                ),
            );
            continue;
        }
        match FieldMap::compile(field, source) {
            Ok(m) => response.push(m),
            Err(e) => is.add(at(&format!("response.\"{field}\"")), field, e),
        }
    }
    if kind == ConnectorKind::Enrichment && op.response.is_empty() {
        is.add(
            at("response"),
            &table,
            "an enrichment operation needs a response map (field = \"$.path\")",
        );
    }
    let own_spacing = op.own_rate_limit.as_ref().and_then(|r| {
        let per = is.duration(
            &at("own_rate_limit.per"),
            &r.per,
            Some(&r.per),
            Duration::ZERO,
        );
        if r.requests == 0 {
            is.add(
                at("own_rate_limit.requests"),
                "requests",
                "must be at least 1",
            );
            return None;
        }
        (!per.is_zero()).then(|| per / r.requests)
    });
    if is.list.len() > before {
        return None;
    }
    Some(Operation {
        name: name.to_string(),
        method: op.method,
        path: path?,
        query,
        headers: op
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        body,
        rules,
        status,
        found_if,
        confidence,
        response,
        needs,
        own_spacing,
    })
}

fn check_body_templates(
    is: &mut Issues<'_>,
    key: &str,
    v: &serde_json::Value,
    needs: &mut BTreeSet<&'static str>,
) {
    match v {
        serde_json::Value::String(s) => match Template::parse(s) {
            Ok(t) => needs.extend(t.variables()),
            Err(e) => is.add(key, s, e),
        },
        serde_json::Value::Array(a) => a
            .iter()
            .for_each(|x| check_body_templates(is, key, x, needs)),
        serde_json::Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| check_body_templates(is, &format!("{key}.{k}"), x, needs)),
        _ => {}
    }
}

fn is_canonical(field: &str) -> bool {
    match field.split_once('.') {
        Some(("company", f)) => COMPANY_FIELDS.contains(&f),
        Some(("person", f)) => PERSON_FIELDS.contains(&f),
        _ => false,
    }
}

/// Whether a templated path's source is valid JSONPath once filled (checked with a sample).
pub fn check_path_source(src: &PathSource) -> Result<(), String> {
    match src {
        PathSource::Fixed(_) => Ok(()),
        PathSource::Templated(t) => {
            let sample: super::http::template::Vars =
                t.variables().map(|v| (v, "x".to_string())).collect();
            let text = t
                .render(&sample, super::http::template::Escape::JsonString)
                .map_err(|v| format!("missing {v}"))?;
            serde_json_path::JsonPath::parse(&text)
                .map(|_| ())
                .map_err(|e| format!("not an RFC 9535 JSONPath once filled: {e}"))
        }
    }
}
