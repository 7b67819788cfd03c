//! Erasure (GDPR / CCPA): what the store holds about one person, and the suppression list
//! that keeps them out afterwards. Shared by both backends: the SQL is the same but for
//! placeholders.
//!
//! The list holds keyed digests: HMAC-SHA256 of the normalized email under a secret made at
//! the installation's first start and kept in the store (migration 0012), so the list alone
//! cannot be reversed with a dictionary of likely addresses. Digests written before that
//! migration are plain SHA-256 and cannot be inverted to be re-keyed: both forms are checked,
//! and an old one is replaced by its keyed form when the same address is erased again.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::StoreError;

/// Tables that hold rows for a lead, by `lead_id`; deleted before the lead itself.
pub const LEAD_TABLES: &[&str] = &[
    "decisions",
    "outcomes",
    "route_assignments",
    "route_touches",
    "route_events",
    "outbox",
    "overrides",
    "review_items",
    "person_events",
    "jobs",
];

/// The `installation_secrets` row that keys the suppression list.
pub const SUPPRESSION_SECRET: &str = "suppression_hmac";

/// Bytes of a new suppression secret: as long as SHA-256's block of output.
const SECRET_BYTES: usize = 32;

/// Rows removed by one erasure, per table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Erased {
    pub leads: u64,
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// The plain SHA-256 of the trimmed, lowercased address: how suppressions were written
/// before migration 0012, still checked for those rows.
pub fn legacy_email_key(email: &str) -> String {
    // The digest's own hex writer: the `hex` crate's encoder collects 64 `char`s one by one.
    format!(
        "{:x}",
        Sha256::digest(email.trim().to_lowercase().as_bytes())
    )
}

/// The two forms an address may be suppressed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// HMAC-SHA256 under the installation's secret (`suppressions_keyed`).
    pub keyed: String,
    /// Plain SHA-256 (`suppressions`, rows from before migration 0012).
    pub legacy: String,
}

/// The installation's suppression secret, loaded from the store.
#[derive(Clone)]
pub struct SuppressionKey(Vec<u8>);

impl std::fmt::Debug for SuppressionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuppressionKey(***)")
    }
}

impl SuppressionKey {
    /// A fresh secret from the operating system's random source, hex for the store.
    pub fn generate() -> Result<String, StoreError> {
        let mut bytes = [0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| {
            StoreError::Write(format!(
                "cannot make the suppression list's secret (the OS random source failed): {e}"
            ))
        })?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The secret as stored (hex).
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        let bad = || {
            StoreError::Corrupt(format!(
                "installation_secrets.{SUPPRESSION_SECRET} is not {SECRET_BYTES} bytes of hex"
            ))
        };
        if text.len() != SECRET_BYTES * 2 {
            return Err(bad());
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<u8>, _>>()
            .map(Self)
    }

    /// A key for another use (`purpose`), derived from this secret: HMAC-SHA256 of the
    /// purpose's name, so one stored secret serves several uses without one revealing another.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"derive:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Both digests of an address (trimmed and lowercased first).
    pub fn digests(&self, email: &str) -> Digests {
        let normalized = email.trim().to_lowercase();
        // Any key length is valid for HMAC: `new_from_slice` cannot fail here.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(normalized.as_bytes());
        Digests {
            keyed: format!("{:x}", mac.finalize().into_bytes()),
            legacy: legacy_email_key(&normalized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The legacy key is the SHA-256 of the trimmed, lowercased address in lowercase hex, as
    /// stored suppressions from earlier versions were written.
    #[test]
    fn a_legacy_email_key_is_the_hex_sha256_of_the_normalized_address() {
        let key = legacy_email_key("  Ada@Acme.IO ");
        assert_eq!(
            key,
            "2c35803c31b4bb23c4fdac9093daa484f28211d0b2a4d67355acadb4a4edbecc"
        );
    }

    /// RFC 4231 test case 2 ("Jefe"), so the keyed digest is the standard HMAC-SHA256.
    #[test]
    fn the_keyed_digest_is_hmac_sha256_under_the_installation_secret() {
        let key = SuppressionKey(b"Jefe".to_vec());
        let d = key.digests("what do ya want for nothing?");
        assert_eq!(
            d.keyed,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(d.keyed, d.legacy);
    }

    #[test]
    fn two_installations_digest_one_address_differently() {
        let a = SuppressionKey::from_hex(&SuppressionKey::generate().unwrap()).unwrap();
        let b = SuppressionKey::from_hex(&SuppressionKey::generate().unwrap()).unwrap();
        assert_ne!(
            a.digests("ada@acme.io").keyed,
            b.digests("ada@acme.io").keyed
        );
        assert_eq!(
            a.digests(" Ada@Acme.io").keyed,
            a.digests("ada@acme.io").keyed
        );
        assert!(SuppressionKey::from_hex("zz").is_err());
    }
}
