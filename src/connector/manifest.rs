//! Connector manifests (`connectors/*.toml`) as written, and their validation.
//!
//! A manifest is data: who the vendor is (`id`, `kind`), how to reach it (`base_url`,
//! `auth`, `timeout`), how hard to push it (`rate_limit`, `retry`, `breaker`), what a call
//! costs (`cost_per_call`, `billed`), and named operations — each a request template, ordered
//! response rules and a status map (what each HTTP status means), and a response map from
//! canonical field to an RFC 9535 JSONPath. Unknown keys are rejected; `version` says which
//! shape this is. Validation reports every issue at once, with file, line and key.
//!
//! Raw types (`*Config`) are only read here; [`super::Manifest`] is the checked form.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The manifest shape this build reads.
pub const MANIFEST_VERSION: u32 = 1;

/// A manifest as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfig {
    /// The manifest shape; must be 1.
    pub version: u32,
    /// The id used in `[enrichment] waterfall`, `[providers.ID]` and provenance.
    pub id: String,
    /// `enrichment`, `crm` or `nurture`.
    pub kind: ConnectorKind,
    /// A human name for reports.
    #[serde(default)]
    pub name: Option<String>,
    /// Where the vendor documents this API.
    #[serde(default)]
    pub docs: Option<String>,
    /// `http` (the default): the engine calls `base_url`. `csv_file`: a native reader of
    /// the file named in `[providers.ID] file`.
    #[serde(default)]
    pub driver: Driver,
    /// The API root, e.g. `https://api.peopledatalabs.com/v5`; `[providers.ID] base_url`
    /// overrides it.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Per attempt (`10s`).
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub breaker: Option<BreakerConfigRaw>,
    /// Credits one billed call costs.
    #[serde(default)]
    pub cost_per_call: f64,
    /// Which outcomes the vendor bills (default: `found`).
    #[serde(default)]
    pub billed: Option<Vec<BilledOutcome>>,
    /// For an enrichment connector: the operations run for each lead, in order (default:
    /// the only operation).
    #[serde(default)]
    pub enrich: Vec<String>,
    /// Named operations (`[operations.company_enrich]`).
    #[serde(default)]
    pub operations: BTreeMap<String, OperationConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Enrichment,
    Crm,
    Nurture,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Enrichment => "enrichment",
            ConnectorKind::Crm => "crm",
            ConnectorKind::Nurture => "nurture",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    #[default]
    Http,
    CsvFile,
}

/// How requests prove who we are. The secret is `[providers.ID] api_key` (and, for basic,
/// `api_secret`); it never appears in a manifest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// No credentials (a local mock, a public API).
    #[default]
    None,
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// The key in a header: `header = "X-Api-Key"`, optional `prefix`.
    ApiKeyHeader {
        header: String,
        #[serde(default)]
        prefix: Option<String>,
    },
    /// The key in a query parameter: `param = "api_key"`.
    ApiKeyQuery { param: String },
    /// HTTP Basic. By default the key is the user name and `api_secret` (or nothing) the
    /// password, as Clearbit takes it; `key_is_username = false` swaps them.
    Basic {
        #[serde(default = "default_true")]
        key_is_username: bool,
    },
    /// OAuth 2.0 bearer tokens from `token_url` (refresh-token or client-credentials grant),
    /// refreshed before `lifetime` runs out and on a 401, one refresh at a time
    /// (`crate::connector::oauth`).
    #[serde(rename = "oauth2")]
    OAuth2 {
        token_url: String,
        /// How long a token lives when the answer has no `expires_in` (Salesforce: org policy).
        #[serde(default)]
        lifetime: Option<String>,
    },
}

fn default_true() -> bool {
    true
}

/// `requests` per `per`, `burst` at once, `daily` per UTC day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub requests: u32,
    /// The window, as the vendor publishes it (`1s`, `10s`, `1m`).
    pub per: String,
    /// Requests allowed back to back (default 1: evenly spaced).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Requests per UTC day.
    #[serde(default)]
    pub daily: Option<u32>,
    /// Longest a lead waits for a permit before the provider is skipped (default 30s).
    #[serde(default)]
    pub max_wait: Option<String>,
    /// The vendor's remaining-quota headers, read after every response.
    #[serde(default)]
    pub headers: Vec<RemainingHeaderConfig>,
    /// The header carrying the wait on a 429 (default `Retry-After`).
    #[serde(default)]
    pub retry_after_header: Option<String>,
}

