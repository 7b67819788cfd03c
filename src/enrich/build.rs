//! Building the waterfall's providers from settings: `[enrichment] waterfall` names them in
//! order, `connectors/ID.toml` says how to talk to each, `[providers.ID]` holds the key and
//! overrides. A provider listed without its key is built as [`NotConfigured`] (skipped for
//! every lead, shown by `leadgate connectors`), never an error: the shipped config lists the
//! API vendors and still runs offline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::http_provider::{HttpProvider, HttpProviderParts, SharedCache, FALLBACK_RATE_LIMIT};
use super::report::{Catalog, CatalogEntry};
use super::validate::Validation;
use super::{LocalFileProvider, NotConfigured, Provider};
use crate::connector::http::auth::Credentials;
use crate::connector::manifest::Driver;
use crate::connector::spec::{Manifest, RateLimitSpec, DEFAULT_RETRY_AFTER_HEADER};
use crate::connector::{HttpConnector, Registry};
use crate::resilience::cache::{CachePolicy, MokaCache};
use crate::resilience::limit::RateLimit;
use crate::resilience::{system_clock, WallClock};
use crate::settings::{parse_duration, ConfigIssue, ProviderSettings, RateLimitBackend, Settings};

/// What the enrich stage is built from.
pub struct Built {
    pub providers: Vec<Arc<dyn Provider>>,
    pub validation: HashMap<String, Validation>,
    pub catalog: Catalog,
    pub cache: SharedCache,
}

/// Builds every provider in the waterfall; returns every issue found.
pub fn providers(settings: &Settings) -> Result<Built, Vec<ConfigIssue>> {
    providers_with_clock(settings, system_clock())
}

