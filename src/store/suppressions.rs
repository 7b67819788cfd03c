//! The suppression list's reads and the installation's suppression secret, the same on both
//! backends. Erasure itself (`erase_person`) stays in each backend's `privacy.rs`: SQLite
//! also finds a pending lead through `identities` (migration 0010), PostgreSQL locks rows.

use super::dialect::written_once;
use super::privacy::{SuppressionKey, SUPPRESSION_SECRET};
use super::StoreError;

written_once! {
backend {
    /// The installation's suppression secret: read from the store, or made and stored by
    /// the first process to need it (an insert that does nothing if another won the race).
    pub(crate) async fn suppression_key(&self) -> Result<&SuppressionKey, StoreError> {
        self.suppression_key
            .get_or_try_init(|| async {
                sqlx::query(
                    "INSERT INTO installation_secrets (name, secret, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(SUPPRESSION_SECRET)
                .bind(SuppressionKey::generate()?)
                .bind(crate::store::now_ms())
                .execute(&self.pool)
                .await?;
                let secret: String =
                    sqlx::query_scalar("SELECT secret FROM installation_secrets WHERE name = $1")
                        .bind(SUPPRESSION_SECRET)
                        .fetch_one(&self.pool)
                        .await?;
                SuppressionKey::from_hex(&secret)
            })
            .await
    }
}

    /// Whether this address asked to be erased: its keyed digest, or its unkeyed one from
    /// before migration 0012.
    pub async fn is_suppressed(&self, email: &str) -> Result<bool, StoreError> {
        let digests = self.suppression_key().await?.digests(email);
        let found = sqlx::query(
            "SELECT 1 FROM suppressions_keyed WHERE email_hmac = $1
             UNION ALL SELECT 1 FROM suppressions WHERE email_sha256 = $2 LIMIT 1",
        )
        .bind(&digests.keyed)
        .bind(&digests.legacy)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Every suppression digest, keyed and legacy: each process's copy is loaded from these.
    pub async fn suppression_digests(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT email_hmac FROM suppressions_keyed UNION ALL SELECT email_sha256 FROM suppressions",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many erasures the store has recorded, by any process: another process's erasure
    /// shows as a move.
    pub async fn erasure_generation(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT generation FROM erasures WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}
