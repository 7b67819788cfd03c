//! Paid providers' daily credits, kept in the store: each process hands its charges over
//! (`provider_usage`, added up per provider and UTC day) and raises its own count to the
//! store's total, so a restart does not begin the day's budget again and replicas see each
//! other's spending within one sync. The daemon syncs every few seconds and when it stops;
//! `leadgate run` and `leadgate connectors` sync at their start and end.
//!
//! Must not: decide what a call costs or whether it is billed (the budget and the manifest
//! do).

use std::time::Duration;

use tokio::sync::watch;

use crate::enrich::Waterfall;
use crate::resilience::budget::Budget;
use crate::store::{Store, StoreError};

/// How often the daemon syncs: the most two replicas can overspend a budget by is what they
/// charge in this long.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// Hands this process's new charges to the store and reads back each provider's total for
/// today. Charges the store refused are kept for the next sync.
pub async fn sync(waterfall: &Waterfall, store: &Store) -> Result<(), StoreError> {
    sync_budgets(&waterfall.budgets(), store).await
}

/// [`sync`] for any set of (connector id, budget): the daemon adds its CRM connectors'.
pub async fn sync_budgets(budgets: &[(&str, &Budget)], store: &Store) -> Result<(), StoreError> {
    if budgets.is_empty() {
        return Ok(());
    }
    let taken: Vec<_> = budgets.iter().map(|(_, b)| b.take_unsaved()).collect();
    let charges: Vec<(String, String, f64)> = budgets
        .iter()
        .zip(&taken)
        .flat_map(|((id, _), days)| {
            days.iter()
                .map(|(day, credits)| (id.to_string(), day.to_string(), *credits))
        })
        .collect();
    if let Err(e) = store.add_provider_credits(&charges).await {
        for ((_, budget), days) in budgets.iter().zip(taken) {
            budget.keep_unsaved(days);
        }
        return Err(e);
    }
    let mut totals = std::collections::HashMap::new();
    for (id, budget) in budgets {
        let today = budget.today();
        if let std::collections::hash_map::Entry::Vacant(day) = totals.entry(today) {
            day.insert(store.provider_credits_on(&today.to_string()).await?);
        }
        if let Some(total) = totals[&today].get(*id) {
            budget.saw_total(today, *total);
        }
    }
    Ok(())
}

/// [`sync`], logging (not failing) when the store cannot be reached: the charges stay in
/// memory for the next one.
pub async fn sync_or_warn(waterfall: &Waterfall, store: &Store) {
    warn_on(sync(waterfall, store).await);
}

/// The daemon's sync: the enrichment providers' budgets and its CRM connectors'.
pub async fn sync_daemon(state: &crate::services::Services) {
    let mut budgets = state.pipeline.waterfall.budgets();
    if let Some(crm) = &state.delivery {
        budgets.extend(crm.budgets());
    }
    warn_on(sync_budgets(&budgets, &state.store).await);
}

fn warn_on(result: Result<(), StoreError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot save providers' credits yet; will retry");
    }
}

/// The daemon's loop: a sync every [`SYNC_EVERY`] until `stop` turns true (the daemon syncs
/// once more after its workers have drained).
pub async fn run(
    state: std::sync::Arc<crate::services::Services>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SYNC_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        sync_daemon(&state).await;
    }
}
