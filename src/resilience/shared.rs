//! Limits shared by replicas: each connector's daily request cap and daily credit budget,
//! and the pauses its vendor asks for (a `Retry-After`, an empty window) or a quota run out.
//! Through Redis when `[redis]`/`[rate_limit] redis` is configured, through the store
//! otherwise (migration 0020), so N replicas together stay under one cap, a 429 seen by one
//! pauses all, and a restart does not begin the day again.
//!
//! Requests and credits are claimed *before* a call, atomically (a Lua script, or one
//! conditional upsert), so concurrent replicas never both take the last one. When the shared
//! place cannot be reached, each process keeps to its own counts and pauses (logged, and
//! retried after [`RETRY_AFTER`]): a limit is an optimisation of spend, never a reason to
//! stall a lead.
//!
//! Must not: decide what a call costs or what a vendor's answer means (the connector does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::time::Instant;

use super::redis::RedisLink;
use crate::store::Store;

/// After a failure to reach the shared place, how long to keep to local limits only.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Where the limits are shared.
pub enum Backend {
    Redis(Arc<RedisLink>),
    Store(Store),
}

/// What holds a connector back, shared by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Wait before the next request (Retry-After, a rate window with nothing left).
    Pause,
    /// Skip the connector until then (its quota or credits are used up).
    Park,
}

impl HoldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldKind::Pause => "pause",
            HoldKind::Park => "park",
        }
    }
}

/// The shared place, with a short memory of being unreachable.
pub struct SharedLimits {
    backend: Backend,
    failed_at: Mutex<Option<Instant>>,
}

/// Seconds a Redis day counter outlives its day (the day's reports read it after midnight).
const DAY_KEY_TTL_SECS: i64 = 2 * 86_400;

/// Counts a request unless the day's cap is reached: 1 counted, 0 refused.
const COUNT_LUA: &str = r#"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"#;

/// Claims credits unless the day's budget would be passed: "ok", else the credits claimed
/// (as text: Lua numbers reach Redis as integers).
const CLAIM_LUA: &str = r#"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) + 1e-9 then return tostring(used) end
redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 'ok'
"#;

/// Holds until a later instant than the one kept, expiring with it.
const HOLD_LUA: &str = r#"
local cur = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local u = tonumber(ARGV[1])
if u > cur then
  redis.call('HSET', KEYS[1], 'until', ARGV[1], 'why', ARGV[2])
  redis.call('PEXPIREAT', KEYS[1], u)
end
return 1
"#;

impl SharedLimits {
    pub fn new(backend: Backend) -> Arc<Self> {
        Arc::new(Self {
            backend,
            failed_at: Mutex::new(None),
        })
    }

    /// The handle one connector uses.
    pub fn for_connector(self: &Arc<Self>, id: &str) -> SharedHandle {
        SharedHandle {
            limits: self.clone(),
            id: id.to_string(),
        }
    }

    fn resting(&self) -> bool {
        self.failed_at
            .lock()
            .map(|f| f.is_some_and(|at| at.elapsed() < RETRY_AFTER))
            .unwrap_or(false)
    }

    /// Notes the outcome of one use: a failure starts a rest on local limits.
    fn outcome<T>(&self, what: &str, r: Option<T>) -> Option<T> {
        if let Ok(mut f) = self.failed_at.lock() {
            match (&r, f.is_some()) {
                (None, _) => {
                    if f.is_none() {
                        tracing::warn!(step = what, "shared limits unreachable: each process keeps to its own counts and pauses for now");
                    }
                    metrics::counter!("leadgate_shared_limits_fallback_total").increment(1);
                    *f = Some(Instant::now());
                }
                (Some(_), true) => {
                    tracing::info!("shared limits reachable again");
                    *f = None;
                }
                (Some(_), false) => {}
            }
        }
        r
    }

    async fn eval<T: redis::FromRedisValue>(
        link: &RedisLink,
        script: &str,
        key: &str,
        args: &[String],
    ) -> Option<T> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(key);
        for a in args {
            cmd.arg(a);
        }
        link.run::<T>(&cmd).await
    }
}

/// One connector's view of the shared limits.
#[derive(Clone)]
pub struct SharedHandle {
    limits: Arc<SharedLimits>,
    id: String,
}

/// A store error, logged without its SQL: the fallback is the caller's.
fn quiet<T>(r: Result<T, crate::store::StoreError>) -> Option<T> {
    r.map_err(|e| tracing::debug!(error = %e, "shared limits: store call failed"))
        .ok()
}

