//! The one resilience stack every upstream call goes through — an enrichment provider's
//! lookup and a CRM or nurture connector's operation alike — in one order:
//!
//! park → breaker → budget → retry → rate limiter → the caller's attempt (timeout → HTTP)
//!
//! - **park**: a connector whose vendor said its quota is spent rests until it resets;
//! - **breaker**: repeated provider failures open the circuit (enrichment only: a CRM
//!   refusal is the CRM's word on a lead, not a reason to stop asking);
//! - **budget**: the call's credits are reserved, locally and across replicas, and charged
//!   only when the vendor bills the outcome;
//! - **retry**: bounded backoff with jitter, honouring `Retry-After`, for retryable failures;
//! - **rate limiter**: every attempt, retries included, spends one permit.
//!
//! The caller's attempt does the HTTP exchange (with its timeout) and reads the vendor's
//! rate-limit signals; what a failure *means* (retryable? a provider failure? the quota
//! spent?) is the attempt's error's to say, through [`Failure`].

use std::future::Future;
use std::time::Duration;

use super::breaker::{Breaker, CircuitOpen};
use super::budget::{Budget, BudgetSpent};
use super::limit::{LimitError, Limiter};
use super::park::{Park, Parked};
use super::retry::{RetryPolicy, Retryable};

/// What the stack needs to know about an attempt's failure, beyond whether to retry it.
pub trait Failure: Retryable {
    /// Whether it counts against the provider's circuit (a 5xx, a timeout), as opposed to
    /// an answer about the lead itself (a 4xx on bad input).
    fn trips_breaker(&self) -> bool;
}

/// Why the stack gave no attempt a chance, or stopped before the next one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error("{} — resting until {}", .0.why, .0.until.format("%Y-%m-%d %H:%M UTC"))]
    Parked(Parked),
    #[error("{0}")]
    CircuitOpen(CircuitOpen),
    #[error("{0}")]
    Budget(BudgetSpent),
    #[error("{0}")]
    Limited(LimitError),
}

/// A call that did not succeed: refused by the stack, or failed upstream.
#[derive(Debug)]
pub enum CallError<E> {
    Refused(Refusal),
    Failed(E),
}

/// A call that succeeded, with the credits it was charged.
#[derive(Debug)]
pub struct Called<T> {
    pub value: T,
    pub credits: f64,
}

/// One attempt's failure inside the retry loop: the limiter's refusal is never retried in
/// place (the permit would not come sooner).
enum Attempt<E> {
    Limited(LimitError),
    Failed(E),
}

impl<E: Failure> Retryable for Attempt<E> {
    fn retryable(&self) -> bool {
        matches!(self, Attempt::Failed(e) if e.retryable())
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Attempt::Limited(_) => None,
            Attempt::Failed(e) => e.retry_after(),
        }
    }
}

/// Whether an attempt takes one of the connector's rate-limit permits: an operation the
/// vendor limits on its own (HubSpot search) is paced by the caller instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permits {
    Connector,
    OwnLimit,
}

/// The stack of one connector.
pub struct Stack {
    pub park: Park,
    pub breaker: Option<Breaker>,
    pub budget: Budget,
    pub retry: RetryPolicy,
    pub limiter: Limiter,
}

