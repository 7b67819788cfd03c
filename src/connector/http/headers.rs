//! Reading the vendor's rate-limit headers into a [`RateSignal`]: `Retry-After` (seconds or
//! an HTTP date) and the remaining-quota headers the manifest names (`X-RateLimit-Remaining`,
//! `X-HubSpot-RateLimit-Remaining`, PDL's JSON `x-ratelimit-remaining`, Apollo's
//! `x-24-hour-requests-left` ...).

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::HeaderMap;

use crate::connector::manifest::ResetUnit;
use crate::connector::spec::RateLimitSpec;
use crate::resilience::limit::{RateSignal, Remaining};

/// Epoch seconds above this are a date, below it a count of seconds (auto reset unit).
const EPOCH_THRESHOLD: f64 = 1.0e9;

/// The signal in one response's headers.
pub fn read(spec: Option<&RateLimitSpec>, headers: &HeaderMap, now: DateTime<Utc>) -> RateSignal {
    let retry_header = spec.map_or(crate::connector::spec::DEFAULT_RETRY_AFTER_HEADER, |s| {
        s.retry_after_header.as_str()
    });
    let retry_after = header(headers, retry_header).and_then(|v| retry_after(v, now));
    let windows = spec
        .map(|s| {
            s.headers
                .iter()
                .filter_map(|h| {
                    let raw = header(headers, &h.remaining)?;
                    let remaining = match &h.key {
                        Some(k) if !raw.starts_with('{') => super::limit_info::remaining(raw, k)?,
                        Some(k) => serde_json::from_str::<serde_json::Value>(raw)
                            .ok()?
                            .get(k)
                            .and_then(|v| {
                                v.as_f64()
                                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                            })?,
                        None => raw.trim().parse::<f64>().ok()?,
                    };
                    let reset_in = h
                        .reset
                        .as_deref()
                        .and_then(|name| header(headers, name))
                        .and_then(|v| reset(v, h.reset_unit, now))
                        .unwrap_or(h.window);
                    Some(Remaining {
                        remaining: remaining.max(0.0) as u64,
                        reset_in,
                        quota: h.quota,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    RateSignal {
        retry_after,
        windows,
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After: 30` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`.
pub fn retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn reset(v: &str, unit: ResetUnit, now: DateTime<Utc>) -> Option<Duration> {
    let until = |at: DateTime<Utc>| (at - now).to_std().ok().or(Some(Duration::ZERO));
    let n = v.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    match (unit, n) {
        (ResetUnit::Seconds, Some(n)) => Some(Duration::from_secs_f64(n)),
        (ResetUnit::Milliseconds, Some(n)) => Some(Duration::from_secs_f64(n / 1000.0)),
        (ResetUnit::EpochSeconds, Some(n)) => until(DateTime::from_timestamp(n as i64, 0)?),
        (ResetUnit::Auto, Some(n)) if n > EPOCH_THRESHOLD => {
            until(DateTime::from_timestamp(n as i64, 0)?)
        }
        (ResetUnit::Auto, Some(n)) => Some(Duration::from_secs_f64(n)),
        (_, None) => {
            let at = DateTime::parse_from_rfc3339(v)
                .map(|d| d.with_timezone(&Utc))
                .or_else(|_| DateTime::parse_from_rfc2822(v).map(|d| d.with_timezone(&Utc)))
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S")
                        .ok()
                        .map(|d| d.and_utc())
                })
                .or_else(|| {
                    NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S")
                        .ok()
                        .map(|d| d.and_utc())
                })?;
            until(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn reset_headers_in_every_unit() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            reset("1800000030", ResetUnit::Auto, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            reset("30", ResetUnit::Auto, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            reset("10000", ResetUnit::Milliseconds, now),
            Some(Duration::from_secs(10))
        );
    }
}
