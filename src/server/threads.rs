//! The HTTP edge on one single-threaded runtime per core (`[server] http_threads`).
//!
//! One acceptor hands each new connection to the HTTP threads in turn, and the connection
//! then lives on its thread: a request is read, decided and answered without crossing to
//! another thread. On the work-stealing runtime the two workers kept passing requests and
//! wake-ups between them, and on a 2-core VM every such hand-off costs more than the work it
//! moves (measured alternately in the same minutes: docs/performance.md, twelfth round: "a runtime per
//! core"). The queue workers, the SLA sweep and polling stay on the main runtime.
//!
//! Hand-written rather than `SO_REUSEPORT` sockets, one per thread: with those a second
//! daemon started on the same port would silently share its traffic instead of failing with
//! "address in use", and the kernel's hash can give one thread most of a client's connections.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::admission::{Admission, Admitted};

/// New connections waiting for their thread; the acceptor waits (and the kernel's backlog
/// holds the rest) when a thread is this far behind.
const HANDOFF_QUEUE: usize = 128;

/// What a hostile or broken client may hold of the edge (`[server]` settings).
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    /// From when a connection is ready for a request until its whole head has arrived: a
    /// half-sent request and an idle keep-alive connection are both closed after this.
    pub header_read_timeout: Duration,
    /// Open connections in all; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections from one peer address; 0 is no per-address cap.
    pub max_connections_per_client: usize,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: crate::settings::DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: crate::settings::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: crate::settings::DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// The answer to a connection over a cap, written whole before closing: the client learns
/// why instead of seeing a reset, and no request of it is read.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 103\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server holds as many connections as it allows\"}}";

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

/// One accepted connection on its way to a thread, holding its place under the caps.
type Handed = (std::net::TcpStream, SocketAddr, Admitted);

impl HttpThreads {
    /// Starts `threads` HTTP threads serving `app`, and the acceptor on the calling runtime.
    pub fn start(listener: TcpListener, threads: usize, app: Router) -> std::io::Result<Self> {
        Self::start_with(listener, threads, app, EdgeLimits::default())
    }

    /// As [`HttpThreads::start`], with the edge's limits.
    pub fn start_with(
        listener: TcpListener,
        threads: usize,
        app: Router,
        limits: EdgeLimits,
    ) -> std::io::Result<Self> {
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
            let (app, stopped, mut released) = (app.clone(), stopped.clone(), released.clone());
            joins.push(
                std::thread::Builder::new()
                    .name(format!("leadgate-http-{i}"))
                    .spawn(move || {
                        runtime.block_on(async move {
                            serve_thread(incoming, app, limits, stopped).await;
                            let _ = done.send(Ok(()));
                            let _ = released.wait_for(|r| *r).await;
                        });
                    })?,
            );
        }
        let admission = Admission::new(limits.max_connections, limits.max_connections_per_client);
        tokio::spawn(accept(listener, handoffs, admission, stop.subscribe()));
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

/// Serves the connections handed to this thread until told to stop, then lets each finish
/// the request it is answering.
async fn serve_thread(
    mut incoming: mpsc::Receiver<Handed>,
    app: Router,
    limits: EdgeLimits,
    mut stopped: watch::Receiver<bool>,
) {
    // HTTP/1 only: the HTTP/1-or-2 sniffing of `auto` waits for a first byte before hyper's
    // header timer starts, so a connection that sends nothing was never closed.
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let handed = tokio::select! {
            biased;
            _ = stopped.wait_for(|s| *s) => break,
            handed = incoming.recv() => handed,
        };
        // The acceptor stopped: graceful shutdown is under way.
        let Some((stream, peer, admitted)) = handed else {
            let _ = stopped.wait_for(|s| *s).await;
            break;
        };
        let stream = match TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "a handed-off connection could not be registered");
                continue;
            }
        };
        // Answers are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        // A connection answering a request may not be evicted to make room (admission.rs).
        let (starts, ends) = (admitted.connection.clone(), admitted.connection.clone());
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                starts.start_request();
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            })
            .map_response(move |res| {
                ends.end_request();
                res
            })
            .service(app.clone());
        let service = hyper_util::service::TowerToHyperService::new(service);
        let watched = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            tokio::select! {
                ended = watched => {
                    // A timed-out or reset connection is the client's business, not an error here.
                    if let Err(e) = ended {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                // Dropping the connection closes its socket: its place is another peer's now.
                () = admitted.connection.evicted() => {}
            }
            drop(admitted);
        });
    }
    graceful.shutdown().await;
}

