//! What went wrong on a connector call, as data: the kind, who is to blame, whether and when
//! to retry. Policy code (retry, breaker, park) reads these fields, never the message.

use std::time::Duration;

use serde::Serialize;

use crate::resilience::retry::Retryable;

/// The closed set of connector failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// Could not connect (DNS, refused, TLS).
    Connect,
    /// The vendor failed (5xx, or a status the manifest marks `retry`).
    Upstream,
    /// Slow down (429): retried after `Retry-After`.
    RateLimited,
    /// Out of credits or over the plan's quota: the provider parks until the reset.
    QuotaExhausted,
    /// The key is missing, wrong or lacks access.
    AuthFailed,
    /// The vendor refused the request as invalid (usually the lead's data).
    Invalid,
    /// A success status with a body that is not the JSON we expect.
    BadResponse,
    /// A redirect: never followed, so lead data only goes to the configured host.
    Redirect,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Upstream => "upstream",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::Invalid => "invalid",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Redirect => "redirect",
        }
    }

    /// Worth another attempt soon.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Upstream | ErrorKind::RateLimited
        )
    }

    /// Counts toward opening the circuit: the vendor (or our access to it) is broken, as
    /// opposed to answering normally about a lead, or asking us to slow down.
    pub fn is_provider_failure(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Connect
                | ErrorKind::Upstream
                | ErrorKind::AuthFailed
                | ErrorKind::BadResponse
                | ErrorKind::Redirect
        )
    }

    pub fn blame(self) -> Blame {
        match self {
            ErrorKind::Invalid => Blame::Input,
            ErrorKind::AuthFailed | ErrorKind::QuotaExhausted | ErrorKind::Redirect => {
                Blame::Config
            }
            _ => Blame::Upstream,
        }
    }
}

/// Who can fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The vendor (wait, or it recovers).
    Upstream,
    /// The lead's data.
    Input,
    /// The admin: a key, a plan, a base URL.
    Config,
}

/// One failed call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub kind: ErrorKind,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// How long the vendor asked us to wait.
    pub retry_after: Option<Duration>,
    /// For the decision record and `explain`: says what happened and what to do. Never
    /// holds secrets; emails in vendor messages are masked.
    pub message: String,
}

impl ConnectorError {
    pub fn new(kind: ErrorKind, status: Option<u16>, message: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            retry_after: None,
            message: message.into(),
        }
    }

    pub fn blame(&self) -> Blame {
        self.kind.blame()
    }
}

impl Retryable for ConnectorError {
    fn retryable(&self) -> bool {
        self.kind.retryable()
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl crate::resilience::stack::Failure for ConnectorError {
    fn trips_breaker(&self) -> bool {
        self.kind.is_provider_failure()
    }
}
