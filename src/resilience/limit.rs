//! Per-provider rate limiting: a GCRA burst limit (governor) and a daily request cap.
//!
//! Callers wait for a permit rather than fail, up to `max_wait`; past that the provider is
//! reported as rate limited and the waterfall moves on. Every attempt, retries included,
//! spends a permit. The limiter also slows down on what the vendor tells it: a `Retry-After`
//! pauses it, and a remaining-quota header paces it so the rest of the window's quota is
//! spread over the time left (slowing down *before* a 429), or pauses it until the reset when
//! nothing is left.
//!
//! Must not: decide whether an outcome is a rate limit (the connector's status map does) or
//! park a provider whose quota is exhausted (see [`super::park`]).

use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::{next_utc_midnight, system_clock, WallClock};

/// Share of the published quota we leave unused. Vendors count arrivals, not departures: a
/// little slack absorbs network jitter so evenly spaced requests never look like a burst.
pub const HEADROOM: f64 = 0.01;
/// Permits of tolerance added to the configured burst. Timers wake a little late; without
/// tolerance every late wake-up would push all later permits back and the sustained rate
/// would drift below the quota. The spacing is computed with this cell counted, so the
/// window bound still holds.
pub const TIMER_TOLERANCE: u32 = 1;
/// Default longest wait for a permit before the provider is skipped as rate limited: long
/// enough to ride out a burst window, short enough not to stall a lead.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(30);

/// A rate limit as configured: `requests` per `per`, at most `burst` at once, and an
/// optional daily cap.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub requests: u32,
    pub per: Duration,
    /// Requests allowed back to back; 1 spaces every request evenly.
    pub burst: u32,
    /// Requests per UTC day.
    pub daily: Option<u32>,
    /// Longest a caller waits for a permit.
    pub max_wait: Duration,
}

impl RateLimit {
    /// `requests` per `per`, evenly spaced, no daily cap.
    pub fn per(requests: u32, per: Duration) -> Self {
        Self {
            requests,
            per,
            burst: 1,
            daily: None,
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// The GCRA burst: the configured one plus the timer tolerance, within `requests`.
    pub fn gcra_burst(&self) -> u32 {
        (self.burst.max(1) + TIMER_TOLERANCE).min(self.requests.max(1))
    }

    /// The spacing between permits that keeps any window of length `per` at or under
    /// `requests`, bursts included: with tolerance `(B-1)·I`, a window holds at most
    /// `per/I + B - 1` permits, so `I = per / (requests - B + 1)`, plus headroom.
    pub fn emission_interval(&self) -> Duration {
        let slots = f64::from(self.requests.max(1) - self.gcra_burst() + 1);
        self.per.mul_f64((1.0 + HEADROOM) / slots)
    }

    /// `600/1m, burst 1, 2000/day` for reports.
    pub fn describe(&self) -> String {
        let mut s = format!("{}/{}", self.requests, humantime::format_duration(self.per));
        if self.burst > 1 {
            s += &format!(" (burst {})", self.burst);
        }
        if let Some(d) = self.daily {
            s += &format!(", {d}/day");
        }
        s
    }
}

/// Why no permit was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LimitError {
    #[error("rate limit: the next permit is {wait:?} away, longer than the {max_wait:?} a lead may wait")]
    WaitTooLong { wait: Duration, max_wait: Duration },
    #[error("daily request cap of {cap} reached; resets at {resets_at}")]
    DailyCap { cap: u32, resets_at: DateTime<Utc> },
}

/// What the vendor said about its limits in one response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateSignal {
    /// `Retry-After`, on a 429 (or 503).
    pub retry_after: Option<Duration>,
    /// Remaining-quota headers, one per window the vendor reports.
    pub windows: Vec<Remaining>,
}

