//! Redis, shared by replicas: an L2 answer cache (so N replicas never pay twice for one
//! enrichment) and a GCRA rate limit per provider evaluated atomically in Redis (so N
//! replicas together stay under a vendor's quota).
//!
//! Redis is an optimisation, never a dependency of correctness: when it is unreachable the
//! cache falls back to the in-process L1 and the limiter to a conservative local share of the
//! quota (`quota / replicas`), and [`redis_state`] says so to `/readyz` and metrics.

use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use redis::aio::ConnectionManager;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::cache::{mentions_text, AnswerCache, Cached, Freshness, Mentions, MokaCache};
use super::limit::{Limiter, RateLimit};

/// How long one Redis command may take before Redis counts as down for this call.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// After a failed connect, how long to stay on the fallback before trying again.
const RECONNECT_AFTER: Duration = Duration::from_secs(5);

/// -1 no Redis configured, 0 configured but unreachable, 1 reachable.
static REDIS_STATE: AtomicI8 = AtomicI8::new(-1);

/// `None` without Redis; `Some(true)` when the last command reached it.
pub fn redis_state() -> Option<bool> {
    match REDIS_STATE.load(Ordering::Relaxed) {
        -1 => None,
        s => Some(s == 1),
    }
}

fn set_up(up: bool) {
    if REDIS_STATE.swap(i8::from(up), Ordering::Relaxed) != i8::from(up) {
        if up {
            tracing::info!("Redis reachable: shared cache and shared rate limits in use");
        } else {
            tracing::warn!("Redis unreachable: falling back to the local cache and a local share of each quota");
        }
    }
    metrics::gauge!("leadgate_redis_up").set(if up { 1.0 } else { 0.0 });
}

#[derive(Debug, thiserror::Error)]
#[error("redis URL `{url}` is not valid: {reason}")]
pub struct RedisUrlError {
    pub url: String,
    pub reason: String,
}

/// One lazily connected, self-healing connection to Redis, shared by the cache and limiters.
pub struct RedisLink {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    failed_at: std::sync::Mutex<Option<Instant>>,
}

impl RedisLink {
    pub fn new(url: &str) -> Result<Arc<Self>, RedisUrlError> {
        let client = redis::Client::open(url).map_err(|e| RedisUrlError {
            url: redact(url),
            reason: e.to_string(),
        })?;
        REDIS_STATE.store(1, Ordering::Relaxed);
        Ok(Arc::new(Self {
            client,
            conn: Mutex::new(None),
            failed_at: std::sync::Mutex::new(None),
        }))
    }

    async fn connection(&self) -> Option<ConnectionManager> {
        if let Ok(f) = self.failed_at.lock() {
            if f.is_some_and(|at| at.elapsed() < RECONNECT_AFTER) {
                return None;
            }
        }
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Some(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1);
        match tokio::time::timeout(
            COMMAND_TIMEOUT * 4,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => {
                *slot = Some(c.clone());
                Some(c)
            }
            _ => {
                self.failed();
                None
            }
        }
    }

    fn failed(&self) {
        if let Ok(mut f) = self.failed_at.lock() {
            *f = Some(Instant::now());
        }
        set_up(false);
    }

