//! The answer cache: keyed by provider + request, a TTL for answers, a shorter negative TTL
//! for "not found", a size bound, and coalescing — concurrent misses on one key make one
//! upstream call and share its result (moka's `try_get_with`). Results that must not be
//! kept (errors, "pending") are still shared with the callers waiting on that one call, but
//! not stored.
//!
//! Behind [`AnswerCache`] so a shared Redis L2 can sit beside (or behind) the in-memory one
//! when leadgate scales out.
//!
//! Freshness is checked against `tokio::time` (so TTLs are testable with a paused clock);
//! moka's own expiry, on its clock, only reclaims memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use moka::Expiry;
use tokio::time::Instant;

/// Default entries kept, across providers: a few hundred MB at most for company records.
pub const DEFAULT_CAPACITY: u64 = 100_000;

/// How long a fetched value should be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A found record: the TTL.
    Positive,
    /// "Not found": the shorter negative TTL (vendors add companies every day).
    Negative,
}

/// A value from the cache, and whether this caller's own fetch produced it. `cached` is
/// true for a stored entry and for a result coalesced from another caller's fetch — either
/// way, this lookup cost no upstream call.
#[derive(Debug, Clone)]
pub struct Cached<V> {
    pub value: V,
    pub cached: bool,
}

/// What a cache does for the providers.
pub trait AnswerCache<V, E>: Send + Sync {
    /// The value for `key`: stored and fresh, or from `fetch` — run once however many
    /// callers ask at the same time. `Ok` results are stored; `Err` results are shared with
    /// the waiting callers but not stored.
    fn get_or_fetch<'a>(
        &'a self,
        key: String,
        fetch: BoxFuture<'a, Result<(V, Freshness), E>>,
    ) -> BoxFuture<'a, Result<Cached<V>, Arc<E>>>;

    /// Forgets one key (an erasure request, a manual refresh).
    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;

    /// Forgets every key that starts with `prefix` (one provider, one domain).
    fn invalidate_prefix(&self, prefix: &str);

    /// Forgets every entry whose key or value contains `needle` (an erased person's email,
    /// raw or URL-encoded): a lookup by email, and an answer keyed by something else that
    /// lists the person (a domain search naming employees). Returns how many entries went.
    fn invalidate_containing<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, u64>;

    /// Forgets everything this process holds (another process erased someone: the name is
    /// not sent, so no entry can be matched to them).
    fn clear_local(&self);

    /// Tells the other processes sharing this cache that someone was erased (a shared
    /// counter); nothing for a cache of one process.
    fn announce_erasure(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// The shared erasure counter [`AnswerCache::announce_erasure`] moves; `None` for a
    /// cache of one process or while the shared tier is away.
    fn erasure_generation(&self) -> BoxFuture<'_, Option<u64>> {
        Box::pin(async { None })
    }

    /// Entries held (approximate).
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether a cached value names a text (an email), for erasure.
pub trait Mentions {
    /// `needle` is lowercase (a normalized email); the value is searched without case.
    fn mentions(&self, needle: &str) -> bool;
}

/// ASCII-case-insensitive substring search: emails are normalized to lowercase, vendors
/// answer them as written.
pub fn mentions_text(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachePolicy {
    pub capacity: u64,
    pub ttl: Duration,
    pub negative_ttl: Duration,
}

#[derive(Clone)]
struct Entry<V> {
    value: V,
    expires_at: Instant,
    ttl: Duration,
}

struct EntryExpiry;

impl<V> Expiry<String, Entry<V>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Entry<V>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The in-process cache (moka).
pub struct MokaCache<V: Clone + Send + Sync + 'static> {
    inner: moka::future::Cache<String, Entry<V>>,
    policy: CachePolicy,
}

impl<V: Clone + Send + Sync + 'static> MokaCache<V> {
    pub fn new(policy: CachePolicy) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(policy.capacity)
            .expire_after(EntryExpiry)
            .support_invalidation_closures()
            .build();
        Self { inner, policy }
    }

    pub fn policy(&self) -> CachePolicy {
        self.policy
    }
}