impl Stack {
    /// Runs `attempt` through the stack. `billed` says whether the vendor bills a
    /// successful answer (a not-found is free at some vendors); a failed call is never
    /// charged.
    pub async fn call<T, E, F, Fut>(
        &self,
        cost: f64,
        billed: impl FnOnce(&T) -> bool,
        attempt: F,
    ) -> Result<Called<T>, CallError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(cost, billed, Permits::Connector, attempt)
            .await
    }

    /// [`Stack::call`], saying whether each attempt takes a limiter permit.
    pub async fn call_with<T, E, F, Fut>(
        &self,
        cost: f64,
        billed: impl FnOnce(&T) -> bool,
        permits: Permits,
        mut attempt: F,
    ) -> Result<Called<T>, CallError<E>>
    where
        E: Failure,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.park.refresh().await;
        if let Some(p) = self.park.parked() {
            return Err(CallError::Refused(Refusal::Parked(p)));
        }
        let ticket = match &self.breaker {
            Some(b) => Some(
                b.try_acquire()
                    .map_err(|e| CallError::Refused(Refusal::CircuitOpen(e)))?,
            ),
            None => None,
        };
        let reservation = self
            .budget
            .reserve(cost)
            .map_err(|e| CallError::Refused(Refusal::Budget(e)))?;
        self.budget
            .claim_shared(cost)
            .await
            .map_err(|e| CallError::Refused(Refusal::Budget(e)))?;
        let result = self
            .retry
            .run(|| {
                let upstream = attempt();
                async move {
                    if permits == Permits::Connector {
                        self.limiter.acquire().await.map_err(Attempt::Limited)?;
                    }
                    upstream.await.map_err(Attempt::Failed)
                }
            })
            .await;
        match result {
            Ok(value) => {
                if let Some(t) = ticket {
                    t.success();
                }
                let billed = billed(&value);
                let credits = reservation.settle(billed);
                if !billed {
                    self.budget.release_shared(cost).await;
                }
                Ok(Called { value, credits })
            }
            Err(Attempt::Limited(e)) => {
                // Neither a success nor a failure of the provider: the breaker's trial slot
                // and the reserved credits go back.
                drop(ticket);
                drop(reservation);
                self.budget.release_shared(cost).await;
                Err(CallError::Refused(Refusal::Limited(e)))
            }
            Err(Attempt::Failed(e)) => {
                if let Some(t) = ticket {
                    if e.trips_breaker() {
                        t.failure();
                    } else {
                        t.success();
                    }
                }
                reservation.settle(false);
                self.budget.release_shared(cost).await;
                Err(CallError::Failed(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::resilience::breaker::BreakerConfig;
    use crate::resilience::limit::RateLimit;

    #[derive(Debug)]
    struct Upstream {
        retryable: bool,
        provider: bool,
    }

    impl Retryable for Upstream {
        fn retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            None
        }
    }

    impl Failure for Upstream {
        fn trips_breaker(&self) -> bool {
            self.provider
        }
    }

    fn stack(budget: Option<f64>, breaker: bool) -> Stack {
        Stack {
            park: Park::default(),
            breaker: breaker.then(|| {
                Breaker::new(BreakerConfig {
                    failures: 1,
                    cooldown: Duration::from_secs(60),
                })
            }),
            budget: Budget::new(budget),
            retry: RetryPolicy {
                attempts: 3,
                min_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                max_retry_after: Duration::from_secs(1),
            },
            limiter: Limiter::new(RateLimit::per(1000, Duration::from_secs(1))),
        }
    }

    #[tokio::test]
    async fn retries_a_retryable_failure_and_charges_only_the_billed_success() {
        let s = stack(Some(10.0), true);
        let tries = AtomicU32::new(0);
        let called = s
            .call(
                2.0,
                |_: &u32| true,
                || async {
                    match tries.fetch_add(1, Ordering::SeqCst) {
                        0 => Err(Upstream {
                            retryable: true,
                            provider: true,
                        }),
                        n => Ok(n),
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(called.value, 1);
        assert_eq!(called.credits, 2.0);
        assert_eq!(s.budget.used_today(), 2.0);
        let free = s.call(2.0, |_: &u32| false, || async { Ok::<_, Upstream>(7) });
        assert_eq!(free.await.unwrap().credits, 0.0);
        assert_eq!(
            s.budget.used_today(),
            2.0,
            "an unbilled answer costs nothing"
        );
    }

    #[tokio::test]
    async fn a_provider_failure_opens_the_circuit_and_a_lead_failure_does_not() {
        let s = stack(None, true);
        let lead = s
            .call(
                1.0,
                |_: &()| true,
                || async {
                    Err::<(), _>(Upstream {
                        retryable: false,
                        provider: false,
                    })
                },
            )
            .await;
        assert!(matches!(lead, Err(CallError::Failed(_))));
        let provider = s
            .call(
                1.0,
                |_: &()| true,
                || async {
                    Err::<(), _>(Upstream {
                        retryable: false,
                        provider: true,
                    })
                },
            )
            .await;
        assert!(matches!(provider, Err(CallError::Failed(_))));
        assert_eq!(s.budget.used_today(), 0.0, "failed calls are not charged");
        let next = s.call(1.0, |_: &()| true, || async { Ok::<_, Upstream>(()) });
        assert!(matches!(
            next.await,
            Err(CallError::Refused(Refusal::CircuitOpen(_)))
        ));
    }

    #[tokio::test]
    async fn a_spent_budget_or_a_parked_connector_makes_no_attempt() {
        let s = stack(Some(1.0), false);
        let tries = AtomicU32::new(0);
        let attempt = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Upstream>(())
        };
        s.call(1.0, |_| true, attempt).await.unwrap();
        let spent = s.call(1.0, |_| true, attempt).await;
        assert!(matches!(spent, Err(CallError::Refused(Refusal::Budget(_)))));
        s.park.park(
            chrono::Utc::now() + chrono::Duration::hours(1),
            "quota spent",
        );
        let parked = s.call(0.0, |_| true, attempt).await;
        assert!(matches!(
            parked,
            Err(CallError::Refused(Refusal::Parked(_)))
        ));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
