//! Rotated OAuth refresh tokens, kept: a token endpoint that answers with a new
//! `refresh_token` (HubSpot public apps, Outreach) may revoke the old one, so the new one is
//! written to the store (migration 0018) before it is relied on, and a restarted process
//! starts from the newest one of the chain its configured token began.
//!
//! Must not: log a token, or let a store failure stop delivery (the in-memory token still
//! works until the process ends; the failure is logged).

use std::sync::Arc;

use super::Crm;
use crate::store::{Store, StoreError};

/// For each OAuth connector with a refresh token: use the newest kept token, and keep the
/// next rotations in `store`.
pub async fn keep_rotated_tokens(crm: &Crm, store: &Store) -> Result<(), StoreError> {
    for (id, connector) in &crm.connectors {
        let Some(source) = connector.oauth() else {
            continue;
        };
        let Some(chain) = source.configured_fingerprint() else {
            continue;
        };
        if let Some(newest) = store.rotated_refresh_token(id, &chain).await? {
            source.use_refresh_token(newest);
        }
        let store = store.clone();
        let id = id.clone();
        source.keep_rotations_with(Arc::new(move |token: String| {
            let (store, id, chain) = (store.clone(), id.clone(), chain.clone());
            Box::pin(async move {
                if let Err(e) = store.keep_refresh_token(&id, &chain, &token).await {
                    tracing::error!(connector = %id, error = %e, "cannot keep the rotated OAuth refresh token in the store; it is used until this process stops");
                }
            })
        }));
    }
    Ok(())
}

/// Why `leadgate crm connect` did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connector `{0}` is not configured: set [providers.{0}] api_key (client id), api_secret (client secret) and token_url")]
    NotConfigured(String),
    #[error("connector `{0}` has no OAuth token_url: set [providers.{0}] token_url (HubSpot: https://api.hubapi.com/oauth/v1/token)")]
    NoOAuth(String),
    #[error("{0}")]
    Refused(#[from] crate::connector::ConnectorError),
    #[error("cannot keep the refresh token: {0}")]
    Store(#[from] StoreError),
}

/// `leadgate crm connect ID --code CODE --redirect-uri URI`: trades a public app's
/// authorization code for a refresh token and keeps it in the store, where `serve` finds it.
pub async fn connect(
    crm: &Crm,
    store: &Store,
    id: &str,
    code: &str,
    redirect_uri: &str,
) -> Result<(), ConnectError> {
    let connector = crm
        .connector(id)
        .ok_or_else(|| ConnectError::NotConfigured(id.to_string()))?;
    let source = connector
        .oauth()
        .ok_or_else(|| ConnectError::NoOAuth(id.to_string()))?;
    let refresh = source.exchange_code(code, redirect_uri).await?;
    let chain = source.configured_fingerprint().unwrap_or_default();
    store.keep_refresh_token(id, &chain, &refresh).await?;
    Ok(())
}