impl<V, E> AnswerCache<V, E> for MokaCache<V>
where
    V: Clone + Send + Sync + Mentions + 'static,
    E: Send + Sync + 'static,
{
    fn get_or_fetch<'a>(
        &'a self,
        key: String,
        fetch: BoxFuture<'a, Result<(V, Freshness), E>>,
    ) -> BoxFuture<'a, Result<Cached<V>, Arc<E>>> {
        Box::pin(async move {
            // Stale by our clock (moka may not have reclaimed it yet): drop it first.
            if let Some(old) = self.inner.get(&key).await {
                if old.expires_at <= Instant::now() {
                    self.inner.invalidate(&key).await;
                }
            }
            let ran = AtomicBool::new(false);
            let policy = self.policy;
            let init = async {
                ran.store(true, Ordering::SeqCst);
                let (value, freshness) = fetch.await?;
                let ttl = match freshness {
                    Freshness::Positive => policy.ttl,
                    Freshness::Negative => policy.negative_ttl,
                };
                Ok::<_, E>(Entry {
                    value,
                    expires_at: Instant::now() + ttl,
                    ttl,
                })
            };
            let entry = self.inner.try_get_with(key, init).await?;
            Ok(Cached {
                value: entry.value,
                cached: !ran.load(Ordering::SeqCst),
            })
        })
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.inner.invalidate(key).await })
    }

    fn invalidate_prefix(&self, prefix: &str) {
        let prefix = prefix.to_string();
        // Fails only without `support_invalidation_closures`, which `new` enables.
        let _ = self
            .inner
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
    }

    fn invalidate_containing<'a>(&'a self, needle: &'a str) -> BoxFuture<'a, u64> {
        Box::pin(async move {
            let doomed: Vec<Arc<String>> = self
                .inner
                .iter()
                .filter(|(k, e)| mentions_text(k, needle) || e.value.mentions(needle))
                .map(|(k, _)| k)
                .collect();
            for k in &doomed {
                self.inner.invalidate(k.as_str()).await;
            }
            doomed.len() as u64
        })
    }

    fn clear_local(&self) {
        self.inner.invalidate_all();
    }

    fn len(&self) -> u64 {
        self.inner.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    impl Mentions for u32 {
        fn mentions(&self, needle: &str) -> bool {
            self.to_string() == needle
        }
    }

    fn cache() -> MokaCache<u32> {
        MokaCache::new(CachePolicy {
            capacity: 100,
            ttl: Duration::from_secs(100),
            negative_ttl: Duration::from_secs(10),
        })
    }

    async fn ask(c: &MokaCache<u32>, calls: &AtomicUsize, freshness: Freshness) -> Cached<u32> {
        let fetch = async {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>((7, freshness))
        };
        AnswerCache::<u32, ()>::get_or_fetch(c, "k".into(), Box::pin(fetch))
            .await
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_make_one_call() {
        let c = cache();
        let calls = AtomicUsize::new(0);
        let answers =
            futures::future::join_all((0..50).map(|_| ask(&c, &calls, Freshness::Positive))).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(answers.iter().filter(|a| !a.cached).count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_negative_answer_expires_sooner() {
        let c = cache();
        let calls = AtomicUsize::new(0);
        ask(&c, &calls, Freshness::Negative).await;
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(ask(&c, &calls, Freshness::Negative).await.cached);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(!ask(&c, &calls, Freshness::Negative).await.cached);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn forgetting_a_text_drops_entries_whose_key_or_value_names_it() {
        let c = cache();
        for (key, value) in [("q=ada@acme.io", 1u32), ("domain=acme.io", 7), ("other", 8)] {
            let fetch = async move { Ok::<_, ()>((value, Freshness::Positive)) };
            AnswerCache::<u32, ()>::get_or_fetch(&c, key.into(), Box::pin(fetch))
                .await
                .unwrap();
        }
        // The key names the address; the value 7 "names" the text `7`.
        assert_eq!(
            AnswerCache::<u32, ()>::invalidate_containing(&c, "ada@acme.io").await,
            1
        );
        assert_eq!(
            AnswerCache::<u32, ()>::invalidate_containing(&c, "7").await,
            1
        );
        c.inner.run_pending_tasks().await;
        assert_eq!(AnswerCache::<u32, ()>::len(&c), 1);
        AnswerCache::<u32, ()>::clear_local(&c);
        c.inner.run_pending_tasks().await;
        assert_eq!(AnswerCache::<u32, ()>::len(&c), 0);
    }

    #[test]
    fn a_mention_is_found_whatever_its_case() {
        assert!(mentions_text(
            r#"{"emails":["Ada@Acme.IO"]}"#,
            "ada@acme.io"
        ));
        assert!(!mentions_text(
            r#"{"emails":["bob@acme.io"]}"#,
            "ada@acme.io"
        ));
        assert!(!mentions_text("anything", ""));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_shared_but_not_kept() {
        let c = cache();
        let calls = AtomicUsize::new(0);
        for _ in 0..2 {
            let fetch = async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(u32, Freshness), &str>("down")
            };
            assert!(AnswerCache::get_or_fetch(&c, "k".into(), Box::pin(fetch))
                .await
                .is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
