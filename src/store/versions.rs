//! Change counters for the account roll-up (`account.score`): every write this process makes
//! that can change which decisions an account's leads have bumps that account's counter (or
//! every account's), after it commits. A reader that keeps a roll-up notes the counter before
//! it reads and drops its copy once the counter moved, so a copy never hides a decision this
//! process recorded. Writes by other processes are not seen here: readers also bound how long
//! they keep a copy.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the domains hash into: a collision only costs a neighbour a re-read.
const SLOTS: usize = 1024;

static EVERY_ACCOUNT: AtomicU64 = AtomicU64::new(0);
static ACCOUNT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

fn slot(domain: &str) -> &'static AtomicU64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    domain.hash(&mut h);
    &ACCOUNT[(h.finish() as usize) % SLOTS]
}

/// The account's change counter: moves whenever its stored decisions may have changed.
pub fn account_version(domain: &str) -> u64 {
    // Both counters only grow, so their sum moves when either does.
    EVERY_ACCOUNT.load(Ordering::SeqCst) + slot(domain).load(Ordering::SeqCst)
}

/// Call after a commit that changed the decisions of the account at `domain`; `None` when
/// the write may have touched any account (an erasure, a lead that changed domain).
pub fn account_changed(domain: Option<&str>) {
    match domain {
        Some(d) => slot(d).fetch_add(1, Ordering::SeqCst),
        None => EVERY_ACCOUNT.fetch_add(1, Ordering::SeqCst),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_moves_its_account_and_a_global_change_moves_every_account() {
        let (a, b) = (account_version("a.test"), account_version("b.test"));
        account_changed(Some("a.test"));
        assert_ne!(account_version("a.test"), a);
        let b2 = account_version("b.test");
        account_changed(None);
        assert_ne!(account_version("b.test"), b2);
        assert!(account_version("b.test") > b);
    }
}