/// One remaining-quota header: `remaining` requests left in a window that resets per
/// `reset` (a header) or after `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemainingHeaderConfig {
    /// The header with the count left (`X-RateLimit-Remaining`).
    pub remaining: String,
    /// When the header's value is a JSON object (PDL: `{"minute":…, "day":…}`), the key.
    #[serde(default)]
    pub key: Option<String>,
    /// The header saying when the window resets.
    #[serde(default)]
    pub reset: Option<String>,
    /// How to read `reset`: `auto` (default: epoch seconds if large, else seconds from
    /// now, or a date), `epoch_seconds`, `seconds`, `milliseconds`.
    #[serde(default)]
    pub reset_unit: ResetUnit,
    /// The window's length, used when no reset header is present.
    pub window: String,
    /// A quota window (daily, monthly): at zero the provider is parked until it resets
    /// rather than slowed down.
    #[serde(default)]
    pub quota: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetUnit {
    #[default]
    Auto,
    EpochSeconds,
    Seconds,
    Milliseconds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (default 3).
    #[serde(default)]
    pub attempts: Option<usize>,
    #[serde(default)]
    pub min_delay: Option<String>,
    #[serde(default)]
    pub max_delay: Option<String>,
    /// Longest `Retry-After` waited out in place (default 30s).
    #[serde(default)]
    pub max_retry_after: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfigRaw {
    /// Consecutive failures that open the circuit (default 5).
    #[serde(default)]
    pub failures: Option<u32>,
    /// How long it stays open before a trial call (default 30s).
    #[serde(default)]
    pub cooldown: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BilledOutcome {
    Found,
    NotFound,
    Pending,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// One named operation: a request template and how to read the answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationConfig {
    #[serde(default)]
    pub method: Method,
    /// Appended to the base URL; `{domain}` and friends are URL-encoded as path segments.
    pub path: String,
    /// Query parameters; values may hold `{domain}`, `{email}`, `{company}`,
    /// `{first_name}`, `{last_name}` (URL-encoded).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra request headers (fixed values).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body template for POST/PUT/PATCH; string values may hold placeholders.
    #[serde(default)]
    pub body: Option<toml::Value>,
    /// Ordered rules checked before the status map; the first match decides.
    #[serde(default)]
    pub rules: Vec<ResponseRuleConfig>,
    /// What each HTTP status means.
    #[serde(default)]
    pub status: StatusMapConfig,
    /// A JSONPath that must select a non-null value for a 2xx to count as found (Apollo
    /// answers 200 with `organization: null` for an unknown domain).
    #[serde(default)]
    pub found_if: Option<String>,
    /// Where the vendor's confidence is, and how to scale it to 0–1.
    #[serde(default)]
    pub confidence: Option<ConfidenceConfig>,
    /// Canonical field → JSONPath (`"company.industry" = "$.category.industry"`), or a
    /// table `{ path, or = [...], as = "number" }`.
    #[serde(default)]
    pub response: BTreeMap<String, FieldMapConfig>,
    /// A limit of this operation's own, taken instead of the connector's `[rate_limit]`
    /// (HubSpot's CRM search endpoints have their own per-second limit).
    #[serde(default)]
    pub own_rate_limit: Option<OwnRateLimitConfig>,
}

/// `requests` per `per`, evenly spaced: no burst, because the vendor counts it per second.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnRateLimitConfig {
    pub requests: u32,
    pub per: String,
}

/// What an answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusOutcome {
    /// A record (the default for 2xx).
    Found,
    /// No record: a normal miss, cached for the negative TTL.
    NotFound,
    /// The vendor is still looking (Clearbit 202): a miss for now, not cached.
    Pending,
    /// Slow down: wait (`Retry-After`) and retry.
    RateLimited,
    /// Out of credits or over the plan's quota: park the provider until the quota resets.
    QuotaExhausted,
    /// The request was refused as invalid (the lead's data): a miss, not retried.
    Invalid,
    /// The key is wrong or lacks access: an error an admin must fix.
    AuthFailed,
    /// A transient vendor fault: retry with backoff.
    Retry,
}

