//! Parking: a provider whose vendor says its quota or credits are exhausted (PDL 402,
//! Hunter 429, Apollo 422 "Insufficient credits", a daily remaining header at zero) rests
//! until the quota resets, and the waterfall moves on without calling it.
//!
//! Unlike a rate limit, nothing is gained by waiting a few seconds: the provider is skipped
//! for every lead until `until`.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{system_clock, WallClock};

#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    pub until: DateTime<Utc>,
    pub why: String,
}

pub struct Park {
    state: Mutex<Option<Parked>>,
    clock: WallClock,
    /// Parks shared with other replicas (Redis or store).
    share: Option<super::shared::SharedHandle>,
}

impl Default for Park {
    fn default() -> Self {
        Self::with_clock(system_clock())
    }
}

impl Park {
    pub fn with_clock(clock: WallClock) -> Self {
        Self {
            state: Mutex::new(None),
            clock,
            share: None,
        }
    }

    /// Shares parks with the other replicas.
    pub fn with_shared_limits(mut self, share: Option<super::shared::SharedHandle>) -> Self {
        self.share = share;
        self
    }

    /// [`Park::park`] here and in every replica.
    pub async fn park_everywhere(&self, until: DateTime<Utc>, why: impl Into<String>) {
        let why = why.into();
        self.park(until, why.clone());
        if let Some(share) = &self.share {
            share.hold(super::shared::HoldKind::Park, until, &why).await;
        }
    }

    /// Takes in a park another replica placed (call before [`Park::parked`]).
    pub async fn refresh(&self) {
        let Some(share) = &self.share else { return };
        if let Some((until, why)) = share.held(super::shared::HoldKind::Park, self.now()).await {
            self.park(until, why);
        }
    }

    /// Rests the provider until `until` (keeps the later date if already parked).
    pub fn park(&self, until: DateTime<Utc>, why: impl Into<String>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.as_ref().is_none_or(|p| p.until < until) {
            let why = why.into();
            tracing::warn!(%until, reason = %why, "provider parked until its quota resets");
            *s = Some(Parked { until, why });
        }
    }

    /// Why and until when the provider rests, if it does now.
    pub fn parked(&self) -> Option<Parked> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.as_ref().is_some_and(|p| p.until <= (self.clock)()) {
            *s = None;
        }
        s.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}
