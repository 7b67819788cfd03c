//! `leadgate serve`: open the store, build the pipeline, start workers and the HTTP
//! server, and drain on SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::pipeline::Pipeline;
use crate::server::threads::HttpThreads;
use crate::server::{app, AppState};
use crate::settings::{ConfigErrors, Settings};
use crate::store::{Store, StoreError};

/// How long a drain waits for jobs in hand before exiting anyway (they stay queued).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: String, reason: String },
    #[error("refusing to listen on {0} without [server] api_tokens: set tokens, or listen on a loopback address")]
    Exposed(String),
}

pub async fn serve(settings: Settings, listen: Option<String>) -> Result<(), ServeError> {
    let addr_text = listen.unwrap_or_else(|| settings.config.server.listen.clone());
    let addr: SocketAddr = addr_text.parse().map_err(|e| ServeError::Listen {
        addr: addr_text.clone(),
        reason: format!("not an address: {e}"),
    })?;
    if settings.config.server.api_tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ServeError::Exposed(addr_text));
    }
    let pipeline = Pipeline::build(&settings)?;
    // CRM connectors with credentials: delivery, record fetches for webhooks, polling.
    let crm = crate::crm::Crm::build(&settings)?;
    let store = Store::open(&settings.storage_url()).await?;
    let orphans = store.requeue_orphans().await?;
    if orphans > 0 {
        tracing::info!(jobs = orphans, "requeued jobs interrupted by the last stop");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Listen {
            addr: addr_text.clone(),
            reason: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: addr_text.clone(),
        reason: e.to_string(),
    })?;

    let state = Arc::new(AppState {
        dry_run_state: Default::default(),
        pipeline,
        store,
        queued: Notify::new(),
        ready: AtomicBool::new(false),
        api_tokens: settings.config.server.api_tokens.clone(),
        pii_tokens: settings.config.server.pii_tokens.clone(),
        body_limit: settings.config.server.body_limit,
        webhooks: settings.config.webhooks.clone(),
        records: crm
            .clone()
            .map(|c| c as Arc<dyn crate::webhook::RecordSource>),
        delivery: crm.clone(),
    });
    crate::server::prometheus();
    // Today's credits so far (an earlier run of this daemon, other replicas): budgets go on
    // from there, not from zero.
    crate::enrich::usage::sync_daemon(&state).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(crate::enrich::usage::run(state.clone(), stop_rx.clone()));
    // Zero workers is an intake-only replica: it accepts and queues, others process.
    for _ in 0..settings.config.server.workers {
        workers.spawn(crate::worker::run(
            state.clone(),
            settings.lease,
            stop_rx.clone(),
        ));
    }
    // Reassigns or escalates leads whose owner let the SLA pass (route::sla); a processing
    // replica's job, not an intake-only one's.
    if settings.config.server.workers > 0 {
        workers.spawn(crate::route::sla::run(state.clone(), stop_rx.clone()));
    }
    // Polling intake (`[intake.poll.ID]`): a processing replica's job, like the SLA sweep.
    if let (Some(crm), true) = (&crm, settings.config.server.workers > 0) {
        for spec in crm.polls.clone() {
            workers.spawn(crate::crm::poll::run(
                state.clone(),
                crm.clone(),
                spec,
                stop_rx.clone(),
            ));
        }
    }
    let listen_err = |e: std::io::Error| ServeError::Listen {
        addr: addr_text.clone(),
        reason: e.to_string(),
    };
    let http_threads = crate::server::threads::count(settings.config.server.http_threads);
    let mut http =
        HttpThreads::start(listener, http_threads, app(state.clone())).map_err(listen_err)?;
    state.ready.store(true, Ordering::SeqCst);
    // Printed (not only logged) so scripts and tests can find an ephemeral port.
    println!("leadgate listening on http://{local}");
    tracing::info!(%local, workers = settings.config.server.workers, http_threads, "serving");

    crate::shutdown::signal().await;
    state.ready.store(false, Ordering::SeqCst);
    let served = http.finish().await;

    let _ = stop_tx.send(true);
    state.queued.notify_waiters();
    if tokio::time::timeout(DRAIN_TIMEOUT, async {
        while workers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("drain timed out; unfinished jobs stay queued for the next start");
    }
    crate::enrich::usage::sync_daemon(&state).await;
    http.release().await;
    served.map_err(listen_err)?;
    tracing::info!("stopped");
    Ok(())
}
