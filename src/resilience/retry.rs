//! Retries with `backon`: exponential backoff with jitter, bounded in attempts, only for
//! errors that say they are retryable; a `Retry-After` the error carries replaces the
//! backoff delay, and one longer than `max_retry_after` ends the retries (the limiter has
//! been paused for that long, so the next lead skips the provider rather than wait).
//!
//! Must not: decide what is retryable (the error does, see [`Retryable`]).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};

/// Default attempts in all (the first one included): two retries ride out a blip.
pub const DEFAULT_ATTEMPTS: usize = 3;
/// Default first backoff delay.
pub const DEFAULT_MIN_DELAY: Duration = Duration::from_millis(200);
/// Default longest backoff delay: a lead should not wait on one provider for long.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(5);
/// Default longest `Retry-After` honoured in place: longer, and the provider is skipped.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What an error says about retrying it.
pub trait Retryable {
    fn retryable(&self) -> bool;
    /// The vendor's `Retry-After`, when it sent one.
    fn retry_after(&self) -> Option<Duration>;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 disables retries.
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            min_delay: DEFAULT_MIN_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, fails for good, or the attempts are spent.
    pub async fn run<T, E, F, Fut>(&self, attempt: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1));
        let max_retry_after = self.max_retry_after;
        attempt
            .retry(backoff)
            .when(|e: &E| e.retryable())
            .adjust(move |e: &E, delay| match (delay, e.retry_after()) {
                (None, _) => None,
                (Some(_), Some(wait)) if wait > max_retry_after => None,
                (Some(_), Some(wait)) => Some(wait),
                (Some(d), None) => Some(d),
            })
            .notify(|_e: &E, delay| tracing::debug!(?delay, "retrying the provider call"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct E {
        retryable: bool,
        after: Option<Duration>,
    }
    impl Retryable for E {
        fn retryable(&self) -> bool {
            self.retryable
        }
        fn retry_after(&self) -> Option<Duration> {
            self.after
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_a_bounded_number_of_times() {
        let calls = AtomicUsize::new(0);
        let r: Result<(), E> = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E {
                    retryable: true,
                    after: None,
                })
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), DEFAULT_ATTEMPTS);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_what_is_not_retryable() {
        let calls = AtomicUsize::new(0);
        let _: Result<(), E> = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E {
                    retryable: false,
                    after: None,
                })
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn honours_retry_after_and_gives_up_on_a_long_one() {
        let start = tokio::time::Instant::now();
        let calls = AtomicUsize::new(0);
        let r: Result<(), E> = RetryPolicy::default()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(E {
                        retryable: true,
                        after: Some(Duration::from_secs(7)),
                    })
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(r.is_ok());
        assert!(start.elapsed() >= Duration::from_secs(7));

        let calls = AtomicUsize::new(0);
        let _: Result<(), E> = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(E {
                    retryable: true,
                    after: Some(Duration::from_secs(3600)),
                })
            })
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
