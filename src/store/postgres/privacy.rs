//! Erasure and suppression on PostgreSQL.

use sqlx::Row;

use super::{now_ms, PgStore as Store};
use crate::store::privacy::{Erased, LEAD_TABLES};
use crate::store::StoreError;

impl Store {
    /// Deletes every row about `email` in one transaction and suppresses the address.
    pub async fn erase_person(&self, email: &str) -> Result<Erased, StoreError> {
        let email = email.trim().to_lowercase();
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query("SELECT id FROM leads WHERE email = $1 FOR UPDATE")
            .bind(&email)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.get("id"))
            .collect();
        let mut erased = Erased::default();
        for id in &ids {
            for table in LEAD_TABLES {
                // Table names come from the constant list, never from input.
                let done = sqlx::query(&format!("DELETE FROM {table} WHERE lead_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                *erased.rows.entry((*table).to_string()).or_default() += done.rows_affected();
            }
            erased.leads += sqlx::query("DELETE FROM leads WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        let digests = self.suppression_key().await?.digests(&email);
        sqlx::query("INSERT INTO suppressions_keyed (email_hmac, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&digests.keyed)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        // An unkeyed digest of the same address (before migration 0012) is re-keyed.
        sqlx::query("DELETE FROM suppressions WHERE email_sha256 = $1")
            .bind(&digests.legacy)
            .execute(&mut *tx)
            .await?;
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

    pub async fn rows_mentioning(&self, email: &str) -> Result<u64, StoreError> {
        let pattern = format!("%{}%", email.trim().to_lowercase());
        let mut n = 0u64;
        for (table, column) in [
            ("leads", "data"),
            ("jobs", "payload"),
            ("decisions", "record"),
        ] {
            let c: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE lower({column}::text) LIKE $1"
            ))
            .bind(&pattern)
            .fetch_one(&self.pool)
            .await?;
            n += c as u64;
        }
        Ok(n)
    }
}
