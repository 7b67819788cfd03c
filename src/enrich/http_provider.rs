//! A manifest-driven HTTP provider: one connector behind the answer cache (with
//! coalescing) and the resilience stack (`resilience::stack`). Every attempt spends a limiter permit; a lead never fails because of it:
//! whatever happens becomes a [`ProviderAnswer`] for the waterfall.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::stats::Stats;
use super::{Lookup, Provider, ProviderAnswer, ProviderStatus, Reply, Skip, SkipKind};
use crate::connector::http::response::Mapped;
use crate::connector::http::template::Vars;
use crate::connector::manifest::BilledOutcome;
use crate::connector::spec::Operation;
use crate::connector::{Answer, ConnectorError, ErrorKind, HttpConnector, Prepared};
use crate::resilience::breaker::{Breaker, BreakerConfig};
use crate::resilience::budget::Budget;
use crate::resilience::cache::{AnswerCache, Freshness};
use crate::resilience::limit::{Limiter, RateLimit};
use crate::resilience::park::Park;
use crate::resilience::retry::RetryPolicy;
use crate::resilience::stack::{CallError, Refusal, Stack};
use crate::resilience::{next_utc_midnight, WallClock};

/// A limit for providers whose manifest has none: generous, but never unbounded.
pub const FALLBACK_RATE_LIMIT: (u32, Duration) = (10, Duration::from_secs(1));

/// Why a lookup produced no answer worth keeping: shared with coalesced callers, never cached.
#[derive(Debug, Clone)]
pub enum Halt {
    Skip(Skip),
    Pending,
    Failed(ConnectorError),
}

/// The cache the HTTP providers share: raw answers by provider + request.
pub type SharedCache = Arc<dyn AnswerCache<Answer, Halt>>;

/// A found record mentions a person when its body names them (a domain search listing
/// employees): erasure drops it.
impl crate::resilience::cache::Mentions for Answer {
    fn mentions(&self, needle: &str) -> bool {
        match self {
            Answer::Found(body) => crate::resilience::cache::mentions_text(body.text(), needle),
            Answer::NotFound | Answer::Pending => false,
        }
    }
}

/// The pieces of one HTTP provider, as built from a manifest and `[providers.ID]`.
pub struct HttpProviderParts {
    pub connector: HttpConnector,
    pub cache: SharedCache,
    pub limit: RateLimit,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    pub daily_budget: Option<f64>,
    pub clock: WallClock,
    /// The provider's quota shared with other replicas (Redis), when configured.
    pub shared_limit: Option<Arc<crate::resilience::redis::SharedGcra>>,
    /// The daily cap, budget and vendor pauses shared with other replicas (Redis or store).
    pub shared_limits: Option<crate::resilience::shared::SharedHandle>,
}

pub struct HttpProvider {
    connector: HttpConnector,
    ops: Vec<String>,
    cost: f64,
    cache: SharedCache,
    stack: Stack,
    stats: Stats,
}

impl HttpProvider {
    pub fn new(parts: HttpProviderParts) -> Self {
        let m = parts.connector.manifest();
        let id = m.id.clone();
        Self {
            ops: m.enrich.clone(),
            cost: m.cost_per_call,
            cache: parts.cache,
            stack: Stack {
                park: Park::with_clock(parts.clock.clone())
                    .with_shared_limits(parts.shared_limits.clone()),
                breaker: Some(Breaker::new(parts.breaker)),
                budget: Budget::with_clock(parts.daily_budget, parts.clock.clone())
                    .with_shared_limits(parts.shared_limits.clone()),
                retry: parts.retry,
                limiter: Limiter::with_wall_clock(parts.limit, parts.clock)
                    .with_shared(parts.shared_limit)
                    .with_shared_limits(parts.shared_limits),
            },
            stats: Stats::new(&id),
            connector: parts.connector,
        }
    }

    fn id_str(&self) -> &str {
        self.connector.id()
    }

    async fn ask(&self, lookup: &Lookup) -> Reply {
        let vars = vars(lookup);
        let mut merged = Mapped::default();
        let mut found = false;
        let mut all_cached = true;
        let mut missing: Option<&'static str> = None;
        let mut asked = 0;
        let mut pending = false;
        for name in &self.ops {
            let Some(op) = self.connector.operation(name) else {
                continue;
            };
            let prepared = match self.connector.prepare(op, &vars) {
                Ok(p) => p,
                Err(m) => {
                    missing.get_or_insert(m.0);
                    continue;
                }
            };
            asked += 1;
            let key = format!("{}\u{1f}{}", self.id_str(), prepared.key());
            let fetched = self
                .cache
                .get_or_fetch(key, Box::pin(self.fetch(op, &prepared)))
                .await;
            match fetched {
                Ok(c) => {
                    all_cached &= c.cached;
                    match c.value {
                        Answer::Found(body) => {
                            found = true;
                            merge(&mut merged, op.map(&body.value(), &vars));
                        }
                        Answer::NotFound => {}
                        Answer::Pending => pending = true,
                    }
                }
                Err(halt) => {
                    return match (*halt).clone() {
                        Halt::Skip(skip) => {
                            self.stats.skip(skip.kind.as_str());
                            ProviderAnswer::Skipped(skip).into()
                        }
                        Halt::Pending => {
                            self.stats.miss(false);
                            ProviderAnswer::Pending.into()
                        }
                        Halt::Failed(e) => {
                            self.stats.error(e.kind.as_str());
                            ProviderAnswer::Failed(format!("{}: {e}", e.kind.as_str())).into()
                        }
                    };
                }
            }
        }
        if asked == 0 {
            let m = missing.unwrap_or("value");
            self.stats.skip(SkipKind::NoInput.as_str());
            return ProviderAnswer::Skipped(Skip::new(
                SkipKind::NoInput,
                format!("the lead has no {m} to look up by"),
            ))
            .into();
        }
        let answer = if found && !merged.fields.is_empty() {
            self.stats.hit(all_cached);
            ProviderAnswer::Found {
                fields: merged.fields,
                confidence: merged.confidence,
            }
        } else if pending {
            self.stats.miss(all_cached);
            ProviderAnswer::Pending
        } else {
            self.stats.miss(all_cached);
            ProviderAnswer::NotFound
        };
        Reply {
            answer,
            cached: all_cached,
        }
    }

