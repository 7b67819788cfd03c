//! Erasure (GDPR / CCPA): what the store holds about one person, and the suppression list
//! that keeps them out afterwards. Shared by both backends: the SQL is the same but for
//! placeholders.

use serde::Serialize;
use sha2::{Digest, Sha256};

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
    "jobs",
];

/// Rows removed by one erasure, per table.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Erased {
    pub leads: u64,
    pub rows: std::collections::BTreeMap<String, u64>,
}

/// The suppression list's key for an email: SHA-256 of the trimmed, lowercased address.
pub fn email_key(email: &str) -> String {
    // The digest's own hex writer: the `hex` crate's encoder collects 64 `char`s one by one, about 2k
    // instructions an accepted lead.
    format!(
        "{:x}",
        Sha256::digest(email.trim().to_lowercase().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    /// The key is the SHA-256 of the trimmed, lowercased address in lowercase hex, as stored
    /// suppressions from earlier versions were written.
    #[test]
    fn an_email_key_is_the_hex_sha256_of_the_normalized_address() {
        let key = super::email_key("  Ada@Acme.IO ");
        assert_eq!(
            key,
            "2c35803c31b4bb23c4fdac9093daa484f28211d0b2a4d67355acadb4a4edbecc"
        );
    }
}