    /// Runs a command; `None` (and the fallback) when Redis does not answer in time.
    pub(crate) async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Option<T> {
        let mut conn = self.connection().await?;
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => {
                set_up(true);
                Some(v)
            }
            _ => {
                self.failed();
                None
            }
        }
    }

    async fn run_script(&self, script: &redis::Script, key: &str, args: &[i64]) -> Option<i64> {
        let mut conn = self.connection().await?;
        let mut invocation = script.key(key);
        for a in args {
            invocation.arg(*a);
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async::<i64>(&mut conn)).await
        {
            Ok(Ok(v)) => {
                set_up(true);
                Some(v)
            }
            _ => {
                self.failed();
                None
            }
        }
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`, for messages and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// How a cached value travels through Redis: as text any replica can read back. The value's
/// owner (the connector, for its answers) says how, so this module knows no vendor type.
pub trait SharedText: Sized {
    /// None: never shared (a pending lookup).
    fn to_shared(&self) -> Option<String>;
    fn from_shared(text: &str) -> Option<(Self, Freshness)>;
}

/// L1 (moka, per process) in front of L2 (Redis, shared). An L1 miss asks Redis before
/// upstream; what upstream answers is written to both with the same TTLs.
pub struct TieredCache<V: Clone + Send + Sync + 'static> {
    l1: MokaCache<V>,
    link: Arc<RedisLink>,
    prefix: String,
}

impl<V: Clone + Send + Sync + 'static> TieredCache<V> {
    pub fn new(l1: MokaCache<V>, link: Arc<RedisLink>) -> Self {
        Self {
            l1,
            link,
            prefix: "leadgate:cache:".into(),
        }
    }
}

impl<V, E> AnswerCache<V, E> for TieredCache<V>
where
    V: Clone + Send + Sync + Mentions + SharedText + 'static,
    E: Send + Sync + 'static,
{
    fn get_or_fetch<'a>(
        &'a self,
        key: String,
        fetch: BoxFuture<'a, Result<(V, Freshness), E>>,
    ) -> BoxFuture<'a, Result<Cached<V>, Arc<E>>> {
        Box::pin(async move {
            let from_l2 = Arc::new(AtomicBool::new(false));
            let redis_key = format!("{}{key}", self.prefix);
            let policy = self.l1.policy();
            let flag = from_l2.clone();
            let through = Box::pin(async move {
                let get = redis::cmd("GET").arg(&redis_key).clone();
                if let Some(Some(text)) = self.link.run::<Option<String>>(&get).await {
                    if let Some(hit) = V::from_shared(&text) {
                        flag.store(true, Ordering::SeqCst);
                        return Ok(hit);
                    }
                }
                let (answer, freshness) = fetch.await?;
                if let Some(text) = answer.to_shared() {
                    let ttl = match freshness {
                        Freshness::Positive => policy.ttl,
                        Freshness::Negative => policy.negative_ttl,
                    };
                    let set = redis::cmd("SET")
                        .arg(&redis_key)
                        .arg(text)
                        .arg("PX")
                        .arg(ttl.as_millis().max(1) as u64)
                        .clone();
                    let _ = self.link.run::<()>(&set).await;
                }
                Ok((answer, freshness))
            });
            let mut got = AnswerCache::<V, E>::get_or_fetch(&self.l1, key, through).await?;
            // Served by another replica's earlier call: no upstream call was made here either.
            got.cached |= from_l2.load(Ordering::SeqCst);
            Ok(got)
        })
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            AnswerCache::<V, E>::invalidate(&self.l1, key).await;
            let del = redis::cmd("DEL")
                .arg(format!("{}{key}", self.prefix))
                .clone();
            let _ = self.link.run::<i64>(&del).await;
        })
    }

    fn invalidate_prefix(&self, prefix: &str) {
        AnswerCache::<V, E>::invalidate_prefix(&self.l1, prefix);
    }

    fn invalidate_containing<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let local = AnswerCache::<V, E>::invalidate_containing(&self.l1, needle).await;
            local + self.forget_shared(needle).await
        })
    }

    fn clear_local(&self) {
        AnswerCache::<V, E>::clear_local(&self.l1);
    }

    fn announce_erasure(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let incr = redis::cmd("INCR").arg(ERASURES_KEY).clone();
            if self.link.run::<i64>(&incr).await.is_none() {
                tracing::warn!("Redis unreachable: other replicas learn of this erasure from the store instead");
            }
        })
    }

    fn erasure_generation(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async move {
            let get = redis::cmd("GET").arg(ERASURES_KEY).clone();
            self.link
                .run::<Option<u64>>(&get)
                .await
                .map(|n| n.unwrap_or(0))
        })
    }

    fn len(&self) -> u64 {
        AnswerCache::<V, E>::len(&self.l1)
    }
}

/// The shared erasure counter: every replica's watcher reads it (`enrich::erasures`).
const ERASURES_KEY: &str = "leadgate:erasures";

/// Keys read per SCAN step and values per MGET while forgetting a person.
const FORGET_BATCH: usize = 500;

impl<V: Clone + Send + Sync + 'static> TieredCache<V> {
    /// Deletes the shared entries whose key or value mentions `needle`: every cached answer
    /// is read once (an erasure is rare; an answer keyed by a domain may list the person).
    /// Returns how many went.
    async fn forget_shared(&self, needle: &str) -> u64 {
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut removed = 0u64;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(FORGET_BATCH)
                .clone();
            let Some((next, keys)) = self.link.run::<(u64, Vec<String>)>(&scan).await else {
                tracing::warn!("Redis unreachable: shared cached answers about the erased person stay until their TTL");
                break;
            };
            if !keys.is_empty() {
                let get = redis::cmd("MGET").arg(&keys).clone();
                let values = self
                    .link
                    .run::<Vec<Option<String>>>(&get)
                    .await
                    .unwrap_or_default();
                let doomed: Vec<&String> = keys
                    .iter()
                    .zip(values.iter().map(Some).chain(std::iter::repeat(None)))
                    .filter(|(k, v)| {
                        mentions_text(k, needle)
                            || v.and_then(|v| v.as_deref())
                                .is_some_and(|v| mentions_text(v, needle))
                    })
                    .map(|(k, _)| k)
                    .collect();
                if !doomed.is_empty() {
                    let del = redis::cmd("DEL").arg(&doomed).clone();
                    removed += self.link.run::<u64>(&del).await.unwrap_or(0);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        removed
    }
}

/// GCRA in one Lua script, on Redis's clock so replicas agree: returns 0 when a request may
/// go now (and books it), else the microseconds to wait. The well-known scheme of
/// redis-cell / `redis-gcra`; a script keeps it atomic across replicas.
const GCRA_LUA: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now + tolerance) / 1000) + 1000)
return 0
"#;

/// One provider's quota, shared by every replica through Redis.
pub struct SharedGcra {
    link: Arc<RedisLink>,
    key: String,
    script: redis::Script,
    /// Microseconds between requests at the quota.
    interval_us: i64,
    /// How far ahead of schedule a burst may run, in microseconds.
    tolerance_us: i64,
    /// While Redis is away: this replica's conservative share of the quota.
    fallback: Limiter,
}

impl SharedGcra {
    /// `limit` is the vendor's whole quota; `replicas` how many processes share it, for the
    /// local fallback share.
    pub fn new(link: Arc<RedisLink>, provider: &str, limit: &RateLimit, replicas: u32) -> Self {
        let interval = limit.emission_interval();
        let share = RateLimit {
            requests: (limit.requests / replicas.max(1)).max(1),
            per: limit.per,
            burst: 1,
            daily: limit.daily.map(|d| (d / replicas.max(1)).max(1)),
            max_wait: limit.max_wait,
        };
        Self {
            link,
            key: format!("leadgate:gcra:{provider}"),
            script: redis::Script::new(GCRA_LUA),
            interval_us: interval.as_micros().max(1) as i64,
            // A tenth of an interval of slack absorbs timer wake-up lateness (tokio sleeps
            // to the millisecond), which would otherwise be lost from every slot; the
            // interval already keeps 2% headroom under the vendor's quota.
            tolerance_us: (interval.as_micros() as i64) * i64::from(limit.burst.max(1) - 1)
                + (interval.as_micros() as i64) / 10,
            fallback: Limiter::new(share),
        }
    }

    /// Waits for the cluster-wide permit until `deadline`; `false` if none came in time.
    pub fn acquire(&self, deadline: Instant) -> BoxFuture<'_, bool> {
        // Boxed: the fallback is itself a `Limiter`, whose `acquire` calls this one.
        Box::pin(async move { self.acquire_inner(deadline).await })
    }

    async fn acquire_inner(&self, deadline: Instant) -> bool {
        loop {
            match self
                .link
                .run_script(
                    &self.script,
                    &self.key,
                    &[self.interval_us, self.tolerance_us],
                )
                .await
            {
                Some(0) => return true,
                Some(wait_us) => {
                    let at = Instant::now() + Duration::from_micros(wait_us.max(1) as u64);
                    if at > deadline {
                        return false;
                    }
                    tokio::time::sleep_until(at).await;
                }
                None => {
                    metrics::counter!("leadgate_rate_limit_fallback_total", "connector" => self.key.clone()).increment(1);
                    return Box::pin(self.fallback.acquire()).await.is_ok();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_in_messages() {
        assert_eq!(
            redact("redis://default:s3cret@10.0.0.1:6379/0"),
            "redis://default:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_local_share() {
        // Port 1 on loopback: nothing listens, the connect is refused at once.
        let link = RedisLink::new("redis://127.0.0.1:1").unwrap();
        let gate = SharedGcra::new(link, "test", &RateLimit::per(10, Duration::from_secs(1)), 2);
        assert!(gate.acquire(Instant::now() + Duration::from_secs(2)).await);
        assert_eq!(redis_state(), Some(false));
    }
}
