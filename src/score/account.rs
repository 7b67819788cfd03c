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