    /// One upstream lookup through the resilience stack (`resilience::stack`).
    async fn fetch(
        &self,
        op: &Operation,
        prepared: &Prepared,
    ) -> Result<(Answer, Freshness), Halt> {
        let id = self.id_str();
        let stack = &self.stack;
        let attempt = || async {
            let started = Instant::now();
            let exchange = self.connector.send(op, prepared).await;
            self.stats.call(started.elapsed(), exchange.status);
            stack.limiter.observe_shared(&exchange.signal).await;
            let now = stack.park.now();
            for w in exchange
                .signal
                .windows
                .iter()
                .filter(|w| w.quota && w.remaining == 0)
            {
                let until = now
                    + chrono::Duration::from_std(w.reset_in)
                        .unwrap_or_else(|_| chrono::Duration::days(1));
                stack
                    .park
                    .park_everywhere(
                        until,
                        format!("{id} reports no requests left in its quota window"),
                    )
                    .await;
            }
            exchange.result
        };
        let billed = |answer: &Answer| {
            let outcome = match answer {
                Answer::Found(_) => BilledOutcome::Found,
                Answer::NotFound => BilledOutcome::NotFound,
                Answer::Pending => BilledOutcome::Pending,
            };
            self.connector.manifest().is_billed(outcome)
        };
        match stack.call(self.cost, billed, attempt).await {
            Ok(called) => {
                self.stats.credits(called.credits);
                match called.value {
                    Answer::Found(body) => Ok((Answer::Found(body), Freshness::Positive)),
                    Answer::NotFound => Ok((Answer::NotFound, Freshness::Negative)),
                    Answer::Pending => Err(Halt::Pending),
                }
            }
            Err(CallError::Refused(refusal)) => {
                let kind = match refusal {
                    Refusal::Parked(_) | Refusal::Budget(_) => SkipKind::Budget,
                    Refusal::CircuitOpen(_) => SkipKind::CircuitOpen,
                    Refusal::Limited(_) => SkipKind::RateLimited,
                };
                let why = match refusal {
                    Refusal::Parked(p) => format!(
                        "{} — parked until {}",
                        p.why,
                        p.until.format("%Y-%m-%d %H:%M UTC")
                    ),
                    other => format!("{id}: {other}"),
                };
                Err(Halt::Skip(Skip::new(kind, why)))
            }
            Err(CallError::Failed(e)) => {
                if e.kind == ErrorKind::QuotaExhausted {
                    stack
                        .park
                        .park_everywhere(next_utc_midnight(stack.park.now()), e.message.clone())
                        .await;
                }
                tracing::warn!(connector = %id, error_kind = e.kind.as_str(), status = ?e.status, "provider call failed");
                Err(Halt::Failed(e))
            }
        }
    }
}

impl Provider for HttpProvider {
    fn id(&self) -> &str {
        self.id_str()
    }

    fn budget(&self) -> Option<&crate::resilience::budget::Budget> {
        Some(&self.stack.budget)
    }

    fn lookup<'a>(&'a self, lookup: &'a Lookup) -> BoxFuture<'a, Reply> {
        Box::pin(self.ask(lookup))
    }

    fn status(&self) -> ProviderStatus {
        let limiter = self.stack.limiter.status();
        let parked = self.stack.park.parked();
        let (hits, misses) = (Stats::get(&self.stats.hits), Stats::get(&self.stats.misses));
        ProviderStatus {
            id: self.id_str().to_string(),
            configured: true,
            credentials_present: self.connector.manifest().needs_key().then_some(true),
            problem: None,
            rate_limit: Some(limiter.limit),
            circuit: self.stack.breaker.as_ref().map(Breaker::state),
            credits_used_today: self.stack.budget.used_today(),
            daily_budget: self.stack.budget.daily(),
            requests_today: u64::from(limiter.used_today),
            daily_cap: limiter.daily_cap,
            parked_until: parked.as_ref().map(|p| p.until),
            parked_reason: parked.map(|p| p.why),
            paused_ms: limiter.paused_for.map(|d| d.as_millis() as u64),
            calls: Stats::get(&self.stats.calls),
            hits,
            misses,
            errors: Stats::get(&self.stats.errors),
            cache_hits: Stats::get(&self.stats.cache_hits),
            rate_limited: Stats::get(&self.stats.rate_limited),
            hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        }
    }
}

/// The template variables for a lead.
fn vars(lookup: &Lookup) -> Vars {
    let mut v = Vars::new();
    let mut put = |k: &'static str, val: &Option<String>| {
        if let Some(s) = val.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            v.insert(k, s.to_string());
        }
    };
    put("domain", &lookup.domain);
    put("email", &lookup.email);
    put("company", &lookup.company);
    put("first_name", &lookup.first_name);
    put("last_name", &lookup.last_name);
    v
}

/// The first operation to give a field keeps it.
fn merge(into: &mut Mapped, from: Mapped) {
    for (k, v) in from.fields {
        if !v.is_null() {
            into.fields.entry(k).or_insert(v);
        }
    }
    if into.confidence.is_none() {
        into.confidence = from.confidence;
    }
}
