//! Account score: the engagement of every lead of one account (same registrable domain),
//! rolled up from their latest stored decisions and faded by age — what account-based
//! teams look at when three people from one company are reading the pricing page.
//!
//! The store supplies the rows; this module only does the arithmetic.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::decay;
use crate::store::StoreError;

/// `(score, decided_at)` of an account's leads, as the store answers.
pub type AccountRows<'a> = BoxFuture<'a, Result<Vec<(f64, DateTime<Utc>)>, StoreError>>;

/// Where the account's leads' stored scores come from (the store).
pub trait AccountEngagement: Send + Sync {
    /// `(score, decided_at)` of the latest decision of every lead at `domain`.
    fn account_rows<'a>(&'a self, domain: &'a str, score: &'a str) -> AccountRows<'a>;

    /// The account's rolled-up engagement at `now`. By default from every row; the store
    /// answers from a running total kept with each decision (migration 0013), the same
    /// answer without reading the account's history.
    fn account_score<'a>(
        &'a self,
        domain: &'a str,
        rollup: &'a AccountRollup,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<AccountScore, StoreError>> {
        Box::pin(async move {
            let rows = self.account_rows(domain, &rollup.score).await?;
            Ok(rollup.roll_up(&rows, now))
        })
    }
}

/// A running total of one account's score (a row of `account_rollups`): the sum of each
/// counted lead's value faded to `as_of`, the newest counted decision. Adding and removing
/// a lead's value is O(1); reading fades the sum from `as_of` to now, the same as fading
/// every value to now since `0.5^(a+b) = 0.5^a · 0.5^b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningTotal {
    /// Milliseconds per half-life; 0 when values do not fade.
    pub half_life_ms: i64,
    pub total: f64,
    /// Unix ms.
    pub as_of: i64,
    pub leads: i64,
}

impl RunningTotal {
    /// An empty total for a roll-up fading by `half_life`.
    pub fn empty(half_life: Option<Duration>) -> Self {
        Self {
            half_life_ms: half_life_ms(half_life),
            total: 0.0,
            as_of: 0,
            leads: 0,
        }
    }

    /// The total of `rows` (what the full read answers).
    pub fn of(half_life: Option<Duration>, rows: &[(f64, DateTime<Utc>)]) -> Self {
        let mut t = Self::empty(half_life);
        for (s, at) in rows {
            t.add(*s, at.timestamp_millis());
        }
        t
    }

    fn fade(&self, ms: i64) -> f64 {
        if self.half_life_ms <= 0 {
            return 1.0;
        }
        0.5f64.powf(ms.max(0) as f64 / self.half_life_ms as f64)
    }

    /// Counts a lead's value decided at `at` (unix ms).
    pub fn add(&mut self, score: f64, at: i64) {
        self.leads += 1;
        if !score.is_finite() {
            return;
        }
        if self.leads == 1 || at > self.as_of {
            let faded = if self.leads == 1 {
                0.0
            } else {
                self.total * self.fade(at - self.as_of)
            };
            self.total = faded + score;
            self.as_of = at;
        } else {
            self.total += score * self.fade(self.as_of - at);
        }
    }

    /// Stops counting a lead's value decided at `at` (its newer decision replaces it).
    pub fn remove(&mut self, score: f64, at: i64) {
        self.leads = (self.leads - 1).max(0);
        if self.leads == 0 {
            // Nothing left: no rounding residue either.
            self.total = 0.0;
            return;
        }
        if score.is_finite() {
            self.total -= score * self.fade(self.as_of - at);
        }
    }

    /// The account's score at `now`; `None` when `now` is before the newest counted
    /// decision (a clock behind the store's), which only the full read answers exactly.
    pub fn at(&self, now: DateTime<Utc>) -> Option<AccountScore> {
        let now = now.timestamp_millis();
        if self.leads > 0 && now < self.as_of {
            return None;
        }
        let sum = if self.leads == 0 {
            0.0
        } else {
            self.total * self.fade(now - self.as_of)
        };
        Some(AccountScore {
            score: sum.round().clamp(0.0, 100.0) as i64,
            leads: usize::try_from(self.leads).unwrap_or(0),
        })
    }
}

