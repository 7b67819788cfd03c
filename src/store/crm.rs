//! The CRM's durable state beside the outbox: OAuth refresh tokens the token endpoint
//! rotated (`crate::crm::tokens`).

use super::dialect::written_once;
use super::{now_ms, StoreError};

written_once! {
    /// The newest refresh token for `connector` in the chain that started from the
    /// configured token with fingerprint `issued_from`.
    pub async fn rotated_refresh_token(
        &self,
        connector: &str,
        issued_from: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT refresh_token FROM oauth_refresh_tokens WHERE connector = $1 AND issued_from = $2",
        )
        .bind(connector)
        .bind(issued_from)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn keep_refresh_token(
        &self,
        connector: &str,
        issued_from: &str,
        refresh_token: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_refresh_tokens (connector, issued_from, refresh_token, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT(connector) DO UPDATE SET issued_from = excluded.issued_from, refresh_token = excluded.refresh_token, updated_at = excluded.updated_at",
        )
        .bind(connector)
        .bind(issued_from)
        .bind(refresh_token)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
