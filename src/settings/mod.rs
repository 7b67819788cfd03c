//! Settings: `config/leadgate.toml` read with the `config` crate (file, then
//! `LEADGATE__SECTION__KEY` environment overrides, then `${ENV_VAR}` secrets), checked into
//! [`Settings`] with every relative path resolved against the config file's folder.
//!
//! Loading the rule files (`scoring.toml`, `routing.toml`) belongs to their stages; this
//! module only knows where they are. Every problem is reported as a [`ConfigIssue`] naming
//! the file and key, and all of them at once.

mod interpolate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default listen address: loopback only, so a fresh install is never exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default request body limit: a lead with many events fits easily; 64 KiB more is abuse.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;
/// Default number of queue workers: enrichment waits on the network, so more than cores.
pub const DEFAULT_WORKERS: usize = 8;
/// Default header-read timeout: a real client sends its request head in milliseconds; ten
/// seconds outwaits a slow mobile link, and bounds how long a silent or idle connection holds
/// a file descriptor.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default body-read timeout: a 256 KiB body at a slow 10 KiB/s still arrives in time.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on open connections: under the common 20,000 open-files limit with room for
/// the store, upstream pools and logs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default cap on one peer address's connections: a proxy or busy client fits, and one
/// attacker cannot take the whole server cap alone.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 1024;
/// Default webhook requests a second from one peer address (the burst on top of it below):
/// CRMs deliver in batches far below this, a flood of forged or unknown webhooks is cut off.
pub const DEFAULT_WEBHOOK_RATE: u32 = 50;
/// Default webhook burst from one peer address: a CRM's retry storm after an outage fits.
pub const DEFAULT_WEBHOOK_BURST: u32 = 200;
/// Default job lease: a job claimed by a worker that died returns to the queue after this.
pub const DEFAULT_LEASE: &str = "60s";

/// One thing wrong with the configuration, with where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    pub file: String,
    /// The line in the file, when known.
    pub line: Option<usize>,
    /// The key or rule at fault (`storage.url`, `rule "west-ae" when`).
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.file, self.key, self.reason),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.reason),
        }
    }
}

/// Every issue found while loading, so an admin fixes them in one pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    pub fn one(file: impl Into<String>, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self(vec![ConfigIssue {
            file: file.into(),
            line: None,
            key: key.into(),
            reason: reason.into(),
        }])
    }
}

/// `config/leadgate.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadgateConfig {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    /// Where provider quotas are counted: in this process, or in Redis for all replicas.
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub normalize: NormalizeConfig,
    #[serde(default)]
    pub enrichment: EnrichmentConfig,
    /// Per-provider settings: credentials, files, overrides (`[providers.local_file]`).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Intake beside the API and webhooks: `[intake.poll.ID]` polls a CRM for changes.
    #[serde(default)]
    pub intake: crate::crm::config::IntakeConfig,
    /// `[crm] batch_wait / batch_size`: CRM writes grouped into batch calls (crate::crm::batching).
    #[serde(default)]
    pub crm: crate::crm::config::CrmBatchConfig,
    /// CRMs allowed to call `POST /v1/webhooks/{connector}`, with their secrets.
    #[serde(default)]
    pub webhooks: crate::webhook::WebhooksConfig,
    /// The scoring rules file.
    #[serde(default = "default_scoring")]
    pub scoring: PathBuf,
    /// The routing rules file.
    #[serde(default = "default_routing")]
    pub routing: PathBuf,
    /// Where the connector manifests live.
    #[serde(default = "default_connectors")]
    pub connectors: PathBuf,
    /// The `[[alert]]` file (issue 25); unset, `alerts.toml` beside this file is read when
    /// it exists (`crate::alert::config`).
    #[serde(default)]
    pub alerts: Option<PathBuf>,
    /// `[rescore]`: the sweep that scores stored people again (issue 25).
    #[serde(default)]
    pub rescore: crate::rescore::config::RescoreConfig,
}

