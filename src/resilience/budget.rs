//! A daily credit budget per provider. Credits are reserved before a call (so concurrent
//! calls can never overspend) and charged after it when the vendor bills that outcome;
//! unbilled reservations are released. The day is the UTC day.
//!
//! The charges are also kept for the store (`take_unsaved`), which adds them up across
//! restarts and replicas; what the store reports (`saw_total`) raises the day's count, so a
//! restarted daemon, or another replica, does not start the day's budget again from zero.
//!
//! Must not: know what a call costs or which outcomes are billed (the manifest says).

use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};

use super::{next_utc_midnight, system_clock, WallClock};

/// The day's budget is spent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("daily budget of {limit} credits spent ({used} used); resets at {resets_at}")]
pub struct BudgetSpent {
    pub limit: f64,
    pub used: f64,
    pub resets_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Day {
    day: Option<NaiveDate>,
    used: f64,
    reserved: f64,
    /// Charges not yet handed to the store, by UTC day.
    unsaved: Vec<(NaiveDate, f64)>,
}

pub struct Budget {
    /// Credits per UTC day; none means unlimited (still counted).
    daily: Option<f64>,
    state: Mutex<Day>,
    clock: WallClock,
    /// The day's credits claimed across replicas (Redis or store) before each call.
    share: Option<super::shared::SharedHandle>,
}

/// Credits held for one call.
pub struct Reservation<'a> {
    budget: &'a Budget,
    cost: f64,
    settled: bool,
}

impl Budget {
    pub fn new(daily: Option<f64>) -> Self {
        Self::with_clock(daily, system_clock())
    }

    pub fn with_clock(daily: Option<f64>, clock: WallClock) -> Self {
        Self {
            daily,
            state: Mutex::new(Day::default()),
            clock,
            share: None,
        }
    }

    /// Claims each call's credits across replicas too.
    pub fn with_shared_limits(mut self, share: Option<super::shared::SharedHandle>) -> Self {
        self.share = share;
        self
    }

    /// Claims `cost` from the day's budget shared by every replica (after a local
    /// [`Budget::reserve`]); without a budget, a share, or a cost there is nothing to claim.
    /// Unreachable, the local budget decides alone. A claim not billed is released with
    /// [`Budget::release_shared`].
    pub async fn claim_shared(&self, cost: f64) -> Result<(), BudgetSpent> {
        let (Some(share), Some(limit)) = (&self.share, self.daily) else {
            return Ok(());
        };
        if cost <= 0.0 {
            return Ok(());
        }
        match share.claim_credits(self.today(), cost, limit).await {
            Some(Err(used)) => {
                let mut s = self.lock();
                // The replicas together spent it: refuse locally until the day turns.
                s.used = s.used.max(used);
                Err(BudgetSpent {
                    limit,
                    used,
                    resets_at: next_utc_midnight((self.clock)()),
                })
            }
            Some(Ok(())) | None => Ok(()),
        }
    }

    /// Gives back a shared claim the vendor did not bill (or whose call was not made).
    pub async fn release_shared(&self, cost: f64) {
        if let (Some(share), Some(_)) = (&self.share, self.daily) {
            share.release_credits(self.today(), cost).await;
        }
    }

    pub fn daily(&self) -> Option<f64> {
        self.daily
    }

    /// Holds `cost` credits, or says the day's budget cannot cover them.
    pub fn reserve(&self, cost: f64) -> Result<Reservation<'_>, BudgetSpent> {
        let mut s = self.lock();
        if let Some(limit) = self.daily {
            if s.used + s.reserved + cost > limit + f64::EPSILON {
                return Err(BudgetSpent {
                    limit,
                    used: s.used,
                    resets_at: next_utc_midnight((self.clock)()),
                });
            }
        }
        s.reserved += cost;
        Ok(Reservation {
            budget: self,
            cost,
            settled: false,
        })
    }

    /// Today, by this budget's clock (UTC).
    pub fn today(&self) -> NaiveDate {
        (self.clock)().date_naive()
    }

    /// Credits charged today.
    pub fn used_today(&self) -> f64 {
        self.lock().used
    }

    /// The charges made since the last call, by day, for the store to add up.
    pub fn take_unsaved(&self) -> Vec<(NaiveDate, f64)> {
        std::mem::take(&mut self.lock().unsaved)
    }

    /// Gives back charges the store could not take, to be handed over again.
    pub fn keep_unsaved(&self, charges: Vec<(NaiveDate, f64)>) {
        let mut s = self.lock();
        for (day, credits) in charges {
            add_to(&mut s.unsaved, day, credits);
        }
    }

    /// The store's total for `day` (every process's charges it has been given): today's
    /// count becomes at least that plus this process's charges not handed over yet.
    pub fn saw_total(&self, day: NaiveDate, total: f64) {
        let mut s = self.lock();
        if s.day != Some(day) {
            return;
        }
        let pending: f64 = s
            .unsaved
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, c)| c)
            .sum();
        s.used = s.used.max(total + pending);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Day> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let today = (self.clock)().date_naive();
        if s.day != Some(today) {
            // Reservations in flight across midnight are released into the new day.
            s.day = Some(today);
            s.used = 0.0;
        }
        s
    }
}

