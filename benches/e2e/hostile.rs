//! The hostile clients of the e2e bench's `hostile` stage (issue 28 item 2): processes that
//! hold thousands of idle or half-sent connections open, and a flood of webhook requests to
//! connector names that do not exist.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The holder role: `per_address` connections from each of `addresses` loopback source
/// addresses starting at 127.0.0.`first`, every other one sending half a request head and
/// the rest nothing. A connection the server closes is opened again after `reopen`, so the
/// count stays up for as long as the process lives. Prints `holding N` once all are open.
pub async fn hold(
    target: SocketAddr,
    first: u8,
    addresses: u8,
    per_address: usize,
    reopen: Duration,
) {
    let opened = Arc::new(AtomicUsize::new(0));
    let total = usize::from(addresses) * per_address;
    for a in 0..addresses {
        let from = IpAddr::from([127, 0, 0, first + a]);
        for i in 0..per_address {
            let opened = opened.clone();
            tokio::spawn(async move {
                let mut first_time = true;
                loop {
                    if let Ok(mut s) = connect_from(from, target).await {
                        if first_time {
                            opened.fetch_add(1, Ordering::Relaxed);
                            first_time = false;
                        }
                        if i % 2 == 0 {
                            let _ = s
                                .write_all(b"POST /v1/leads HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                                .await;
                        }
                        // Held until the server closes it (refusal, header timeout, eviction).
                        let mut sink = [0u8; 512];
                        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
                    }
                    tokio::time::sleep(reopen).await;
                }
            });
            // Open gradually: the listen backlog, not the server, would refuse a burst.
            if i % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let started = Instant::now();
    while opened.load(Ordering::Relaxed) < total && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("holding {}", opened.load(Ordering::Relaxed));
    std::future::pending::<()>().await;
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Answers the flood got, by class.
#[derive(Default)]
pub struct Flood {
    pub sent: AtomicUsize,
    pub not_found: AtomicUsize,
    pub limited: AtomicUsize,
    pub refused: AtomicUsize,
    pub other: AtomicUsize,
}

/// Posts to `/v1/webhooks/<random name>` from 127.0.0.`from`, paced at `per_second`, until
/// `stop` is set.
pub async fn flood_bad_webhooks(
    base: String,
    from: u8,
    per_second: u32,
    stop: Arc<AtomicBool>,
    seen: Arc<Flood>,
) {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, from]))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut rng = fastrand::Rng::with_seed(28);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let name: String = (0..12).map(|_| rng.alphanumeric()).collect();
        let (client, url, seen) = (
            client.clone(),
            format!("{base}/v1/webhooks/{name}%0Aforged"),
            seen.clone(),
        );
        seen.sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let counter = match client.post(url).body("{}").send().await {
                Ok(r) if r.status() == 404 => &seen.not_found,
                Ok(r) if r.status() == 429 => &seen.limited,
                Ok(r) if r.status() == 503 => &seen.refused,
                _ => &seen.other,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        });
    }
}

/// `/healthz` latencies (ms, sorted) from one connection, every `gap`, for `for_`.
pub async fn probe_healthz(base: String, gap: Duration, for_: Duration) -> (Vec<f64>, usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let (mut lat, mut failed) = (Vec::new(), 0);
    while started.elapsed() < for_ {
        let t = Instant::now();
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => lat.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
        tokio::time::sleep(gap).await;
    }
    lat.sort_by(f64::total_cmp);
    (lat, failed)
}

/// One figure from a Prometheus text page: the sum of the series named `name`.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
