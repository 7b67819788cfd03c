//! A copy of something read from the store that callers may reuse for a while: fresh for
//! one TTL; for a second TTL (or up to a longer `keep`) still answered while one background
//! read replaces it (a read inline put the store's latency under load into the answer);
//! after that, read again first. Dry runs keep their routing state and account roll-ups
//! this way.

use std::time::{Duration, Instant};

/// What to do with a kept copy now.
pub enum Reuse<T> {
    /// Answer with it.
    Fresh(T),
    /// Answer with it, and start the one background read that replaces it.
    RefreshBehind(T),
    /// Too old: read first.
    Stale,
}

/// One kept copy.
pub struct Reused<T> {
    read_at: Instant,
    value: T,
    refreshing: bool,
}

impl<T: Clone> Reused<T> {
    /// A copy read just now.
    pub fn new(value: T) -> Self {
        Self {
            read_at: Instant::now(),
            value,
            refreshing: false,
        }
    }

    /// Whether the copy answers at `ttl`, refreshed behind until twice `ttl`; at most one
    /// caller is told to refresh it.
    pub fn reuse(&mut self, ttl: Duration) -> Reuse<T> {
        self.reuse_within(ttl, 2 * ttl)
    }

    /// Fresh until `fresh`, then answered while one caller refreshes it until `keep`, then
    /// stale.
    pub fn reuse_within(&mut self, fresh: Duration, keep: Duration) -> Reuse<T> {
        let age = self.read_at.elapsed();
        if age < fresh {
            Reuse::Fresh(self.value.clone())
        } else if age < keep {
            if std::mem::replace(&mut self.refreshing, true) {
                Reuse::Fresh(self.value.clone())
            } else {
                Reuse::RefreshBehind(self.value.clone())
            }
        } else {
            Reuse::Stale
        }
    }

    /// The background read failed: the next caller past the TTL tries again.
    pub fn refresh_failed(&mut self) {
        self.refreshing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_then_one_refresh_behind_then_stale() {
        let ttl = Duration::from_millis(300);
        let mut copy = Reused::new(7);
        assert!(matches!(copy.reuse(ttl), Reuse::Fresh(7)));
        std::thread::sleep(ttl);
        assert!(matches!(copy.reuse(ttl), Reuse::RefreshBehind(7)));
        assert!(
            matches!(copy.reuse(ttl), Reuse::Fresh(7)),
            "one refresh at a time"
        );
        copy.refresh_failed();
        assert!(
            matches!(copy.reuse(ttl), Reuse::RefreshBehind(7)),
            "a failed one is retried"
        );
        std::thread::sleep(ttl);
        assert!(matches!(copy.reuse(ttl), Reuse::Stale));
    }

    #[test]
    fn a_longer_keep_answers_past_twice_the_fresh_time() {
        let (fresh, keep) = (Duration::from_millis(100), Duration::from_millis(400));
        let mut copy = Reused::new(7);
        std::thread::sleep(3 * fresh);
        assert!(matches!(
            copy.reuse_within(fresh, keep),
            Reuse::RefreshBehind(7)
        ));
        std::thread::sleep(fresh);
        assert!(matches!(copy.reuse_within(fresh, keep), Reuse::Stale));
    }
}
