//! Who may hold one of the edge's connections (`[server] max_connections`,
//! `max_connections_per_client`), and who gives one up when they are all taken.
//!
//! At the cap a newcomer is not simply refused: that would let anyone who opens enough idle
//! sockets shut everyone else out until the header timeout frees them, and then win the race
//! to refill them. Instead the newcomer takes the place of an *idle* connection (one with no
//! request in flight: never sent a whole head, or a keep-alive between requests) of the peer
//! that holds the most, provided that peer would still hold more than the newcomer after
//! giving one up (so peers with even shares do not evict each other in turn). A request being
//! answered is never cut; a peer can lose only connections it is not using; and a client
//! with few connections gets in however many an idle flood holds.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// How many of the heaviest peers are searched for an idle connection before refusing: bounds
/// the work an admission does while the cap is full and every big holder is busy.
const HEAVIEST_SEARCHED: usize = 8;

/// Which cap refused a connection: a fixed set, so a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    Server,
    Client,
}

impl Full {
    pub fn as_str(self) -> &'static str {
        match self {
            Full::Server => "server_full",
            Full::Client => "client_full",
        }
    }
}

/// One open connection as the admission book sees it.
#[derive(Default)]
pub struct Connection {
    busy: AtomicBool,
    evicted: AtomicBool,
    evict: Notify,
}

impl Connection {
    /// A request is being answered: the connection may not be given up.
    pub fn start_request(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// The answer is out: idle again until the next request.
    pub fn end_request(&self) {
        self.busy.store(false, Ordering::Release);
    }

    /// Resolves when this connection must close to make room for another peer's.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

#[derive(Default)]
struct Book {
    /// Open connections that count against `max_connections`; an evicted one leaves the
    /// book the moment it is chosen, so the newcomer's place is real.
    total: usize,
    peers: HashMap<IpAddr, Vec<Arc<Connection>>>,
    /// Peers by how many connections they hold, to find the heaviest without a scan.
    by_load: BTreeSet<(usize, IpAddr)>,
}

impl Book {
    fn set_load(&mut self, peer: IpAddr, from: usize, to: usize) {
        if from > 0 {
            self.by_load.remove(&(from, peer));
        }
        if to > 0 {
            self.by_load.insert((to, peer));
        }
    }

    /// Takes `connection` of `peer` out of the counts.
    fn forget(&mut self, peer: IpAddr, connection: &Arc<Connection>) {
        self.total = self.total.saturating_sub(1);
        let Some(held) = self.peers.get_mut(&peer) else {
            return;
        };
        let before = held.len();
        held.retain(|c| !Arc::ptr_eq(c, connection));
        let after = held.len();
        if after == 0 {
            self.peers.remove(&peer);
        }
        self.set_load(peer, before, after);
    }

    /// An idle connection of a peer holding at least two more than `mine`, heaviest first.
    fn idle_victim(&self, mine: usize) -> Option<(IpAddr, Arc<Connection>)> {
        self.by_load
            .iter()
            .rev()
            .take(HEAVIEST_SEARCHED)
            .take_while(|(load, _)| *load > mine + 1)
            .find_map(|(_, peer)| {
                let held = self.peers.get(peer)?;
                let idle = held.iter().find(|c| !c.busy.load(Ordering::Acquire))?;
                Some((*peer, idle.clone()))
            })
    }
}

/// The caps on open connections, in all and per peer address.
#[derive(Clone)]
pub struct Admission {
    max: usize,
    per_client: usize,
    book: Arc<Mutex<Book>>,
}

/// A connection's place under the caps, given back when it is dropped.
pub struct Admitted {
    pub connection: Arc<Connection>,
    peer: IpAddr,
    book: Arc<Mutex<Book>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        metrics::gauge!("leadgate_http_connections").decrement(1.0);
        let mut book = lock(&self.book);
        // An evicted connection left the book when it was chosen.
        if !self.connection.evicted.load(Ordering::Acquire) {
            book.forget(self.peer, &self.connection);
        }
    }
}

impl Admission {
    /// `max` connections in all (at least one); `per_client` from one address, 0 for no cap.
    pub fn new(max: usize, per_client: usize) -> Self {
        Self {
            max: max.max(1),
            per_client,
            book: Arc::default(),
        }
    }