fn default_scoring() -> PathBuf {
    "scoring.toml".into()
}
fn default_routing() -> PathBuf {
    "routing.toml".into()
}
fn default_connectors() -> PathBuf {
    "../connectors".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Bearer tokens accepted on `/v1` routes; none means loopback-only.
    #[serde(default)]
    pub api_tokens: Vec<String>,
    /// Which of `api_tokens` may see full email addresses (the console and `GET /v1/leads`,
    /// `GET /v1/review`); every other token sees them masked (`a***@acme.io`).
    #[serde(default)]
    pub pii_tokens: Vec<String>,
    /// Queue workers in this process; 0 makes an intake-only replica.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long a claimed job is held before another worker may take it.
    #[serde(default = "default_lease")]
    pub lease: String,
    /// Threads serving HTTP, each with its connections; 0 is one per CPU core.
    #[serde(default)]
    pub http_threads: usize,
    /// How long a connection may take to send a request head, counted from when it is ready
    /// for one: also how long an idle keep-alive connection is kept (`10s`).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: String,
    /// How long a request body may take to arrive (`30s`); slower is 408.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: String,
    /// Open connections in all; more are answered 503 and closed. Also kept under the
    /// process's open-files limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections from one peer address; 0 is no per-address cap (behind a proxy).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: usize,
    /// Webhook requests a second from one peer address; 0 turns the limit off.
    #[serde(default = "default_webhook_rate")]
    pub webhook_rate_per_second: u32,
    /// Webhook requests from one peer address allowed back to back above the rate.
    #[serde(default = "default_webhook_burst")]
    pub webhook_burst: u32,
    /// Where people reach this server's console (`https://leadgate.example.com`): alerts
    /// link to a lead's page under it. Unset, alerts carry no link.
    #[serde(default)]
    pub public_url: Option<String>,
}

fn default_header_read_timeout() -> String {
    humantime::format_duration(DEFAULT_HEADER_READ_TIMEOUT).to_string()
}
fn default_body_read_timeout() -> String {
    humantime::format_duration(DEFAULT_BODY_READ_TIMEOUT).to_string()
}
fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}
fn default_max_connections_per_client() -> usize {
    DEFAULT_MAX_CONNECTIONS_PER_CLIENT
}
fn default_webhook_rate() -> u32 {
    DEFAULT_WEBHOOK_RATE
}
fn default_webhook_burst() -> u32 {
    DEFAULT_WEBHOOK_BURST
}

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}
fn default_body_limit() -> usize {
    DEFAULT_BODY_LIMIT
}
fn default_workers() -> usize {
    DEFAULT_WORKERS
}
fn default_lease() -> String {
    DEFAULT_LEASE.into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            body_limit: DEFAULT_BODY_LIMIT,
            api_tokens: Vec::new(),
            pii_tokens: Vec::new(),
            workers: DEFAULT_WORKERS,
            lease: default_lease(),
            http_threads: 0,
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            webhook_rate_per_second: DEFAULT_WEBHOOK_RATE,
            webhook_burst: DEFAULT_WEBHOOK_BURST,
            public_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH` (relative to the config folder) or `postgres://...`.
    #[serde(default = "default_storage_url")]
    pub url: String,
}

fn default_storage_url() -> String {
    "sqlite://leadgate.db".into()
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: default_storage_url(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Most entries kept in memory, across providers.
    #[serde(default = "default_cache_capacity")]
    pub capacity: u64,
    /// How long a found record stays fresh (`7d`).
    #[serde(default = "default_ttl")]
    pub ttl: String,
    /// How long a "not found" is remembered; shorter, since vendors add companies.
    #[serde(default = "default_negative_ttl")]
    pub negative_ttl: String,
    /// Optional shared L2 cache (`redis://...`).
    #[serde(default)]
    pub redis: Option<String>,
}

fn default_cache_capacity() -> u64 {
    100_000
}
fn default_ttl() -> String {
    "7d".into()
}
fn default_negative_ttl() -> String {
    "1d".into()
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: default_cache_capacity(),
            ttl: default_ttl(),
            negative_ttl: default_negative_ttl(),
            redis: None,
        }
    }
}

/// `[rate_limit]`: how provider quotas are shared when several replicas run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// `local` (default): each process counts its own calls. `redis`: one GCRA limit per
    /// provider in Redis, shared by every replica.
    #[serde(default)]
    pub backend: RateLimitBackend,
    /// The Redis URL for the shared limit; defaults to `[cache] redis`.
    #[serde(default)]
    pub redis: Option<String>,
    /// How many replicas share each quota: while Redis is unreachable each one keeps to
    /// `quota / replicas`, so together they still stay under it.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
}