/// A half-life as the store keeps it: whole milliseconds, 0 for none.
pub fn half_life_ms(half_life: Option<Duration>) -> i64 {
    half_life.map_or(0, |h| {
        i64::try_from(h.as_millis()).unwrap_or(i64::MAX).max(1)
    })
}

/// How a score rolls up across an account's leads.
#[derive(Debug, Clone)]
pub struct AccountRollup {
    /// The score (by id) whose stored value is summed.
    pub score: String,
    /// Each stored value fades by half per `half_life` since its decision.
    pub half_life: Option<Duration>,
}

/// The account's rolled-up engagement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccountScore {
    /// 0–100: the faded sum, rounded and clamped.
    pub score: i64,
    /// Leads of the account with a stored decision.
    pub leads: usize,
}

impl AccountRollup {
    /// Sums `(score, decided_at)` of the account's leads, each faded to `now`.
    pub fn roll_up(&self, rows: &[(f64, DateTime<Utc>)], now: DateTime<Utc>) -> AccountScore {
        let sum: f64 = rows
            .iter()
            .filter(|(s, _)| s.is_finite())
            .map(|(s, at)| s * decay(self.half_life, *at, now))
            .sum();
        AccountScore {
            score: sum.round().clamp(0.0, 100.0) as i64,
            leads: rows.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Adding and removing values one by one answers what summing every row answers.
    #[test]
    fn a_running_total_answers_the_full_sum() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let r = AccountRollup {
            score: "engagement".into(),
            half_life: Some(Duration::from_secs(86_400)),
        };
        let day = |d: i64| now - chrono::Duration::hours(d * 6);
        let mut rows: Vec<(f64, DateTime<Utc>)> = (0..40)
            .map(|i| ((i % 7) as f64 * 3.0, day(40 - i)))
            .collect();
        let mut t = RunningTotal::of(r.half_life, &rows);
        assert_eq!(t.at(now), Some(r.roll_up(&rows, now)));
        // A lead decided again: its old value leaves, its new one joins.
        let (old_s, old_at) = rows.remove(5);
        t.remove(old_s, old_at.timestamp_millis());
        rows.push((12.0, now));
        t.add(12.0, now.timestamp_millis());
        assert_eq!(t.at(now), Some(r.roll_up(&rows, now)));
        let later = now + chrono::Duration::days(2);
        assert_eq!(t.at(later), Some(r.roll_up(&rows, later)));
        assert_eq!(
            t.at(now - chrono::Duration::hours(1)),
            None,
            "a clock behind"
        );
        let flat = RunningTotal::of(None, &rows);
        let unfaded = AccountRollup {
            half_life: None,
            ..r
        };
        assert_eq!(flat.at(later), Some(unfaded.roll_up(&rows, later)));
    }

    #[test]
    fn sums_the_accounts_leads_faded_by_age() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap();
        let r = AccountRollup {
            score: "engagement".into(),
            half_life: Some(Duration::from_secs(30 * 86_400)),
        };
        // 40 today + 30 a half-life ago (→ 15) + 20 two half-lives ago (→ 5) = 60.
        let rows = [
            (40.0, now),
            (30.0, now - chrono::Duration::days(30)),
            (20.0, now - chrono::Duration::days(60)),
        ];
        assert_eq!(
            r.roll_up(&rows, now),
            AccountScore {
                score: 60,
                leads: 3
            }
        );
        assert_eq!(r.roll_up(&[(90.0, now), (80.0, now)], now).score, 100);
        assert_eq!(r.roll_up(&[], now), AccountScore { score: 0, leads: 0 });
    }
}