impl StatusOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusOutcome::Found => "found",
            StatusOutcome::NotFound => "not_found",
            StatusOutcome::Pending => "pending",
            StatusOutcome::RateLimited => "rate_limited",
            StatusOutcome::QuotaExhausted => "quota_exhausted",
            StatusOutcome::Invalid => "invalid",
            StatusOutcome::AuthFailed => "auth_failed",
            StatusOutcome::Retry => "retry",
        }
    }
}

/// Which statuses mean what. Unlisted: 2xx found, 429 rate_limited, 401/403 auth_failed,
/// 408 and 5xx retry, other 4xx invalid.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusMapConfig {
    #[serde(default)]
    pub found: Vec<u16>,
    #[serde(default)]
    pub not_found: Vec<u16>,
    #[serde(default)]
    pub pending: Vec<u16>,
    #[serde(default)]
    pub rate_limited: Vec<u16>,
    #[serde(default)]
    pub quota_exhausted: Vec<u16>,
    #[serde(default)]
    pub invalid: Vec<u16>,
    #[serde(default)]
    pub auth_failed: Vec<u16>,
    #[serde(default)]
    pub retry: Vec<u16>,
}

impl StatusMapConfig {
    pub fn entries(&self) -> impl Iterator<Item = (StatusOutcome, &Vec<u16>)> {
        [
            (StatusOutcome::Found, &self.found),
            (StatusOutcome::NotFound, &self.not_found),
            (StatusOutcome::Pending, &self.pending),
            (StatusOutcome::RateLimited, &self.rate_limited),
            (StatusOutcome::QuotaExhausted, &self.quota_exhausted),
            (StatusOutcome::Invalid, &self.invalid),
            (StatusOutcome::AuthFailed, &self.auth_failed),
            (StatusOutcome::Retry, &self.retry),
        ]
        .into_iter()
    }
}

/// A rule: when the status (and optionally the body or a header) matches, the outcome.
/// For vendors that say "out of credits" and "invalid" with the same status (Apollo 422).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRuleConfig {
    /// Statuses this rule applies to (any when empty).
    #[serde(default)]
    pub status: Vec<u16>,
    /// The body contains this text (case-insensitive).
    #[serde(default)]
    pub body_contains: Option<String>,
    /// A response header, and the value it must have (`x-24-hour-requests-left` = `0`).
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub header_equals: Option<String>,
    pub outcome: StatusOutcome,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfidenceConfig {
    /// The JSONPath of the vendor's score (PDL `$.likelihood`).
    #[serde(default)]
    pub path: Option<String>,
    /// Divide the score by this to get 0–1 (PDL likelihood is 1–10: scale 10).
    #[serde(default)]
    pub scale: Option<f64>,
    /// The confidence when the answer carries none.
    #[serde(default)]
    pub default: Option<f64>,
}

/// A canonical field's source: a JSONPath, or a table with fallbacks and a conversion.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldMapConfig {
    Path(String),
    Table(FieldMapTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapTable {
    pub path: String,
    /// Paths tried in order when `path` selects nothing.
    #[serde(default)]
    pub or: Vec<String>,
    /// How to convert the value (`text` keeps it as is).
    #[serde(default, rename = "as")]
    pub convert: Convert,
    /// The vendor's vocabulary in the team's words, applied after `as`: keys compared
    /// without regard to case (`"computer software" = "Software"`); a value not listed
    /// passes through unchanged.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// The closed set of value conversions a response map may ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// As the vendor sent it (the first match).
    #[default]
    Keep,
    /// A string.
    Text,
    /// A number (`"83"` → 83).
    Number,
    /// A whole number (`"2015"` → 2015).
    Integer,
    /// Lower case text.
    Lowercase,
    /// Title Case text (`computer software` → `Computer Software`).
    Titlecase,
    /// A registrable domain from a URL or host (`https://www.acme.com/` → `acme.com`).
    Domain,
    /// Every match as a list.
    List,
    /// An amount of money from a number or a range (`$10M-$50M` → 10000000, the low end).
    Money,
    /// A two-letter country code from a code or an English name (`united states` → `US`).
    CountryCode,
}