fn default_replicas() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    #[default]
    Local,
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Free webmail domains, one a line.
    #[serde(default = "default_free")]
    pub free_email_domains: PathBuf,
    /// Disposable email domains, one a line.
    #[serde(default = "default_disposable")]
    pub disposable_email_domains: PathBuf,
}

fn default_free() -> PathBuf {
    "free-email-domains.txt".into()
}
fn default_disposable() -> PathBuf {
    "disposable-email-domains.txt".into()
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            free_email_domains: default_free(),
            disposable_email_domains: default_disposable(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichmentConfig {
    /// Providers in the order they are asked.
    #[serde(default)]
    pub waterfall: Vec<String>,
    /// Stop asking once all of these fields are filled.
    #[serde(default)]
    pub stop_when: Vec<String>,
    /// Per-field provider order overrides: `{ field = "company.employees", order = [...] }`.
    #[serde(default)]
    pub field_order: Vec<FieldOrder>,
    /// Lowest confidence (0–1) accepted from any provider unless its own
    /// `[providers.ID] min_confidence` says otherwise.
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// Fields every answer must hold to count (a provider's `required_fields` replaces it).
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// Reject an answer whose `company.domain` is not the lead's domain (default true).
    #[serde(default = "default_match_domain")]
    pub match_domain: bool,
}

fn default_match_domain() -> bool {
    true
}

impl Default for EnrichmentConfig {
    fn default() -> Self {
        Self {
            waterfall: Vec::new(),
            stop_when: Vec::new(),
            field_order: Vec::new(),
            min_confidence: None,
            required_fields: Vec::new(),
            match_domain: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldOrder {
    pub field: String,
    pub order: Vec<String>,
}

/// Settings for one provider, beside its manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// A data file (the local file provider).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The API key or token (`${CLEARBIT_API_KEY}`).
    #[serde(default)]
    pub api_key: Option<String>,
    /// Override of the manifest's base URL (tests, proxies, EU endpoints).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Override of the manifest's rate limit, in requests per second.
    #[serde(default)]
    pub rate_limit_per_second: Option<f64>,
    /// Daily credit budget; the provider is skipped once it is spent.
    #[serde(default)]
    pub daily_budget: Option<f64>,
    /// Lowest confidence accepted; a lower one counts as a miss.
    #[serde(default)]
    pub min_confidence: Option<f64>,
    /// The second secret for HTTP Basic auth (the password, or the user name); for OAuth 2.0
    /// the client secret (`api_key` is then the client id).
    #[serde(default)]
    pub api_secret: Option<String>,
    /// OAuth 2.0: a refresh token (`${SALESFORCE_REFRESH_TOKEN}`); without one the
    /// client-credentials grant is used.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// OAuth 2.0: override of the manifest's token URL (a My Domain or sandbox URL).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Override of the manifest's per-attempt timeout (`5s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Override of the manifest's burst: requests allowed back to back.
    #[serde(default)]
    pub burst: Option<u32>,
    /// Override of the manifest's daily request cap (requests per UTC day).
    #[serde(default)]
    pub daily_limit: Option<u32>,
    /// Fields an answer must hold to count; one without them is a miss.
    #[serde(default)]
    pub required_fields: Option<Vec<String>>,
    /// Whether the answer's `company.domain` must be the lead's (default: `[enrichment]`).
    #[serde(default)]
    pub match_domain: Option<bool>,
    /// Set while loading when `api_key`/`api_secret` names an environment variable that is
    /// not set: the provider is then reported `not_configured`, with this reason.
    #[serde(skip)]
    pub unset_secret: Option<String>,
}

/// `[delivery]`: the target CRM, field mappings with write policies, sequence ids
/// (defined beside the delivery stage, in `crate::crm::config`).
pub use crate::crm::config::DeliveryConfig;

/// The checked settings, paths resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: LeadgateConfig,
    /// The config file this came from.
    pub file: PathBuf,
    /// Its folder: relative paths resolve against it.
    pub dir: PathBuf,
    pub lease: Duration,
    /// `[server] header_read_timeout` and `body_read_timeout`, parsed.
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Settings {
    /// Loads `path`, applies `LEADGATE__` overrides and `${ENV}` secrets.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        Self::load_with_env(path, std::env::vars().collect())
    }

    /// As [`Settings::load`], with the environment given (tests).
    pub fn load_with_env(
        path: &Path,
        env: std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::one(&file, "-", format!("cannot read the config file: {e}"))
        })?;
        let overrides: config::Map<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("LEADGATE__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let built = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("LEADGATE")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("server.api_tokens")
                    .with_list_parse_key("server.pii_tokens")
                    .with_list_parse_key("enrichment.waterfall")
                    .with_list_parse_key("enrichment.stop_when")
                    .try_parsing(true)
                    .source(Some(overrides)),
            )
            .build()
            .map_err(|e| ConfigErrors::one(&file, "-", e.to_string()))?;
        let mut value: serde_json::Value = built
            .try_deserialize()
            .map_err(|e| ConfigErrors::one(&file, "-", e.to_string()))?;
        // A provider secret whose variable is not set leaves that provider unconfigured
        // (skipped as `not_configured`, shown by `leadgate connectors`) instead of stopping
        // leadgate: the waterfall runs on without it. Any other missing variable is an error.
        let (unset_secrets, fatal): (Vec<_>, Vec<_>) =
            match interpolate::interpolate(&mut value, &env) {
                Ok(()) => (Vec::new(), Vec::new()),
                Err(issues) => issues
                    .into_iter()
                    .partition(|(key, _)| provider_secret(key).is_some()),
            };
        if !fatal.is_empty() {
            return Err(ConfigErrors(
                fatal
                    .into_iter()
                    .map(|(key, reason)| ConfigIssue {
                        file: file.clone(),
                        line: None,
                        key,
                        reason,
                    })
                    .collect(),
            ));
        }
        for (key, _) in &unset_secrets {
            if let Some((id, field)) = provider_secret(key) {
                value["providers"][id][field] = serde_json::Value::Null;
            }
        }
        let mut config: LeadgateConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigErrors::one(&file, key, e.into_inner().to_string())
        })?;
        for (key, reason) in unset_secrets {
            if let Some(p) = provider_secret(&key).and_then(|(id, _)| config.providers.get_mut(id))
            {
                p.unset_secret = Some(format!("{key}: {reason}"));
            }
        }
        let weak = weak_secrets(&config);
        if !weak.is_empty() {
            return Err(ConfigErrors(
                weak.into_iter()
                    .map(|(key, reason)| ConfigIssue {
                        file: file.clone(),
                        line: None,
                        key,
                        reason,
                    })
                    .collect(),
            ));
        }
        let lease = humantime::parse_duration(&config.server.lease).map_err(|e| {
            ConfigErrors::one(&file, "server.lease", format!("not a duration: {e}"))
        })?;
        let timeout = |key: &str, value: &str| {
            parse_duration(&file, key, value).map_err(|issue| ConfigErrors(vec![issue]))
        };
        let header_read_timeout = timeout(
            "server.header_read_timeout",
            &config.server.header_read_timeout,
        )?;
        let body_read_timeout =
            timeout("server.body_read_timeout", &config.server.body_read_timeout)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            config,
            file: path.to_path_buf(),
            dir,
            lease,
            header_read_timeout,
            body_read_timeout,
        })
    }

    /// A path from the config, resolved against the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The storage URL with a relative SQLite path resolved against the config folder.
    pub fn storage_url(&self) -> String {
        let url = &self.config.storage.url;
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && path != ":memory:" => {
                format!("sqlite://{}", self.resolve(Path::new(path)).display())
            }
            _ => url.clone(),
        }
    }

    pub fn file_name(&self) -> String {
        self.file.display().to_string()
    }
}

