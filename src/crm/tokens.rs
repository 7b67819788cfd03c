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
