//! Erasure and suppression on SQLite.

use sqlx::Row;

use super::{has_email, now_ms, Store};
use crate::store::privacy::{email_key, Erased, LEAD_TABLES};
use crate::store::StoreError;

impl Store {
    /// Deletes every row about `email` — leads, arrivals with their payloads, decisions,
    /// outcomes, routing audit, outbox — in one transaction, and suppresses the address.
    pub async fn erase_person(&self, email: &str) -> Result<Erased, StoreError> {
        let email = email.trim().to_lowercase();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let ids: Vec<String> =
            sqlx::query(concat!("SELECT l.id FROM leads l WHERE ", has_email!()))
                .bind(&email)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.get("id"))
                .collect();
        let mut erased = Erased::default();
        for id in &ids {
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
        sqlx::query("INSERT INTO suppressions (email_sha256, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(email_key(&email))
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(erased)
    }

    /// Whether this address asked to be erased.
    pub async fn is_suppressed(&self, email: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM suppressions WHERE email_sha256 = ?")
                .bind(email_key(email))
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Rows that still mention `email` anywhere a lead's data is kept (tests, audits).
    pub async fn rows_mentioning(&self, email: &str) -> Result<u64, StoreError> {
        let pattern = format!("%{}%", email.trim().to_lowercase());
        let mut n = 0u64;
        for (table, column) in [
            ("leads", "data"),
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
