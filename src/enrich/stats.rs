//! Per-provider counters: kept as atomics for `leadgate connectors` / `GET /v1/connectors`,
//! and emitted through the `metrics` crate (label `connector`) for Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Metric names, one vocabulary for every connector.
pub const CALLS: &str = "leadgate_connector_calls_total";
pub const HITS: &str = "leadgate_connector_hits_total";
pub const MISSES: &str = "leadgate_connector_misses_total";
pub const ERRORS: &str = "leadgate_connector_errors_total";
pub const SKIPS: &str = "leadgate_connector_skipped_total";
pub const CACHE_HITS: &str = "leadgate_connector_cache_hits_total";
pub const RATE_LIMITED: &str = "leadgate_connector_rate_limited_total";
/// A gauge (credits can be fractional), only ever increased.
pub const CREDITS: &str = "leadgate_connector_credits_spent";
pub const LATENCY: &str = "leadgate_connector_latency_seconds";

#[derive(Debug, Default)]
pub struct Stats {
    id: String,
    pub calls: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub errors: AtomicU64,
    pub cache_hits: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Stats {
    pub fn new(id: &str) -> Self {
        metrics::describe_counter!(CALLS, "Upstream calls per connector, retries included");
        metrics::describe_counter!(HITS, "Lookups that returned data");
        metrics::describe_counter!(
            MISSES,
            "Lookups without data (not found, pending, rejected)"
        );
        metrics::describe_counter!(ERRORS, "Lookups that failed, by error_kind");
        metrics::describe_counter!(SKIPS, "Lookups skipped, by reason");
        metrics::describe_counter!(
            CACHE_HITS,
            "Lookups answered from the cache or a shared call"
        );
        metrics::describe_counter!(RATE_LIMITED, "HTTP 429 answers received");
        metrics::describe_gauge!(CREDITS, "Credits spent since start");
        metrics::describe_histogram!(LATENCY, metrics::Unit::Seconds, "Upstream call latency");
        Self {
            id: id.to_string(),
            ..Self::default()
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn call(&self, latency: Duration, status: Option<u16>) {
        Self::bump(&self.calls);
        metrics::counter!(CALLS, "connector" => self.id.clone()).increment(1);
        metrics::histogram!(LATENCY, "connector" => self.id.clone()).record(latency.as_secs_f64());
        if status == Some(429) {
            Self::bump(&self.rate_limited);
            metrics::counter!(RATE_LIMITED, "connector" => self.id.clone()).increment(1);
        }
    }

    pub fn hit(&self, cached: bool) {
        Self::bump(&self.hits);
        metrics::counter!(HITS, "connector" => self.id.clone()).increment(1);
        self.cached(cached);
    }

    pub fn miss(&self, cached: bool) {
        Self::bump(&self.misses);
        metrics::counter!(MISSES, "connector" => self.id.clone()).increment(1);
        self.cached(cached);
    }

    pub fn error(&self, kind: &'static str) {
        Self::bump(&self.errors);
        metrics::counter!(ERRORS, "connector" => self.id.clone(), "error_kind" => kind)
            .increment(1);
    }

    pub fn skip(&self, reason: &'static str) {
        metrics::counter!(SKIPS, "connector" => self.id.clone(), "reason" => reason).increment(1);
    }

    pub fn credits(&self, credits: f64) {
        if credits > 0.0 {
            metrics::gauge!(CREDITS, "connector" => self.id.clone()).increment(credits);
        }
    }

    fn cached(&self, cached: bool) {
        if cached {
            Self::bump(&self.cache_hits);
            metrics::counter!(CACHE_HITS, "connector" => self.id.clone()).increment(1);
        }
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
