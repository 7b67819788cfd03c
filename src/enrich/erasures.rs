//! Erasure across processes: a replica that erases someone drops its own cached answers
//! about them and the shared ones in Redis (`Pipeline::forget`), then moves two counters —
//! the store's (in the erasure's transaction) and Redis's when configured. Every daemon
//! watches both; when either moves it drops every answer it holds in memory, since the
//! counter names no one (the address is not sent anywhere) and a domain's answer may list
//! the person. Erasures are rare; the cost is re-reading answers from Redis or the vendor.

use std::time::Duration;

use tokio::sync::watch;

use super::SharedCache;
use crate::store::Store;

/// How often the counters are read: how long another process's cached answers about an
/// erased person may still be used (its workers refuse the person themselves at once).
pub const ERASURE_POLL: Duration = Duration::from_secs(1);

/// The erasures seen so far, store and Redis together; `None` while the store is away (the
/// Redis part is 0 without Redis or while it is away, so its return only moves it up).
async fn generation(cache: &SharedCache, store: &Store) -> Option<u64> {
    let stored = store.erasure_generation().await.ok()?;
    let shared = cache.erasure_generation().await.unwrap_or(0);
    Some(stored.wrapping_add(shared))
}

/// Watches the erasure counters until `stop`; a move drops this process's cached answers.
pub async fn watch(cache: SharedCache, store: Store, mut stop: watch::Receiver<bool>) {
    let mut seen = generation(&cache, &store).await;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(ERASURE_POLL) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let now = generation(&cache, &store).await;
        match (seen, now) {
            (_, None) => continue,
            (Some(before), Some(after)) if before == after => continue,
            (Some(_), Some(_)) => {
                store.suppressions_moved();
                let held = cache.len();
                cache.clear_local();
                metrics::counter!("leadgate_erasure_cache_drops_total").increment(1);
                tracing::info!(
                    entries = held,
                    "a person was erased: cached enrichment answers dropped"
                );
            }
            (None, Some(_)) => {}
        }
        seen = now;
    }
}