    /// A place for a new connection from `peer`, evicting another peer's idle connection when
    /// the server is full and that peer holds at least two more than `peer` does.
    pub fn admit(&self, peer: IpAddr) -> Result<Admitted, Full> {
        let mut book = lock(&self.book);
        let mine = book.peers.get(&peer).map_or(0, Vec::len);
        if self.per_client > 0 && mine >= self.per_client {
            return Err(Full::Client);
        }
        if book.total >= self.max {
            let (owner, victim) = book.idle_victim(mine).ok_or(Full::Server)?;
            victim.evicted.store(true, Ordering::Release);
            // A stored permit: the connection's task wakes even if it is not waiting yet.
            victim.evict.notify_one();
            book.forget(owner, &victim);
            metrics::counter!("leadgate_connections_evicted_total").increment(1);
        }
        let connection = Arc::new(Connection::default());
        book.total += 1;
        book.peers.entry(peer).or_default().push(connection.clone());
        book.set_load(peer, mine, mine + 1);
        metrics::gauge!("leadgate_http_connections").increment(1.0);
        Ok(Admitted {
            connection,
            peer,
            book: self.book.clone(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change under this lock completes before it is released: a poisoned book is whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn at_the_cap_a_lighter_peer_takes_an_idle_place_of_the_heaviest() {
        let a = Admission::new(3, 0);
        let flood: Vec<_> = (0..3).map(|_| a.admit(ip(2)).unwrap()).collect();
        let newcomer = a.admit(ip(1)).expect("a peer with none gets in");
        assert_eq!(lock(&a.book).peers[&ip(2)].len(), 2);
        let evicted: Vec<_> = flood
            .iter()
            .filter(|c| c.connection.evicted.load(Ordering::Acquire))
            .collect();
        assert_eq!(evicted.len(), 1);
        // The heavy peer cannot evict its way back past the newcomer's fair share…
        assert_eq!(a.admit(ip(2)).err(), Some(Full::Server));
        drop(newcomer);
        // …and once the evicted one is gone the book balances: one place free.
        drop(flood);
        assert_eq!(lock(&a.book).total, 0);
        assert!(lock(&a.book).by_load.is_empty());
    }

    #[test]
    fn a_connection_answering_a_request_is_never_evicted() {
        let a = Admission::new(2, 0);
        let held: Vec<_> = (0..2).map(|_| a.admit(ip(2)).unwrap()).collect();
        for c in &held {
            c.connection.start_request();
        }
        assert_eq!(a.admit(ip(1)).err(), Some(Full::Server));
        held[1].connection.end_request();
        let _mine = a.admit(ip(1)).unwrap();
        assert!(held[1].connection.evicted.load(Ordering::Acquire));
        assert!(!held[0].connection.evicted.load(Ordering::Acquire));
    }

    #[test]
    fn peers_with_even_shares_do_not_evict_each_other() {
        let a = Admission::new(4, 0);
        let _two: Vec<_> = (0..2).map(|_| a.admit(ip(2)).unwrap()).collect();
        let _three: Vec<_> = (0..2).map(|_| a.admit(ip(3)).unwrap()).collect();
        // ip(1) holds none and each peer holds two: one gives way.
        let _mine = a.admit(ip(1)).unwrap();
        // ip(1) holds one now, the heaviest two: after giving one up it would hold as many
        // as ip(1), so it keeps it; and a peer with one left may not take it back either.
        assert_eq!(a.admit(ip(1)).err(), Some(Full::Server));
        let lighter = if lock(&a.book).peers[&ip(2)].len() == 1 {
            2
        } else {
            3
        };
        assert_eq!(a.admit(ip(lighter)).err(), Some(Full::Server));
    }

    #[test]
    fn the_per_client_cap_refuses_before_anything_is_evicted() {
        let a = Admission::new(10, 2);
        let _held: Vec<_> = (0..2).map(|_| a.admit(ip(2)).unwrap()).collect();
        assert_eq!(a.admit(ip(2)).err(), Some(Full::Client));
        assert!(a.admit(ip(3)).is_ok());
    }
}
