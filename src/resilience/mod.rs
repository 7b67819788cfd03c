//! Resilience around every upstream call, one behaviour per file, composed once in
//! [`stack`] and applied in one order (enrichment and CRM calls alike):
//! cache → (the waterfall's fallback chain) → park → breaker → budget → retry → rate
//! limiter → timeout → HTTP. CRM calls skip the cache (a record is stale as soon as someone
//! edits it) and the breaker (a CRM's refusal is about the lead).
//!
//! - [`stack`]   — the composition: park → breaker → budget → retry → limiter around an attempt
//! - [`cache`]   — answers by key with a TTL, a shorter negative TTL, a size bound, and
//!   coalescing of concurrent misses into one upstream call (moka), behind a small trait
//! - [`limit`]   — burst and daily request limits (governor GCRA), waiting for a permit,
//!   slowing down on `Retry-After` and on the vendor's remaining-quota headers
//! - [`retry`]   — bounded exponential backoff with jitter (backon), only for retryable errors
//! - [`breaker`] — a circuit breaker per provider: open after repeated failures, half-open later
//! - [`budget`]  — a daily credit budget per provider, reserved before a call, charged after
//! - [`park`]    — a provider whose vendor quota is exhausted rests until the quota resets
//! - [`shared`]  — daily caps, credit budgets and vendor pauses shared by replicas (Redis or
//!   the store)
//! - [`redis`]   — shared by replicas: an L2 cache and a GCRA quota per provider in Redis,
//!   falling back to the local cache and a local share of the quota when Redis is away
//!
//! Nothing here knows about leads, vendors or HTTP: the connector decides *whether* an
//! outcome is retryable or a failure; these modules decide *how* to wait, retry and give up.
//! Time is `tokio::time` (so tests run with a paused clock) except for calendar days, which
//! come from a [`WallClock`].

pub mod breaker;
pub mod budget;
pub mod cache;
pub mod limit;
pub mod park;
pub mod redis;
pub mod retry;
pub mod shared;
pub mod stack;

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// The calendar clock, for daily budgets and limits (UTC days). Injected so tests can cross
/// midnight without waiting for it.
pub type WallClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The real calendar clock.
pub fn system_clock() -> WallClock {
    Arc::new(Utc::now)
}

/// The next UTC midnight after `now`: when daily budgets and daily limits reset.
pub fn next_utc_midnight(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now.date_naive() + chrono::Days::new(1);
    tomorrow
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now)
}