/// One remaining-quota reading: `remaining` requests left until `reset_in`.
#[derive(Debug, Clone, PartialEq)]
pub struct Remaining {
    pub remaining: u64,
    pub reset_in: Duration,
    /// A quota window (daily, monthly): at zero the provider parks instead of waiting.
    pub quota: bool,
}

/// A monotonic clock on `tokio::time`, so a paused test clock drives the limiter too.
#[derive(Debug, Clone)]
pub struct TokioClock {
    origin: Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

/// Nanoseconds since the clock's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(u64);

impl Add<Nanos> for TokioInstant {
    type Output = Self;
    fn add(self, other: Nanos) -> Self {
        Self(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        Nanos::from(self.0.saturating_sub(earlier.0))
    }
    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.saturating_sub(duration.as_u64()))
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(
            Instant::now()
                .saturating_duration_since(self.origin)
                .as_nanos() as u64,
        )
    }
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

#[derive(Debug, Default)]
struct State {
    /// No permits before this (Retry-After, or a window with nothing left).
    paused_until: Option<Instant>,
    /// Extra spacing between permits until an instant (a vendor's remaining quota is low).
    pace: Option<(Duration, Instant)>,
    last_permit: Option<Instant>,
    day: Option<NaiveDate>,
    used_today: u32,
    /// Times the vendor's signals made us slow down or pause.
    slowdowns: u64,
}

/// A live limiter for one provider.
pub struct Limiter {
    limit: RateLimit,
    gcra: Gcra,
    clock: TokioClock,
    /// Callers take turns (FIFO): no thundering herd on each permit, fair waiting.
    turn: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    wall: WallClock,
    /// The quota shared with other replicas through Redis, when configured.
    shared: Option<std::sync::Arc<super::redis::SharedGcra>>,
    /// The daily cap and the vendor's pauses, shared with other replicas (Redis or store).
    share: Option<super::shared::SharedHandle>,
}

/// A snapshot for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterStatus {
    pub limit: String,
    pub used_today: u32,
    /// Requests allowed per UTC day, when capped.
    pub daily_cap: Option<u32>,
    pub paused_for: Option<Duration>,
    pub slowdowns: u64,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Self::with_wall_clock(limit, system_clock())
    }

    pub fn with_wall_clock(limit: RateLimit, wall: WallClock) -> Self {
        let burst = NonZeroU32::new(limit.gcra_burst()).unwrap_or(NonZeroU32::MIN);
        let interval = limit.emission_interval().max(Duration::from_nanos(1));
        let quota = Quota::with_period(interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = TokioClock::default();
        Self {
            gcra: RateLimiter::direct_with_clock(quota, clock.clone()),
            clock,
            limit,
            turn: tokio::sync::Mutex::new(()),
            state: Mutex::new(State::default()),
            wall,
            shared: None,
            share: None,
        }
    }

    /// Counts the daily cap across replicas and shares the vendor's pauses with them.
    pub fn with_shared_limits(mut self, share: Option<super::shared::SharedHandle>) -> Self {
        self.share = share;
        self
    }

    /// Also takes every permit from a quota shared with the other replicas.
    pub fn with_shared(mut self, shared: Option<std::sync::Arc<super::redis::SharedGcra>>) -> Self {
        self.shared = shared;
        self
    }

    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Waits for a permit (at most `max_wait`), or says why none is coming soon enough.
    pub async fn acquire(&self) -> Result<(), LimitError> {
        let max_wait = self.limit.max_wait;
        let deadline = Instant::now() + max_wait;
        let too_long = |at: Instant| LimitError::WaitTooLong {
            wait: at.saturating_duration_since(Instant::now()),
            max_wait,
        };
        let _turn = tokio::time::timeout_at(deadline, self.turn.lock())
            .await
            .map_err(|_| too_long(deadline))?;
        self.adopt_shared_pause().await;
        loop {
            let now = Instant::now();
            let earliest = {
                let mut s = self.lock();
                self.roll_day(&mut s);
                if let Some(cap) = self.limit.daily {
                    if s.used_today >= cap {
                        return Err(LimitError::DailyCap {
                            cap,
                            resets_at: next_utc_midnight((self.wall)()),
                        });
                    }
                }
                let mut earliest = now;
                if let Some(p) = s.paused_until {
                    earliest = earliest.max(p);
                }
                if let (Some((spacing, until)), Some(last)) = (s.pace, s.last_permit) {
                    if now < until {
                        earliest = earliest.max(last + spacing);
                    }
                }
                earliest
            };
            if earliest > now {
                if earliest > deadline {
                    return Err(too_long(earliest));
                }
                tokio::time::sleep_until(earliest).await;
                continue;
            }
            match self.gcra.check() {
                Ok(()) => break,
                Err(not_until) => {
                    let at = now + not_until.wait_time_from(self.clock.now());
                    if at > deadline {
                        return Err(too_long(at));
                    }
                    tokio::time::sleep_until(at).await;
                }
            }
        }
        if let Some(shared) = &self.shared {
            if !shared.acquire(deadline).await {
                return Err(too_long(deadline));
            }
        }
        if let (Some(share), Some(cap)) = (&self.share, self.limit.daily) {
            let today = (self.wall)().date_naive();
            if share.count_request(today, cap).await == Some(false) {
                // The replicas together spent the day: refuse here too without asking again.
                self.lock().used_today = cap;
                return Err(LimitError::DailyCap {
                    cap,
                    resets_at: next_utc_midnight((self.wall)()),
                });
            }
        }
        let mut s = self.lock();
        s.last_permit = Some(Instant::now());
        s.used_today += 1;
        Ok(())
    }

    /// Takes in what the vendor said: pause on `Retry-After` or an empty window, pace when a
    /// window is running low. Quota windows are the caller's to park on.
    pub fn observe(&self, signal: &RateSignal) {
        let now = Instant::now();
        let mut s = self.lock();
        if let Some(wait) = signal.retry_after {
            let until = now + wait;
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
            s.slowdowns += 1;
        }
        let own = self.limit.emission_interval();
        for w in signal.windows.iter().filter(|w| !w.quota) {
            let until = now + w.reset_in;
            if w.remaining == 0 {
                s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
                s.slowdowns += 1;
            } else {
                let spacing = w.reset_in / u32::try_from(w.remaining).unwrap_or(u32::MAX);
                if spacing > own {
                    let slower = s.pace.is_none_or(|(p, u)| u <= now || spacing > p);
                    if slower {
                        s.pace = Some((spacing, until));
                        s.slowdowns += 1;
                    }
                }
            }
        }
    }

    /// [`Limiter::observe`], and tells the other replicas to pause as long (a `Retry-After`,
    /// a rate window with nothing left).
    pub async fn observe_shared(&self, signal: &RateSignal) {
        self.observe(signal);
        self.share_pauses(signal).await;
    }

    /// Tells the other replicas to pause as this one does (a `Retry-After`, a rate window
    /// with nothing left); `observe` is the local half.
    pub async fn share_pauses(&self, signal: &RateSignal) {
        let Some(share) = &self.share else { return };
        let longest = signal
            .windows
            .iter()
            .filter(|w| !w.quota && w.remaining == 0)
            .map(|w| w.reset_in)
            .chain(signal.retry_after)
            .max();
        if let Some(wait) = longest {
            let until = (self.wall)()
                + chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::hours(1));
            share
                .hold(
                    super::shared::HoldKind::Pause,
                    until,
                    "the vendor asked to wait",
                )
                .await;
        }
    }

    /// A pause another replica was asked for becomes this one's.
    async fn adopt_shared_pause(&self) {
        let Some(share) = &self.share else { return };
        let now = (self.wall)();
        if let Some((until, _)) = share.held(super::shared::HoldKind::Pause, now).await {
            let left = (until - now).to_std().unwrap_or_default();
            let until = Instant::now() + left;
            let mut s = self.lock();
            if s.paused_until.is_none_or(|p| p < until) {
                s.paused_until = Some(until);
            }
        }
    }

    pub fn status(&self) -> LimiterStatus {
        let now = Instant::now();
        let mut s = self.lock();
        self.roll_day(&mut s);
        LimiterStatus {
            limit: self.limit.describe(),
            used_today: s.used_today,
            daily_cap: self.limit.daily,
            paused_for: s.paused_until.filter(|p| *p > now).map(|p| p - now),
            slowdowns: s.slowdowns,
        }
    }

    fn roll_day(&self, s: &mut State) {
        let today = (self.wall)().date_naive();
        if s.day != Some(today) {
            s.day = Some(today);
            s.used_today = 0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_spacing_keeps_every_window_under_the_quota() {
        // Burst 1 (+1 tolerance): one every 1s/9 × 1.01 = 112.2 ms; a window holds 2 + 8.
        let l = RateLimit::per(10, Duration::from_secs(1));
        assert_eq!(l.emission_interval().as_micros(), 112_222);
        let bursty = RateLimit {
            burst: 5,
            ..RateLimit::per(10, Duration::from_secs(1))
        };
        // 6 at once, then one every 202 ms: 6 + 4 = 10 within the first second.
        assert_eq!(bursty.emission_interval(), Duration::from_millis(202));
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_quota_in_any_window() {
        let limiter = Arc::new(Limiter::new(RateLimit {
            burst: 3,
            ..RateLimit::per(10, Duration::from_secs(1))
        }));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire().await.unwrap();
                Instant::now() - start
            }));
        }
        let mut at: Vec<Duration> = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at.sort();
        for (i, t) in at.iter().enumerate() {
            let in_window = at[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(1))
                .count();
            assert!(
                in_window <= 10,
                "{in_window} permits in the second after {t:?}"
            );
        }
        // And it is not idle: 4 at once, then one every 144 ms (about 7/s sustained with a
        // burst of 3 + 1, so that no window can see more than 10).
        assert!(at[39] < Duration::from_millis(5400), "{:?}", at[39]);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_caller() {
        let limiter = Limiter::new(RateLimit::per(100, Duration::from_secs(1)));
        limiter.acquire().await.unwrap();
        limiter.observe(&RateSignal {
            retry_after: Some(Duration::from_secs(5)),
            windows: vec![],
        });
        let before = Instant::now();
        limiter.acquire().await.unwrap();
        assert!(Instant::now() - before >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_pause_is_reported_instead_of_waited_out() {
        let limiter = Limiter::new(RateLimit::per(100, Duration::from_secs(1)));
        limiter.observe(&RateSignal {
            retry_after: Some(Duration::from_secs(3600)),
            windows: vec![],
        });
        assert!(matches!(
            limiter.acquire().await,
            Err(LimitError::WaitTooLong { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_low_remaining_header_slows_down_before_a_429() {
        let limiter = Limiter::new(RateLimit::per(100, Duration::from_secs(1)));
        limiter.acquire().await.unwrap();
        // 2 left for the next 10 s: one every 5 s, not one every 10 ms.
        limiter.observe(&RateSignal {
            retry_after: None,
            windows: vec![Remaining {
                remaining: 2,
                reset_in: Duration::from_secs(10),
                quota: false,
            }],
        });
        let before = Instant::now();
        limiter.acquire().await.unwrap();
        assert!(Instant::now() - before >= Duration::from_secs(5) - Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_cap_refuses_until_midnight() {
        let limiter = Limiter::new(RateLimit {
            daily: Some(3),
            ..RateLimit::per(100, Duration::from_secs(1))
        });
        for _ in 0..3 {
            limiter.acquire().await.unwrap();
        }
        assert!(matches!(
            limiter.acquire().await,
            Err(LimitError::DailyCap { cap: 3, .. })
        ));
        assert_eq!(limiter.status().used_today, 3);
    }
}