impl SharedHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    fn day_key(&self, what: &str, day: NaiveDate) -> String {
        format!("leadgate:limits:{}:{what}:{day}", self.id)
    }

    /// Counts one request on `day` unless `cap` are counted across replicas: `Some(true)`
    /// counted, `Some(false)` the cap is reached, `None` unreachable (count locally).
    pub async fn count_request(&self, day: NaiveDate, cap: u32) -> Option<bool> {
        let l = &self.limits;
        if l.resting() {
            return None;
        }
        let r = match &l.backend {
            Backend::Redis(link) => SharedLimits::eval::<i64>(
                link,
                COUNT_LUA,
                &self.day_key("requests", day),
                &[cap.to_string(), DAY_KEY_TTL_SECS.to_string()],
            )
            .await
            .map(|n| n == 1),
            Backend::Store(s) => quiet(
                s.claim_provider_request(&self.id, &day.to_string(), cap)
                    .await,
            ),
        };
        l.outcome("count_request", r)
    }

    /// Claims `cost` credits of `limit` on `day`: `Some(Ok)` claimed, `Some(Err(used))` the
    /// budget cannot cover it, `None` unreachable (the local budget decides alone).
    pub async fn claim_credits(
        &self,
        day: NaiveDate,
        cost: f64,
        limit: f64,
    ) -> Option<Result<(), f64>> {
        let l = &self.limits;
        if l.resting() {
            return None;
        }
        let r = match &l.backend {
            Backend::Redis(link) => SharedLimits::eval::<String>(
                link,
                CLAIM_LUA,
                &self.day_key("credits", day),
                &[
                    cost.to_string(),
                    limit.to_string(),
                    DAY_KEY_TTL_SECS.to_string(),
                ],
            )
            .await
            .map(|t| match t.as_str() {
                "ok" => Ok(()),
                used => Err(used.parse().unwrap_or(limit)),
            }),
            Backend::Store(s) => quiet(
                s.claim_provider_credits(&self.id, &day.to_string(), cost, limit)
                    .await,
            )
            .map(|used| used.map_or(Ok(()), Err)),
        };
        l.outcome("claim_credits", r)
    }

    /// Gives back credits claimed for a call that was not billed (or not made).
    pub async fn release_credits(&self, day: NaiveDate, cost: f64) {
        let l = &self.limits;
        if cost <= 0.0 || l.resting() {
            return;
        }
        let r = match &l.backend {
            Backend::Redis(link) => {
                let cmd = redis::cmd("INCRBYFLOAT")
                    .arg(self.day_key("credits", day))
                    .arg(-cost)
                    .clone();
                link.run::<String>(&cmd).await.map(|_| ())
            }
            Backend::Store(s) => quiet(
                s.release_provider_credits(&self.id, &day.to_string(), cost)
                    .await,
            ),
        };
        l.outcome("release_credits", r);
    }

    /// Holds the connector for every replica until `until` (a later hold is kept).
    pub async fn hold(&self, kind: HoldKind, until: DateTime<Utc>, why: &str) {
        let l = &self.limits;
        if l.resting() {
            return;
        }
        let until_ms = until.timestamp_millis();
        let r = match &l.backend {
            Backend::Redis(link) => SharedLimits::eval::<i64>(
                link,
                HOLD_LUA,
                &format!("leadgate:limits:{}:hold:{}", self.id, kind.as_str()),
                &[until_ms.to_string(), why.to_string()],
            )
            .await
            .map(|_| ()),
            Backend::Store(s) => quiet(
                s.hold_provider(&self.id, kind.as_str(), until_ms, why)
                    .await,
            ),
        };
        l.outcome("hold", r);
    }

    /// The hold of `kind` another replica (or this one) placed, if it is still on at `now`.
    pub async fn held(
        &self,
        kind: HoldKind,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, String)> {
        let l = &self.limits;
        if l.resting() {
            return None;
        }
        let r = match &l.backend {
            Backend::Redis(link) => {
                let cmd = redis::cmd("HMGET")
                    .arg(format!(
                        "leadgate:limits:{}:hold:{}",
                        self.id,
                        kind.as_str()
                    ))
                    .arg("until")
                    .arg("why")
                    .clone();
                link.run::<(Option<i64>, Option<String>)>(&cmd)
                    .await
                    .map(|(u, why)| u.map(|u| (u, why.unwrap_or_default())))
            }
            Backend::Store(s) => quiet(s.provider_hold(&self.id, kind.as_str()).await),
        };
        l.outcome("held", r)
            .flatten()
            .and_then(|(ms, why)| DateTime::from_timestamp_millis(ms).map(|u| (u, why)))
            .filter(|(u, _)| *u > now)
    }
}
