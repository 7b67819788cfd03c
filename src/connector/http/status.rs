//! What an answer means: ordered response rules (status + body text + header), then the
//! status map, then the defaults. "Slow down" and "out of budget" are different outcomes
//! even when a vendor uses one status for both (Apollo 429 with `x-24-hour-requests-left: 0`,
//! Apollo 422 "Insufficient credits" vs an invalid domain).

use std::collections::HashMap;

use reqwest::header::HeaderMap;

use crate::connector::manifest::StatusOutcome;

/// Status code → outcome, as the manifest lists them.
pub type StatusMap = HashMap<u16, StatusOutcome>;

/// A checked `[[operations.NAME.rules]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseRule {
    pub status: Vec<u16>,
    /// Lower-cased.
    pub body_contains: Option<String>,
    pub header: Option<String>,
    pub header_equals: Option<String>,
    pub outcome: StatusOutcome,
}

impl ResponseRule {
    fn matches(&self, status: u16, headers: &HeaderMap, body_lower: &str) -> bool {
        (self.status.is_empty() || self.status.contains(&status))
            && self
                .body_contains
                .as_ref()
                .is_none_or(|t| body_lower.contains(t.as_str()))
            && self.header.as_ref().is_none_or(|h| {
                let value = headers.get(h.as_str()).and_then(|v| v.to_str().ok());
                match (&self.header_equals, value) {
                    (Some(want), Some(got)) => got.trim().eq_ignore_ascii_case(want),
                    (None, Some(_)) => true,
                    (_, None) => false,
                }
            })
    }
}

/// The outcome of a status nobody listed: 2xx found, 429 rate limited, 401/403 auth,
/// 408 and 5xx retry, anything else invalid.
pub fn default_outcome(status: u16) -> StatusOutcome {
    match status {
        200..=299 => StatusOutcome::Found,
        429 => StatusOutcome::RateLimited,
        401 | 403 => StatusOutcome::AuthFailed,
        408 | 500..=599 => StatusOutcome::Retry,
        _ => StatusOutcome::Invalid,
    }
}

/// Classifies one response.
pub fn classify(
    rules: &[ResponseRule],
    map: &StatusMap,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> StatusOutcome {
    if !rules.is_empty() {
        let lower = String::from_utf8_lossy(body).to_lowercase();
        if let Some(rule) = rules.iter().find(|r| r.matches(status, headers, &lower)) {
            return rule.outcome;
        }
    }
    map.get(&status)
        .copied()
        .unwrap_or_else(|| default_outcome(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_come_before_the_map_and_the_map_before_defaults() {
        let rules = vec![ResponseRule {
            status: vec![422],
            body_contains: Some("insufficient credits".into()),
            header: None,
            header_equals: None,
            outcome: StatusOutcome::QuotaExhausted,
        }];
        let map = StatusMap::from([(422, StatusOutcome::Invalid), (202, StatusOutcome::Pending)]);
        let h = HeaderMap::new();
        let credits = br#"{"error":"Insufficient credits. Please upgrade your plan."}"#;
        assert_eq!(
            classify(&rules, &map, 422, &h, credits),
            StatusOutcome::QuotaExhausted
        );
        assert_eq!(
            classify(&rules, &map, 422, &h, b"{\"error\":\"bad domain\"}"),
            StatusOutcome::Invalid
        );
        assert_eq!(classify(&rules, &map, 202, &h, b""), StatusOutcome::Pending);
        assert_eq!(classify(&rules, &map, 503, &h, b""), StatusOutcome::Retry);
    }

    #[test]
    fn a_rule_can_read_a_header() {
        let rules = vec![ResponseRule {
            status: vec![429],
            body_contains: None,
            header: Some("x-24-hour-requests-left".into()),
            header_equals: Some("0".into()),
            outcome: StatusOutcome::QuotaExhausted,
        }];
        let mut h = HeaderMap::new();
        h.insert("x-24-hour-requests-left", "0".parse().unwrap());
        assert_eq!(
            classify(&rules, &StatusMap::new(), 429, &h, b""),
            StatusOutcome::QuotaExhausted
        );
        h.insert("x-24-hour-requests-left", "12".parse().unwrap());
        assert_eq!(
            classify(&rules, &StatusMap::new(), 429, &h, b""),
            StatusOutcome::RateLimited
        );
    }
}
