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
use crate::services::Services;
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

/// How often the per-address webhook limit forgets addresses whose allowance is full again.
const FORGET_QUIET_CLIENTS: Duration = Duration::from_secs(60);

/// File descriptors kept back from connections: the SQLite file and its WAL, upstream and
/// database pools, the log, the listening socket.
const FD_RESERVE: u64 = 1024;

/// Raises the soft open-files limit to the hard one and keeps `configured` connections under
/// it: past the limit, `accept` fails with "Too many open files" and every new client (the
/// health check too) waits, while a refused one is told why (server::threads).
fn connection_cap(configured: usize) -> usize {
    let limit = raise_fd_limit();
    let fit = limit.saturating_sub(FD_RESERVE).max(1);
    if (configured as u64) > fit {
        tracing::warn!(
            configured,
            open_files_limit = limit,
            cap = fit,
            "[server] max_connections is above what the open-files limit allows; capped"
        );
        fit as usize
    } else {
        configured
    }
}

/// The soft RLIMIT_NOFILE after raising it to the hard limit.
fn raise_fd_limit() -> u64 {
    // std has no getrlimit/setrlimit; these two calls are all of it.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill or read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

pub async fn serve(settings: Settings, listen: Option<String>) -> Result<(), ServeError> {
    let addr_text = listen.unwrap_or_else(|| settings.config.server.listen.clone());
    let addr: SocketAddr = addr_text.parse().map_err(|e| ServeError::Listen {
        addr: addr_text.clone(),
        reason: format!("not an address: {e}"),
    })?;
    // Settings refuse empty and short tokens; counting only usable ones keeps the guard whole.
    let has_token = settings
        .config
        .server
        .api_tokens
        .iter()
        .any(|t| t.len() >= crate::webhook::MIN_SECRET_LEN);
    if !has_token && !addr.ip().is_loopback() {
        return Err(ServeError::Exposed(addr_text));
    }
    let mut pipeline = Pipeline::build(&settings)?;
    // CRM connectors with credentials: delivery, record fetches for webhooks, polling.
    let crm = crate::crm::Crm::build(&settings)?;
    // `[account_match] source = "crm"`: routing searches the CRM's own accounts.
    crate::crm::account_match::attach(&mut pipeline.router, crm.as_deref()).map_err(|e| {
        ConfigErrors(vec![crate::settings::ConfigIssue {
            file: settings.file_name(),
            line: None,
            key: "account_match".into(),
            reason: e.to_string(),
        }])
    })?;
    // `[[alert]]` (issue 25): checked before the store opens, like the rest of the config.
    let (alerts, alert_queue) = crate::alert::Alerts::new(
        crate::alert::AlertSet::from_settings(&settings)?,
        crate::alert::DEFAULT_CHANNEL_CAPACITY,
    );
    let store = Store::open(&settings.storage_url()).await?;
    // Rotated OAuth refresh tokens: start from the newest kept one, keep the next.
    if let Some(crm) = &crm {
        crate::crm::tokens::keep_rotated_tokens(crm, &store).await?;
    }
    // On SQLite one process owns the workers of a file; another serves intake only and
    // never requeues the owner's jobs in progress (issue #28).
    let configured_workers = settings.config.server.workers;
    let owned = if configured_workers > 0 {
        match store.own_workers()? {
            Ok(lock) => Some(lock),
            Err(held) => {
                tracing::warn!(
                    lock_file = %held.lock_file.display(),
                    owner_pid = held.pid,
                    "another leadgate process owns the workers of this SQLite store: this one serves intake only (no workers, no requeue); stop the other to process here, or use PostgreSQL for several processing replicas"
                );
                None
            }
        }
    } else {
        None
    };
    let workers_n = if owned.is_some() {
        configured_workers
    } else {
        0
    };
    if owned.is_some() {
        let orphans = store.requeue_orphans().await?;
        if orphans > 0 {
            tracing::info!(jobs = orphans, "requeued jobs interrupted by the last stop");
        }
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

    // `[rescore]` (issue 25): checked before anything starts, like the rest of the config.
    let rescore = crate::rescore::RescorePolicy::from_settings(&settings, &pipeline.scorer)
        .map_err(|e| ConfigErrors::one(settings.file_name(), "rescore", e.to_string()))?;
    let services = Arc::new(Services {
        pipeline,
        store,
        queued: Notify::new(),
        ready: AtomicBool::new(false),
        records: crm
            .clone()
            .map(|c| c as Arc<dyn crate::webhook::RecordSource>),
        delivery: crm.clone(),
        alerts,
    });
    // Console sessions are signed under a key every replica of this store derives alike.
    let session_key = services
        .store
        .derived_key(crate::console::session::KEY_PURPOSE)
        .await?;
    let state = Arc::new(AppState {
        services: services.clone(),
        dry_run_state: Default::default(),
        api_tokens: settings.config.server.api_tokens.clone(),
        pii_tokens: settings.config.server.pii_tokens.clone(),
        body_limit: settings.config.server.body_limit,
        webhooks: settings.config.webhooks.clone(),
        edge: crate::server::Edge {
            body_read_timeout: settings.body_read_timeout,
            session_key: Some(session_key),
            ..crate::server::Edge::new(
                Some(local.port()),
                settings.config.server.webhook_rate_per_second,
                settings.config.server.webhook_burst,
            )
        },
    });
    crate::server::prometheus();
    // Today's credits so far (an earlier run of this daemon, other replicas): budgets go on
    // from there, not from zero.
    crate::enrich::usage::sync_daemon(&services).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    workers.spawn(crate::enrich::usage::run(services.clone(), stop_rx.clone()));
    // Another process's erasure drops this one's cached answers.
    if let Some(cache) = state.pipeline.cache.clone() {
        workers.spawn(crate::enrich::erasures::watch(
            cache,
            state.store.clone(),
            stop_rx.clone(),
        ));
    }
    // Alerts go out from a background task: a slow receiver never holds a lead up. Every
    // replica runs one; the store's claims send each alert once.
    if !alert_queue.set.is_empty() {
        workers.spawn(crate::alert::dispatcher::run(
            services.store.clone(),
            services.provider_reports(),
            alert_queue,
            stop_rx.clone(),
        ));
    }
    // Zero workers is an intake-only replica: it accepts and queues, others process.
    for _ in 0..workers_n {
        workers.spawn(crate::worker::run(
            services.clone(),
            settings.lease,
            stop_rx.clone(),
        ));
    }
    // Reassigns or escalates leads whose owner let the SLA pass (route::sla); a processing
    // replica's job, not an intake-only one's.
    if workers_n > 0 {
        workers.spawn(crate::route::sla::run(services.clone(), stop_rx.clone()));
    }
    // Re-scoring at rest (src/rescore): a processing replica's job, like the SLA sweep;
    // replicas on one PostgreSQL store share it through claims.
    if workers_n > 0 && rescore.enabled {
        workers.spawn(crate::rescore::run(
            services.clone(),
            rescore,
            stop_rx.clone(),
        ));
    }
    // Polling intake (`[intake.poll.ID]`): a processing replica's job, like the SLA sweep.
    if let (Some(crm), true) = (&crm, workers_n > 0) {
        for spec in crm.polls.clone() {
            workers.spawn(crate::crm::poll::run(
                services.clone(),
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
    let limits = crate::server::threads::EdgeLimits {
        header_read_timeout: settings.header_read_timeout,
        max_connections: connection_cap(settings.config.server.max_connections),
        max_connections_per_client: settings.config.server.max_connections_per_client,
    };
    let mut http = HttpThreads::start_with(listener, http_threads, app(state.clone()), limits)
        .map_err(listen_err)?;
    // The webhook limit's table forgets addresses that went quiet.
    {
        let state = state.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(FORGET_QUIET_CLIENTS);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = every.tick() => state.edge.forget_quiet_clients(),
                }
            }
        });
    }
    state.ready.store(true, Ordering::SeqCst);
    // Printed (not only logged) so scripts and tests can find an ephemeral port.
    println!("leadgate listening on http://{local}");
    tracing::info!(%local, workers = workers_n, http_threads, "serving");

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
    crate::enrich::usage::sync_daemon(&services).await;
    http.release().await;
    // The workers are done: another process may own them from here.
    drop(owned);
    served.map_err(listen_err)?;
    tracing::info!("stopped");
    Ok(())
}