/// As [`providers`], with the calendar clock given (tests that cross midnight).
pub fn providers_with_clock(
    settings: &Settings,
    clock: WallClock,
) -> Result<Built, Vec<ConfigIssue>> {
    let c = &settings.config;
    let file = settings.file_name();
    let issue = |key: &str, reason: String| ConfigIssue {
        file: file.clone(),
        line: None,
        key: key.into(),
        reason,
    };
    let dir = settings.resolve(&c.connectors);
    let (registry, manifest_issues) = if dir.is_dir() {
        Registry::load(&dir)
    } else {
        (Registry::default(), Vec::new())
    };
    let mut issues = manifest_issues;

    let mut duration = |key: &str, value: &str| match parse_duration(&file, key, value) {
        Ok(d) => Some(d),
        Err(e) => {
            issues.push(e);
            None
        }
    };
    let policy = CachePolicy {
        capacity: c.cache.capacity,
        ttl: duration("cache.ttl", &c.cache.ttl).unwrap_or(Duration::from_secs(7 * 86_400)),
        negative_ttl: duration("cache.negative_ttl", &c.cache.negative_ttl)
            .unwrap_or(Duration::from_secs(86_400)),
    };
    // Redis, when configured, is shared by the L2 cache and the replicas' quotas.
    let redis_url = c.rate_limit.redis.clone().or_else(|| c.cache.redis.clone());
    let link = match &redis_url {
        Some(url) => match crate::resilience::redis::RedisLink::new(url) {
            Ok(l) => Some(l),
            Err(e) => {
                issues.push(issue("cache.redis", e.to_string()));
                None
            }
        },
        None if c.rate_limit.backend == RateLimitBackend::Redis => {
            issues.push(issue(
                "rate_limit.backend",
                "backend = \"redis\" needs a Redis URL: set [rate_limit] redis or [cache] redis"
                    .into(),
            ));
            None
        }
        None => None,
    };
    let cache: SharedCache = match (&c.cache.redis, &link) {
        (Some(_), Some(link)) => Arc::new(crate::resilience::redis::TieredCache::new(
            MokaCache::new(policy),
            link.clone(),
        )),
        _ => Arc::new(MokaCache::new(policy)),
    };
    let shared_limits = (c.rate_limit.backend == RateLimitBackend::Redis)
        .then(|| link.clone())
        .flatten();
    let client = crate::connector::http::client();
    let limits = limits_backend(settings, link.as_ref());

    if let Some(m) = c
        .enrichment
        .min_confidence
        .filter(|m| !(0.0..=1.0).contains(m))
    {
        issues.push(issue(
            "enrichment.min_confidence",
            format!("{m} is not between 0 and 1"),
        ));
    }
    let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
    let mut validation = HashMap::new();
    let mut seen = HashSet::new();
    let none = ProviderSettings::default();
    for (i, id) in c.enrichment.waterfall.iter().enumerate() {
        let key = format!("enrichment.waterfall[{i}]");
        if !seen.insert(id.clone()) {
            issues.push(issue(&key, format!("`{id}` is listed twice")));
            continue;
        }
        let ps = c.providers.get(id).unwrap_or(&none);
        let at = |k: &str| format!("providers.{id}.{k}");
        if let Some(m) = ps.min_confidence.filter(|m| !(0.0..=1.0).contains(m)) {
            issues.push(issue(
                &at("min_confidence"),
                format!("{m} is not between 0 and 1"),
            ));
        }
        validation.insert(
            id.clone(),
            Validation {
                match_domain: ps.match_domain.unwrap_or(c.enrichment.match_domain),
                min_confidence: ps.min_confidence.or(c.enrichment.min_confidence),
                required_fields: ps
                    .required_fields
                    .clone()
                    .unwrap_or_else(|| c.enrichment.required_fields.clone()),
            },
        );
        let manifest = registry.get(id);
        match manifest.map(|m| m.driver) {
            None | Some(Driver::CsvFile) => match (&ps.file, manifest) {
                (Some(path), _) => match LocalFileProvider::from_csv(id, &settings.resolve(path)) {
                    Ok(p) => providers.push(Arc::new(p)),
                    Err(e) => issues.push(issue(&at("file"), e.to_string())),
                },
                (None, Some(_)) => issues.push(issue(
                    &at("file"),
                    format!("connector `{id}` reads a CSV file: set file = \"...\""),
                )),
                (None, None) => {
                    let known = registry.ids();
                    let reason = if dir.is_dir() {
                        format!(
                            "no connector manifest with id `{id}` in {} (known: {}); add connectors/{id}.toml or a [providers.{id}] file",
                            dir.display(),
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        )
                    } else {
                        format!(
                            "the connectors folder {} cannot be read, so `{id}` has no manifest",
                            dir.display()
                        )
                    };
                    issues.push(issue(&key, reason));
                }
            },
            Some(Driver::Http) => {
                let Some(m) = manifest else { continue };
                let shared = shared_limits.as_ref().map(|l| {
                    Arc::new(crate::resilience::redis::SharedGcra::new(
                        l.clone(),
                        id,
                        &effective_limit(m, ps),
                        c.rate_limit.replicas,
                    ))
                });
                let share = limits.as_ref().map(|l| l.for_connector(id));
                match http_provider(
                    settings,
                    id,
                    m,
                    ps,
                    &cache,
                    &client,
                    clock.clone(),
                    (shared, share),
                ) {
                    Ok(p) => providers.push(p),
                    Err(mut e) => issues.append(&mut e),
                }
            }
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let catalog = catalog(settings, &registry);
    Ok(Built {
        providers,
        validation,
        catalog,
        cache,
    })
}

#[allow(clippy::too_many_arguments)]
fn http_provider(
    settings: &Settings,
    id: &str,
    m: &Arc<Manifest>,
    ps: &ProviderSettings,
    cache: &SharedCache,
    client: &reqwest::Client,
    clock: WallClock,
    (shared_limit, shared_limits): (
        Option<Arc<crate::resilience::redis::SharedGcra>>,
        Option<crate::resilience::shared::SharedHandle>,
    ),
) -> Result<Arc<dyn Provider>, Vec<ConfigIssue>> {
    let file = settings.file_name();
    let mut issues = Vec::new();
    let at = |k: &str| format!("providers.{id}.{k}");
    let limit = effective_limit(m, ps);
    let creds = Credentials {
        api_key: ps.api_key.clone(),
        api_secret: ps.api_secret.clone(),
    };
    if m.needs_key() && creds.key().is_none() {
        let why = match &ps.unset_secret {
            Some(reason) => reason.clone(),
            None => format!(
                "no API key: set [providers.{id}] api_key = \"${{{}_API_KEY}}\"",
                id.to_uppercase()
            ),
        };
        return Ok(Arc::new(NotConfigured::new(
            id,
            why,
            true,
            Some(limit.describe()),
        )));
    }
    let base_url = match &ps.base_url {
        Some(u) => match reqwest::Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Some(url)
            }
            _ => {
                issues.push(ConfigIssue {
                    file: file.clone(),
                    line: None,
                    key: at("base_url"),
                    reason: format!("`{u}` is not an http(s) URL with a host"),
                });
                None
            }
        },
        None => m.base_url.clone(),
    };
    let timeout = match &ps.timeout {
        Some(t) => parse_duration(&file, &at("timeout"), t)
            .map_err(|e| issues.push(e))
            .unwrap_or(m.timeout),
        None => m.timeout,
    };
    if ps
        .daily_budget
        .is_some_and(|b| !(b >= 0.0 && b.is_finite()))
    {
        issues.push(ConfigIssue {
            file: file.clone(),
            line: None,
            key: at("daily_budget"),
            reason: "must be zero or more credits".into(),
        });
    }
    if ps
        .rate_limit_per_second
        .is_some_and(|r| !(r > 0.0 && r.is_finite()))
    {
        issues.push(ConfigIssue {
            file,
            line: None,
            key: at("rate_limit_per_second"),
            reason: "must be a positive number of requests per second".into(),
        });
    }
    let Some(base_url) = base_url else {
        return Err(issues);
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let spec = RateLimitSpec {
        limit: limit.clone(),
        headers: m
            .rate_limit
            .as_ref()
            .map(|r| r.headers.clone())
            .unwrap_or_default(),
        retry_after_header: m.rate_limit.as_ref().map_or_else(
            || DEFAULT_RETRY_AFTER_HEADER.to_string(),
            |r| r.retry_after_header.clone(),
        ),
    };
    let connector = HttpConnector::new(
        m.clone(),
        base_url,
        creds,
        client.clone(),
        timeout,
        Some(spec),
    );
    Ok(Arc::new(HttpProvider::new(HttpProviderParts {
        connector,
        cache: cache.clone(),
        limit,
        retry: m.retry,
        breaker: m.breaker,
        daily_budget: ps.daily_budget,
        clock,
        shared_limit,
        shared_limits,
    })))
}

/// Where the replicas share daily caps, budgets and vendor pauses: Redis when configured
/// (`link`, or one made from `[rate_limit] redis` / `[cache] redis`),
/// else the store (a lazy pool: it connects on the first call, after the caller opened and
/// migrated the store; a process without one keeps to its own limits).
pub fn limits_backend(
    settings: &Settings,
    link: Option<&Arc<crate::resilience::redis::RedisLink>>,
) -> Option<Arc<crate::resilience::shared::SharedLimits>> {
    use crate::resilience::shared::{Backend, SharedLimits};
    let c = &settings.config;
    let own_link = match link {
        Some(_) => None,
        None => c
            .rate_limit
            .redis
            .as_ref()
            .or(c.cache.redis.as_ref())
            .and_then(|url| crate::resilience::redis::RedisLink::new(url).ok()),
    };
    match link.or(own_link.as_ref()) {
        Some(link) => Some(SharedLimits::new(Backend::Redis(link.clone()))),
        // A pool needs a runtime; a process without one (a config check) shares nothing.
        None if tokio::runtime::Handle::try_current().is_err() => None,
        None => crate::store::Store::open_lazy(&settings.storage_url())
            .ok()
            .map(|s| SharedLimits::new(Backend::Store(s))),
    }
}

/// The manifest's rate limit with `[providers.ID]` overrides applied.
pub fn effective_limit(m: &Manifest, ps: &ProviderSettings) -> RateLimit {
    let mut limit = m
        .rate_limit
        .as_ref()
        .map(|r| r.limit.clone())
        .unwrap_or_else(|| RateLimit::per(FALLBACK_RATE_LIMIT.0, FALLBACK_RATE_LIMIT.1));
    if let Some(r) = ps
        .rate_limit_per_second
        .filter(|r| *r > 0.0 && r.is_finite())
    {
        (limit.requests, limit.per) = if r >= 1.0 {
            (r.round() as u32, Duration::from_secs(1))
        } else {
            (1, Duration::from_secs_f64(1.0 / r))
        };
        limit.burst = limit.burst.min(limit.requests);
    }
    if let Some(b) = ps.burst {
        limit.burst = b.clamp(1, limit.requests);
    }
    if let Some(d) = ps.daily_limit {
        limit.daily = Some(d.max(1));
    }
    limit
}

/// What `leadgate connectors` reports for manifests and providers, known at build time.
fn catalog(settings: &Settings, registry: &Registry) -> Catalog {
    let c = &settings.config;
    let none = ProviderSettings::default();
    let mut entries: BTreeMap<String, CatalogEntry> = BTreeMap::new();
    for m in registry.manifests() {
        let ps = c.providers.get(&m.id).unwrap_or(&none);
        let key_present = ps.api_key.as_deref().is_some_and(|k| !k.trim().is_empty());
        entries.insert(
            m.id.clone(),
            CatalogEntry {
                id: m.id.clone(),
                name: m.name.clone(),
                kind: m.kind.as_str().to_string(),
                manifest: Some(m.file.display().to_string()),
                needs_key: m.needs_key(),
                key_present,
                has_settings: c.providers.contains_key(&m.id),
                rate_limit: (m.driver == Driver::Http).then(|| effective_limit(m, ps).describe()),
                daily_budget: ps.daily_budget,
                cost_per_call: m.cost_per_call,
            },
        );
    }
    for id in &c.enrichment.waterfall {
        entries.entry(id.clone()).or_insert_with(|| CatalogEntry {
            id: id.clone(),
            name: id.clone(),
            kind: "enrichment".into(),
            manifest: None,
            needs_key: false,
            key_present: false,
            has_settings: c.providers.contains_key(id),
            rate_limit: None,
            daily_budget: None,
            cost_per_call: 0.0,
        });
    }
    Catalog::new(
        entries.into_values().collect(),
        c.enrichment.waterfall.clone(),
    )
}