/// Accepts connections and hands them to the HTTP threads in turn, until told to stop.
async fn accept(
    listener: TcpListener,
    handoffs: Vec<mpsc::Sender<Handed>>,
    admission: Admission,
    mut stop: watch::Receiver<bool>,
) {
    let mut refused: u64 = 0;
    let mut next = 0;
    loop {
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
        let admitted = match admission.admit(peer.ip()) {
            Ok(a) => a,
            Err(full) => {
                // A fresh socket's send buffer is empty: the short answer fits without waiting.
                let _ = stream.try_write(REFUSAL);
                metrics::counter!("leadgate_connections_refused_total", "reason" => full.as_str())
                    .increment(1);
                refused += 1;
                // The first refusal and then every thousandth: a flood must not flood the log.
                if refused % 1000 == 1 {
                    tracing::warn!(reason = full.as_str(), refused, "connection refused: at the connection cap ([server] max_connections, max_connections_per_client)");
                }
                continue;
            }
        };
        // Out of this runtime's reactor, to be registered with the thread's own.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        if handoffs[next].send((stream, peer, admitted)).await.is_err() {
            // That thread is gone (only a panic ends one early): its share is refused
            // rather than the whole daemon stopping.
            tracing::error!(
                thread = next,
                "an HTTP thread is gone; its connection is closed"
            );
        }
        next = (next + 1) % handoffs.len();
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

    async fn read_all(stream: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_connection_over_the_cap_is_told_503_and_closed_and_the_cap_frees_on_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = EdgeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 2,
            max_connections_per_client: 0,
        };
        let mut http = HttpThreads::start_with(listener, 1, app(), limits).unwrap();
        let held: Vec<_> = futures::future::join_all((0..2).map(|_| TcpStream::connect(addr)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        let answer = read_all(&mut third).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("too_many_connections"), "{answer}");
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let served = reqwest::get(format!("http://{addr}/")).await.unwrap();
        assert_eq!(served.status(), 200);
        http.finish().await.unwrap();
        http.release().await;
    }

    /// A connection to `addr` from the loopback address `from` (127.0.0.0/8 is all local).
    async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        socket.connect(addr).await.unwrap()
    }

    #[tokio::test]
    async fn an_idle_flood_at_the_cap_gives_way_to_a_client_with_fewer_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = EdgeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 8,
            max_connections_per_client: 0,
        };
        let mut http = HttpThreads::start_with(listener, 1, app(), limits).unwrap();
        let mut flood = Vec::new();
        for _ in 0..8 {
            flood.push(connect_from([127, 0, 0, 2], addr).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The flooding address itself is refused: it already holds the most.
        let mut more = connect_from([127, 0, 0, 2], addr).await;
        assert!(read_all(&mut more).await.starts_with("HTTP/1.1 503"));
        // Another client is served, in the place of one idle flood connection.
        let served = reqwest::get(format!("http://{addr}/")).await.unwrap();
        assert_eq!(served.status(), 200);
        let mut closed = 0;
        for s in &mut flood {
            let mut buf = [0u8; 1];
            if let Ok(Ok(0)) = tokio::time::timeout(
                Duration::from_millis(50),
                tokio::io::AsyncReadExt::read(s, &mut buf),
            )
            .await
            {
                closed += 1;
            }
        }
        assert_eq!(closed, 1, "exactly one idle flood connection gave way");
        http.finish().await.unwrap();
        http.release().await;
    }

    #[tokio::test]
    async fn one_address_cannot_take_the_whole_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = EdgeLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 100,
            max_connections_per_client: 1,
        };
        let mut http = HttpThreads::start_with(listener, 1, app(), limits).unwrap();
        let _held = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert!(read_all(&mut second).await.starts_with("HTTP/1.1 503"));
        http.finish().await.unwrap();
        http.release().await;
    }

    #[tokio::test]
    async fn a_half_sent_or_idle_connection_is_closed_after_the_header_timeout() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = EdgeLimits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 100,
            max_connections_per_client: 0,
        };
        let mut http = HttpThreads::start_with(listener, 1, app(), limits).unwrap();
        let started = std::time::Instant::now();
        let mut half = TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let (a, b) = tokio::join!(read_all(&mut half), read_all(&mut idle));
        // Closed by the server (end of stream) well before read_all's own 5 s.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(!a.contains("200 OK") && b.is_empty(), "{a:?} {b:?}");
        http.finish().await.unwrap();
        http.release().await;
    }

    #[test]
    fn zero_means_one_thread_per_core() {
        assert!(count(0) >= 1);
        assert_eq!(count(3), 3);
    }
}
