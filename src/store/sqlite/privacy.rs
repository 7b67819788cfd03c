//! Erasure and suppression on SQLite.

use sqlx::Row;

use super::{has_email, now_ms, Store};
use crate::store::privacy::{Erased, LEAD_TABLES};
use crate::store::StoreError;

impl Store {
    /// Deletes every row about `email` — leads, arrivals with their payloads, decisions,
    /// outcomes, routing audit, outbox — in one transaction, and suppresses the address.
    pub async fn erase_person(&self, email: &str) -> Result<Erased, StoreError> {
        let email = email.trim().to_lowercase();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // A pending lead (no arrival decided yet, migration 0010) has no row in `leads`: its
        // identity names it.
        let ids: Vec<String> = sqlx::query(concat!(
            "SELECT l.id FROM leads l WHERE ",
            has_email!(),
            " UNION SELECT lead_id AS id FROM identities WHERE identity_key = 'email:' || ?1"
        ))
        .bind(&email)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get("id"))
        .collect();
        let mut erased = Erased::default();
        for id in &ids {
            // Every identity of the person, before the rows that name them go.
            sqlx::query(
                "DELETE FROM identities WHERE identity_key IN (
                   SELECT identity_key FROM leads WHERE id = ?1
                   UNION SELECT identity_key FROM jobs WHERE lead_id = ?1 AND identity_key IS NOT NULL)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            for table in LEAD_TABLES {
                // Table names come from the constant list above, never from input.
                let done = sqlx::query(&format!("DELETE FROM {table} WHERE lead_id = ?"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                *erased.rows.entry((*table).to_string()).or_default() += done.rows_affected();
            }
            erased.leads += sqlx::query("DELETE FROM leads WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let digests = self.suppression_key().await?.digests(&email);
        sqlx::query("INSERT INTO suppressions_keyed (email_hmac, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(&digests.keyed)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        // An unkeyed digest of the same address (before migration 0012) is re-keyed: the
        // keyed row above replaces it.
        sqlx::query("DELETE FROM suppressions WHERE email_sha256 = ?")
            .bind(&digests.legacy)
            .execute(&mut *tx)
            .await?;
        // Other processes drop their cached answers when they see this move.
        sqlx::query("UPDATE erasures SET generation = generation + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        // Running account totals counted the erased decisions: rebuilt on the next read.
        sqlx::query("DELETE FROM account_rollups")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(erased)
    }

    /// Rows that still mention `email` anywhere a lead's data is kept (tests, audits).
    pub async fn rows_mentioning(&self, email: &str) -> Result<u64, StoreError> {
        let pattern = format!("%{}%", email.trim().to_lowercase());
        let mut n = 0u64;
        for (table, column) in [
            ("leads", "data"),
            ("identities", "identity_key"),
            ("jobs", "payload"),
            ("decisions", "record"),
        ] {
            let c: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE lower({column}) LIKE ?"
            ))
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
            n += c as u64;
        }
        Ok(n)
    }
}
