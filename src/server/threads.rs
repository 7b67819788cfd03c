//! The HTTP edge on one single-threaded runtime per core (`[server] http_threads`).
//!
//! One acceptor hands each new connection to the HTTP threads in turn, and the connection
//! then lives on its thread: a request is read, decided and answered without crossing to
//! another thread. On the work-stealing runtime the two workers kept passing requests and
//! wake-ups between them, and on a 2-core VM every such hand-off costs more than the work it
//! moves: alternated in the same minutes, evaluate did 36,000–37,000 requests/s here against
//! 30,700–33,200 (34 against 36 µs of CPU a request), and intake 29,000–32,500 leads/s against
//! 27,500–31,400 (docs/performance.md, twelfth round). The queue workers, the SLA sweep and
//! polling stay on the main runtime.
//!
//! Hand-written rather than `SO_REUSEPORT` sockets, one per thread: with those a second
//! daemon started on the same port would silently share its traffic instead of failing with
//! "address in use", and the kernel's hash can give one thread most of a client's connections.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// New connections waiting for their thread; the acceptor waits (and the kernel's backlog
/// holds the rest) when a thread is this far behind.
const HANDOFF_QUEUE: usize = 128;

/// The running HTTP threads. Stop them in two steps: [`HttpThreads::finish`] stops accepting
/// and waits for every request in flight to be answered; [`HttpThreads::release`], once the
/// queue workers have drained, lets each thread drop its runtime. Until then the runtimes keep
/// serving what was started on them and still serves the main runtime: a pooled upstream or
/// database connection opened by a request lives on the thread that opened it, and a draining
/// worker may be using it.
pub struct HttpThreads {
    stop: watch::Sender<bool>,
    finished: Vec<oneshot::Receiver<std::io::Result<()>>>,
    release: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// How many HTTP threads `configured` means: 0 is one per CPU core.
pub fn count(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    }
}

impl HttpThreads {
    /// Starts `threads` HTTP threads serving `app`, and the acceptor on the calling runtime.
    pub fn start(listener: TcpListener, threads: usize, app: Router) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (release, released) = watch::channel(false);
        let mut handoffs = Vec::with_capacity(threads);
        let mut finished = Vec::with_capacity(threads);
        let mut joins = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (to_thread, incoming) = mpsc::channel(HANDOFF_QUEUE);
            handoffs.push(to_thread);
            let (done, done_rx) = oneshot::channel();
            finished.push(done_rx);
            let (app, mut stopped, mut released) = (app.clone(), stopped.clone(), released.clone());
            let listener = Handoff { incoming, local };
            joins.push(
                std::thread::Builder::new()
                    .name(format!("leadgate-http-{i}"))
                    .spawn(move || {
                        runtime.block_on(async move {
                            let served = axum::serve(listener, app)
                                .with_graceful_shutdown(async move {
                                    let _ = stopped.wait_for(|s| *s).await;
                                })
                                .await;
                            let _ = done.send(served);
                            let _ = released.wait_for(|r| *r).await;
                        });
                    })?,
            );
        }
        tokio::spawn(accept(listener, handoffs, stop.subscribe()));
        Ok(Self {
            stop,
            finished,
            release,
            threads: joins,
        })
    }

    /// Stops accepting, and returns once every HTTP thread has answered what it had in
    /// flight and closed its connections.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let mut outcome = Ok(());
        for done in self.finished.drain(..) {
            // A thread that is gone (it could only panic) has nothing left to answer.
            if let Ok(Err(e)) = done.await {
                outcome = Err(e);
            }
        }
        outcome
    }

    /// Lets the threads drop their runtimes, and waits for them to end.
    pub async fn release(self) {
        let _ = self.release.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Accepts connections and hands them to the HTTP threads in turn, until told to stop.
async fn accept(
    listener: TcpListener,
    handoffs: Vec<mpsc::Sender<(std::net::TcpStream, SocketAddr)>>,
    mut stop: watch::Receiver<bool>,
) {
    for next in (0..handoffs.len()).cycle() {
        let accepted = tokio::select! {
            // Stopping wins over a connection that arrived at the same moment.
            biased;
            _ = stop.wait_for(|s| *s) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                wait_after_accept_error(e).await;
                continue;
            }
        };
        // Out of this runtime's reactor, to be registered with the thread's own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        if handoffs[next].send((stream, peer)).await.is_err() {
            // That thread is gone (only a panic ends one early): its share is refused
            // rather than the whole daemon stopping.
            tracing::error!(
                thread = next,
                "an HTTP thread is gone; its connection is closed"
            );
        }
    }
}

/// As axum's own listener does: a connection that failed while being accepted is skipped;
/// anything else (out of file descriptors) is logged and accepting pauses a second.
async fn wait_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One HTTP thread's listener: the connections the acceptor handed to it.
struct Handoff {
    incoming: mpsc::Receiver<(std::net::TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Handoff {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.incoming.recv().await {
                Some((stream, peer)) => match TcpStream::from_std(stream) {
                    Ok(stream) => return (stream, peer),
                    Err(e) => {
                        tracing::warn!(error = %e, "a handed-off connection could not be registered")
                    }
                },
                // The acceptor stopped: graceful shutdown is under way and stops asking.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// Each request answers the name of the thread that served it.
    fn app() -> Router {
        Router::new().route(
            "/",
            get(|| async { std::thread::current().name().unwrap_or("?").to_string() }),
        )
    }

    #[tokio::test]
    async fn connections_are_dealt_to_the_threads_in_turn_and_stay_there() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let mut http = HttpThreads::start(listener, 2, app()).unwrap();
        let mut served = Vec::new();
        for _ in 0..4 {
            // One client, one connection each, used twice: both answers from one thread.
            let client = reqwest::Client::new();
            let first = client.get(&url).send().await.unwrap().text().await.unwrap();
            let again = client.get(&url).send().await.unwrap().text().await.unwrap();
            assert_eq!(first, again);
            served.push(first);
        }
        assert_eq!(
            served,
            [
                "leadgate-http-0",
                "leadgate-http-1",
                "leadgate-http-0",
                "leadgate-http-1"
            ]
        );
        http.finish().await.unwrap();
        // Stopped: the port no longer answers.
        assert!(reqwest::get(&url).await.is_err());
        http.release().await;
    }

    #[test]
    fn zero_means_one_thread_per_core() {
        assert!(count(0) >= 1);
        assert_eq!(count(3), 3);
    }
}
