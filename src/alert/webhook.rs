//! The generic signed webhook: the alert as a JSON body, with `X-Leadgate-Timestamp` (unix
//! seconds) and `X-Leadgate-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`,
//! as Stripe and Slack sign theirs, so a receiver can check the sender and refuse replays
//! (an old timestamp). `docs/notes/alerts.md` shows the receiver's side.
//!
//! Must not: put the secret anywhere but the MAC key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::dispatcher::SendError;

pub const TIMESTAMP_HEADER: &str = "X-Leadgate-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Leadgate-Signature";
/// The scheme's version, so a later one can be added beside it.
const VERSION: &str = "v1";

/// `v1=<hex>` for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // Any key length is valid for HMAC, so this never fails.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Hex by hand, as elsewhere in leadgate: one line, no crate for it.
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{VERSION}={hex}")
}

/// Whether `header` signs `body` at `timestamp` with `secret`: the receiver's check, in
/// constant time (`Mac::verify_slice`). Also used by leadgate's own tests.
pub fn verify(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("v1=") else {
        return false;
    };
    let Some(bytes) = decode_hex(hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the receiver's answer means: any 2xx is delivered; 408, 429 and 5xx are worth
/// another try (after `Retry-After` when sent); any other 4xx will fail again.
pub fn outcome(status: u16, retry_after: Option<std::time::Duration>) -> Result<(), SendError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 | 500..=599 => Err(SendError::retry(status, retry_after, "")),
        _ => Err(SendError::permanent(status, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_time_does_not() {
        let secret = "0123456789abcdef-secret";
        let sig = signature(secret, 1_700_000_000, br#"{"a":1}"#);
        assert!(sig.starts_with("v1=") && sig.len() == 3 + 64, "{sig}");
        assert!(verify(secret, 1_700_000_000, br#"{"a":1}"#, &sig));
        assert!(!verify(secret, 1_700_000_000, br#"{"a":2}"#, &sig));
        assert!(!verify(secret, 1_700_000_001, br#"{"a":1}"#, &sig));
        assert!(!verify(
            "another-secret-000000",
            1_700_000_000,
            br#"{"a":1}"#,
            &sig
        ));
        assert!(!verify(secret, 1_700_000_000, br#"{"a":1}"#, "v1=zz"));
    }

    #[test]
    fn the_signature_is_the_one_the_documented_python_recipe_computes() {
        // Computed with the receiver's recipe in docs/notes/alerts.md (Python's hmac).
        let body = br#"{"alert":"hot-leads","on":"lead_hot"}"#;
        assert_eq!(
            signature("whsec-0123456789abcdef", 1_765_112_400, body),
            "v1=e200bf70cc966803e7c510d6b37b40eee625177877e764cc4ec65da9a684d31e"
        );
    }
}