impl Reservation<'_> {
    /// Settles the call: charge the credits if the vendor bills this outcome. Returns the
    /// credits charged.
    pub fn settle(mut self, billed: bool) -> f64 {
        self.settled = true;
        let mut s = self.budget.lock();
        s.reserved = (s.reserved - self.cost).max(0.0);
        if billed {
            s.used += self.cost;
            // Free calls (a CRM's, mostly) leave nothing for the store to add up.
            if let (Some(day), true) = (s.day, self.cost > 0.0) {
                add_to(&mut s.unsaved, day, self.cost);
            }
            self.cost
        } else {
            0.0
        }
    }
}

fn add_to(charges: &mut Vec<(NaiveDate, f64)>, day: NaiveDate, credits: f64) {
    match charges.iter_mut().find(|(d, _)| *d == day) {
        Some((_, c)) => *c += credits,
        None => charges.push((day, credits)),
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            let mut s = self.budget.lock();
            s.reserved = (s.reserved - self.cost).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    #[test]
    fn refuses_once_spent_and_resets_at_midnight() {
        let t = Arc::new(AtomicI64::new(1_700_000_000));
        let clock_t = t.clone();
        let clock: WallClock =
            Arc::new(move || DateTime::from_timestamp(clock_t.load(Ordering::SeqCst), 0).unwrap());
        let b = Budget::with_clock(Some(2.0), clock);
        b.reserve(1.0).unwrap().settle(true);
        b.reserve(1.0).unwrap().settle(false);
        b.reserve(1.0).unwrap().settle(true);
        let err = b.reserve(1.0).err().unwrap();
        assert_eq!(err.used, 2.0);
        t.fetch_add(86_400, Ordering::SeqCst);
        assert!(b.reserve(1.0).is_ok());
        assert_eq!(b.used_today(), 0.0);
    }

    #[test]
    fn charges_are_handed_to_the_store_once_and_its_total_raises_the_count() {
        let b = Budget::new(Some(10.0));
        let today = Utc::now().date_naive();
        b.reserve(1.0).unwrap().settle(true);
        b.reserve(1.0).unwrap().settle(false);
        b.reserve(2.0).unwrap().settle(true);
        b.reserve(0.0).unwrap().settle(true);
        assert_eq!(b.take_unsaved(), vec![(today, 3.0)]);
        assert!(b.take_unsaved().is_empty(), "handed over once");
        // Another process charged 5 today; the store has our 3 too.
        b.saw_total(today, 8.0);
        assert_eq!(b.used_today(), 8.0);
        b.reserve(1.0).unwrap().settle(true);
        // Not handed over yet: counted on top of the store's total, never twice.
        b.saw_total(today, 8.0);
        assert_eq!(b.used_today(), 9.0);
        assert!(b.reserve(2.0).is_err(), "9 + 2 is over the budget of 10");
        // A total lower than what this process counted (the store was reset) lowers nothing,
        // and a write that failed is handed over again.
        b.saw_total(today, 1.0);
        assert_eq!(b.used_today(), 9.0);
        let failed = b.take_unsaved();
        b.keep_unsaved(failed);
        assert_eq!(b.take_unsaved(), vec![(today, 1.0)]);
        // Another day's total is not today's.
        b.saw_total(today.pred_opt().unwrap(), 100.0);
        assert_eq!(b.used_today(), 9.0);
    }

    #[test]
    fn reservations_keep_concurrent_calls_within_budget() {
        let b = Budget::new(Some(2.0));
        let r1 = b.reserve(1.0).unwrap();
        let _r2 = b.reserve(1.0).unwrap();
        assert!(b.reserve(1.0).is_err());
        drop(r1);
        assert!(b.reserve(1.0).is_ok());
    }
}
