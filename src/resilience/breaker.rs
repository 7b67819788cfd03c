//! A circuit breaker per provider: after `failures` consecutive failures it opens and the
//! provider is skipped (`circuit_open`) for `cooldown`; then it half-opens and lets one trial
//! call through: success closes it, failure opens it again.
//!
//! Must not: decide what a failure is. The caller records outcomes; a "not found" or an
//! invalid input is a success for the breaker (the vendor answered), a timeout or a 5xx is not.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// Default consecutive failures that open the circuit: enough to ignore a blip.
pub const DEFAULT_FAILURES: u32 = 5;
/// Default time an open circuit waits before a trial call: vendors' incidents are minutes.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: DEFAULT_FAILURES,
            cooldown: DEFAULT_COOLDOWN,
        }
    }
}

/// The circuit's state, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
enum State {
    Closed { consecutive: u32 },
    Open { until: Instant },
    HalfOpen { trial: bool },
}

/// The circuit is open: no call for `retry_in`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("circuit open after repeated failures; next trial in {retry_in:?}")]
pub struct CircuitOpen {
    pub retry_in: Duration,
}

pub struct Breaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Permission for one call. Record its result; dropped unrecorded (the call was cancelled),
/// a half-open trial slot is given back.
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    trial: bool,
    recorded: bool,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State::Closed { consecutive: 0 }),
        }
    }

    /// A ticket for one call, or why not.
    pub fn try_acquire(&self) -> Result<Ticket<'_>, CircuitOpen> {
        let mut s = self.lock();
        let now = Instant::now();
        if let State::Open { until } = *s {
            if now < until {
                return Err(CircuitOpen {
                    retry_in: until - now,
                });
            }
            *s = State::HalfOpen { trial: false };
        }
        let trial = match &mut *s {
            State::HalfOpen { trial } if *trial => {
                return Err(CircuitOpen {
                    retry_in: Duration::ZERO,
                })
            }
            State::HalfOpen { trial } => {
                *trial = true;
                true
            }
            _ => false,
        };
        Ok(Ticket {
            breaker: self,
            trial,
            recorded: false,
        })
    }

    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if Instant::now() < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn record(&self, success: bool) {
        let mut s = self.lock();
        let open = State::Open {
            until: Instant::now() + self.config.cooldown,
        };
        *s = match (&*s, success) {
            (_, true) => State::Closed { consecutive: 0 },
            (State::Closed { consecutive }, false) if consecutive + 1 < self.config.failures => {
                State::Closed {
                    consecutive: consecutive + 1,
                }
            }
            // A late failure from a call started before the circuit opened keeps it open.
            (State::Open { until }, false) => State::Open { until: *until },
            (_, false) => {
                tracing::warn!(cooldown = ?self.config.cooldown, "circuit opened after repeated provider failures");
                open
            }
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Ticket<'_> {
    pub fn success(mut self) {
        self.recorded = true;
        self.breaker.record(true);
    }

    pub fn failure(mut self) {
        self.recorded = true;
        self.breaker.record(false);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            let mut s = self.breaker.lock();
            if let State::HalfOpen { trial } = &mut *s {
                *trial = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_repeated_failures_and_half_opens_after_the_cooldown() {
        let b = Breaker::new(BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(10),
        });
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.try_acquire().is_err());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let trial = b.try_acquire().unwrap();
        assert!(b.try_acquire().is_err(), "one trial at a time");
        trial.failure();
        assert_eq!(b.state(), CircuitState::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = Breaker::new(BreakerConfig {
            failures: 2,
            cooldown: Duration::from_secs(1),
        });
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_trial_gives_its_slot_back() {
        let b = Breaker::new(BreakerConfig {
            failures: 1,
            cooldown: Duration::from_secs(1),
        });
        b.try_acquire().unwrap().failure();
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(b.try_acquire().unwrap());
        assert!(b.try_acquire().is_ok());
    }
}