/// Fills `${NAME}` in every string of `value` from `env`, as the settings do; (key, reason)
/// for each variable not set. For files read beside the settings (`alerts.toml`).
pub fn interpolate_secrets(
    value: &mut serde_json::Value,
    env: &std::collections::HashMap<String, String>,
) -> Result<(), Vec<(String, String)>> {
    interpolate::interpolate(value, env)
}

/// Empty or short API tokens and webhook secrets: each would let a forged request in.
fn weak_secrets(config: &LeadgateConfig) -> Vec<(String, String)> {
    let min = crate::webhook::MIN_SECRET_LEN;
    let mut out: Vec<(String, String)> = config
        .server
        .api_tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| t.len() < min)
        .map(|(i, t)| {
            let reason = if t.trim().is_empty() {
                "is empty: it would accept `Bearer ` with nothing after it".to_string()
            } else {
                format!("is {} characters; use at least {min}", t.len())
            };
            (format!("server.api_tokens[{i}]"), reason)
        })
        .collect();
    out.extend(config.webhooks.weak_secrets());
    out
}

/// `providers.ID.api_key` (or `api_secret`) → (ID, field).
fn provider_secret(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("providers.")?;
    let (id, field) = rest.rsplit_once('.')?;
    matches!(field, "api_key" | "api_secret" | "refresh_token").then_some((id, field))
}

