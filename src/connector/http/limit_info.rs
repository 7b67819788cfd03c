//! Usage headers written as `NAME=USED/LIMIT` pairs rather than a plain count, as Salesforce
//! sends its daily API allocation on every REST response:
//! `Sforce-Limit-Info: api-usage=10018/100000, api-bursts=1/750`. A remaining-quota header
//! with `key = "api-usage"` reads `LIMIT - USED` from it.
//!
//! Hand-written: a dozen lines of splitting, no crate parses this vendor format.

/// `LIMIT - USED` for the pair named `key` (case-insensitive); `None` when it is absent or
/// not two numbers.
pub fn remaining(raw: &str, key: &str) -> Option<f64> {
    raw.split([',', ';']).find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let (used, limit) = value.trim().split_once('/')?;
        // `per-app-api-usage=17/250(appName=...)`: the limit stops at the first non-digit.
        let limit: String = limit.chars().take_while(char::is_ascii_digit).collect();
        let used: f64 = used.trim().parse().ok()?;
        let limit: f64 = limit.parse().ok()?;
        Some((limit - used).max(0.0))
    })
}

#[cfg(test)]
mod tests {
    use super::remaining;

    #[test]
    fn reads_the_salesforce_daily_allocation() {
        assert_eq!(
            remaining("api-usage=10018/100000", "api-usage"),
            Some(89_982.0)
        );
        assert_eq!(
            remaining("api-usage=25/15000, api-bursts=1/750", "api-bursts"),
            Some(749.0)
        );
        assert_eq!(
            remaining(
                "per-app-api-usage=17/250(appName=leadgate)",
                "per-app-api-usage"
            ),
            Some(233.0)
        );
        assert_eq!(remaining("api-usage=oops", "api-usage"), None);
        assert_eq!(remaining("api-usage=10/20", "other"), None);
    }
}
