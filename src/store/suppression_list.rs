//! This process's copy of the suppression list, for the checks that store nothing: a dry
//! run (`POST /v1/evaluate`) would otherwise pay a store round trip per request for a list
//! that changes a few times a day.
//!
//! The copy is tagged with the store's erasure generation (moved in every erasure's
//! transaction). It is trusted for [`FRESH_FOR`]; after that the next check reads the
//! generation (one small query) and reloads the digests only when it moved. An erasure in
//! this process drops the copy at once; one in another process shows within [`FRESH_FOR`].
//! Paths that store or decide a person (intake, webhooks, workers, `run`) read the store.

use std::collections::HashSet;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::privacy::Digests;

/// How long a copy is used before the generation is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// The digests held, and as of which erasure generation.
#[derive(Debug)]
struct Held {
    generation: u64,
    checked: Instant,
    digests: HashSet<String>,
}

/// The cached list; empty until the first check loads it.
#[derive(Debug, Default)]
pub struct SuppressionList {
    held: RwLock<Option<Held>>,
    /// One reload at a time: concurrent checks that find the copy stale wait for it.
    reloading: tokio::sync::Mutex<()>,
}

/// What a check against the copy found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The copy is fresh: the answer holds.
    Fresh(bool),
    /// The copy is missing or older than [`FRESH_FOR`].
    Stale,
}

impl SuppressionList {
    /// Looks the address's digests up in the copy, if it is fresh.
    pub fn lookup(&self, digests: &Digests) -> Lookup {
        self.lookup_at(digests, Instant::now())
    }

    fn lookup_at(&self, digests: &Digests, now: Instant) -> Lookup {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        match held.as_ref() {
            Some(h) if now.duration_since(h.checked) < FRESH_FOR => Lookup::Fresh(
                h.digests.contains(&digests.keyed) || h.digests.contains(&digests.legacy),
            ),
            _ => Lookup::Stale,
        }
    }

    /// The generation the copy was loaded at, if any.
    pub fn generation(&self) -> Option<u64> {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        held.as_ref().map(|h| h.generation)
    }

    /// The store's generation has not moved since the copy was loaded: trust it again.
    pub fn confirm(&self) {
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.as_mut() {
            h.checked = Instant::now();
        }
    }

    /// A fresh copy, read at `generation` (read before the digests, so an erasure between
    /// the two reads makes the next check reload rather than miss it).
    pub fn replace(&self, generation: u64, digests: Vec<String>) {
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        *held = Some(Held {
            generation,
            checked: Instant::now(),
            digests: digests.into_iter().collect(),
        });
    }

    /// Drops the copy (after an erasure in this process).
    pub fn invalidate(&self) {
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        *held = None;
    }

    /// Held while one check reloads the copy.
    pub async fn reload_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.reloading.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(keyed: &str, legacy: &str) -> Digests {
        Digests {
            keyed: keyed.into(),
            legacy: legacy.into(),
        }
    }

    #[test]
    fn an_empty_list_is_stale_until_loaded() {
        let list = SuppressionList::default();
        assert_eq!(list.lookup(&digests("a", "b")), Lookup::Stale);
        list.replace(3, vec!["a".into()]);
        assert_eq!(list.lookup(&digests("a", "b")), Lookup::Fresh(true));
        assert_eq!(list.lookup(&digests("x", "y")), Lookup::Fresh(false));
        assert_eq!(list.generation(), Some(3));
    }

    #[test]
    fn a_legacy_digest_also_matches() {
        let list = SuppressionList::default();
        list.replace(1, vec!["old".into()]);
        assert_eq!(list.lookup(&digests("new", "old")), Lookup::Fresh(true));
    }

    #[test]
    fn the_copy_goes_stale_after_its_freshness_window_and_when_invalidated() {
        let list = SuppressionList::default();
        list.replace(1, vec![]);
        let later = Instant::now() + FRESH_FOR + Duration::from_millis(1);
        assert_eq!(list.lookup_at(&digests("a", "b"), later), Lookup::Stale);
        list.invalidate();
        assert_eq!(list.lookup(&digests("a", "b")), Lookup::Stale);
        assert_eq!(list.generation(), None);
    }
}