/// A duration from config (`7d`, `90s`), with the key named on error.
pub fn parse_duration(file: &str, key: &str, value: &str) -> Result<Duration, ConfigIssue> {
    humantime::parse_duration(value).map_err(|e| ConfigIssue {
        file: file.into(),
        line: None,
        key: key.into(),
        reason: format!("`{value}` is not a duration ({e}); write e.g. 90s, 4h, 7d"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("leadgate.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_shipped_default_loads() {
        let s = Settings::load_with_env(Path::new("config/leadgate.toml"), HashMap::new()).unwrap();
        assert_eq!(s.config.server.listen, DEFAULT_LISTEN);
        assert!(s.storage_url().starts_with("sqlite://config/"));
    }

    #[test]
    fn environment_overrides_and_secrets_apply() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[server]\nlisten = \"127.0.0.1:1\"\n[providers.clearbit]\napi_key = \"${CB_KEY}\"\n",
        );
        let env = HashMap::from([
            (
                "LEADGATE__SERVER__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
            ("LEADGATE__SERVER__WORKERS".to_string(), "3".to_string()),
            ("CB_KEY".to_string(), "sk_test".to_string()),
        ]);
        let s = Settings::load_with_env(&p, env).unwrap();
        assert_eq!(s.config.server.listen, "127.0.0.1:9999");
        assert_eq!(s.config.server.workers, 3);
        assert_eq!(
            s.config.providers["clearbit"].api_key.as_deref(),
            Some("sk_test")
        );
    }

    #[test]
    fn a_missing_secret_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "[storage]\nurl = \"${NOPE_NOT_SET}\"\n");
        let err = Settings::load_with_env(&p, HashMap::new()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("storage.url"), "{text}");
        assert!(text.contains("NOPE_NOT_SET"), "{text}");
    }

    #[test]
    fn a_missing_provider_key_leaves_the_provider_unconfigured() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[providers.clearbit]\napi_key = \"${NOPE_NOT_SET}\"\n",
        );
        let s = Settings::load_with_env(&p, HashMap::new()).unwrap();
        let clearbit = &s.config.providers["clearbit"];
        assert_eq!(clearbit.api_key, None);
        assert!(clearbit
            .unset_secret
            .as_deref()
            .unwrap()
            .contains("NOPE_NOT_SET"));
    }

    #[test]
    fn empty_or_short_secrets_are_load_errors_naming_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[server]\napi_tokens = [\"\", \"short\"]\n\
             [webhooks.hubspot]\nclient_secret = \"\"\n\
             [webhooks.salesforce]\norganization_id = \"\"\ntoken = \"\"\n\
             [webhooks.pipedrive]\nusername = \"\"\npassword = \"\"\n",
        );
        let err = Settings::load_with_env(&p, HashMap::new()).unwrap_err();
        let keys: Vec<&str> = err.0.iter().map(|i| i.key.as_str()).collect();
        for key in [
            "server.api_tokens[0]",
            "server.api_tokens[1]",
            "webhooks.hubspot.client_secret",
            "webhooks.salesforce.organization_id",
            "webhooks.salesforce.token",
            "webhooks.pipedrive.username",
            "webhooks.pipedrive.password",
        ] {
            assert!(keys.contains(&key), "{key} not in {keys:?}");
        }
        assert!(err.0.iter().all(|i| i.file == p.display().to_string()));
        // Good secrets load.
        let p = write(
            dir.path(),
            "[server]\napi_tokens = [\"0123456789abcdef\"]\n\
             [webhooks.salesforce]\norganization_id = \"00D000000000001AAA\"\ntoken = \"0123456789abcdef\"\n",
        );
        Settings::load_with_env(&p, HashMap::new()).unwrap();
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n",
        );
        let err = Settings::load_with_env(&p, HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }
}
