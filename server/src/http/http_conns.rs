//! HTTP connections before they are WebSockets: accepting them, and how many may be open
//! (security review, finding 3).
//!
//! Every accepted TCP connection takes a [`Permit`] first: at most `maxHttpConnections` at
//! once, and `maxHttpConnectionsPerAddress` from one peer address (trusted proxies excepted:
//! behind nginx every connection is the proxy's, and Drupal on the same host comes from the
//! loopback, which is trusted by default). One more is answered `503` and closed at once,
//! counted in `drupal_push_http_connections_refused_total` and logged once per
//! [`LOG_PERIOD`] with the number refused. The permit is held by the connection's task, so it
//! is given back when the connection closes or becomes a WebSocket (WebSockets have limits of
//! their own: `maxConnections`, `maxConnectionsPerAddress`).
//!
//! [`accept`] is the accept loop's step: when the process is out of file descriptors
//! (`EMFILE`) accepting fails at once, again and again; it backs off [`ACCEPT_BACKOFF`] each
//! time instead of spinning, so the timeouts can free descriptors, and logs once per period.
//! What keeps a connection from holding its permit forever is the timeouts in [`crate::http::serve`].

use crate::edge::proxy::{TrustedProxies, UntrustedForwarders};
use crate::ops::metrics::Metrics;
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// How long accepting pauses after a failure that is not the peer's (out of descriptors).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Refusals and accept failures are logged at most once per period.
pub const LOG_PERIOD: Duration = Duration::from_secs(10);

/// The answer to a connection over a cap, written without reading its request.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Retry-After: 1\r\nConnection: close\r\nContent-Length: 42\r\n\r\n{\"error\":\"too many open HTTP connections\"}";

/// The HTTP connection settings: the timeouts of [`crate::http::serve`] and the caps here.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `httpHeaderTimeoutMs`: for a request's headers, and then its body.
    pub header_timeout: Duration,
    /// `httpIdleTimeoutMs`: a kept-alive connection with no request.
    pub idle_timeout: Duration,
    /// `maxHttpConnections` (0: no limit).
    pub max_connections: usize,
    /// `maxHttpConnectionsPerAddress` (0: no limit).
    pub max_per_address: usize,
}

/// The open HTTP connections, in total and by peer address.
pub struct HttpConns {
    max: usize,
    per_address: usize,
    exempt: TrustedProxies,
    /// Peers seen forwarding without being trusted, for the hint in a per-address refusal.
    untrusted: UntrustedForwarders,
    open: AtomicUsize,
    by_address: Mutex<HashMap<IpAddr, usize>>,
    metrics: Arc<Metrics>,
    /// One log per cap: `maxHttpConnections`, `maxHttpConnectionsPerAddress`.
    refusals: [PeriodicLog; 2],
    accept_failures: PeriodicLog,
}

/// One open HTTP connection, counted until dropped.
pub struct Permit {
    conns: Arc<HttpConns>,
    /// The address it is counted under, when it is.
    address: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.conns.open.fetch_sub(1, Ordering::Relaxed);
        self.conns.metrics.http_connections.dec();
        if let Some(ip) = self.address {
            let mut table = self.conns.lock();
            if let Some(n) = table.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    table.remove(&ip);
                }
            }
        }
    }
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `maxHttpConnections`.
    Limit,
    /// `maxHttpConnectionsPerAddress`.
    AddressLimit,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Limit => "limit",
            Refused::AddressLimit => "address_limit",
        }
    }
}

impl HttpConns {
    /// Caps of `settings`; `exempt` (the trusted proxies) are not capped per address.
    pub fn new(
        settings: &HttpSettings,
        exempt: TrustedProxies,
        untrusted: UntrustedForwarders,
        metrics: Arc<Metrics>,
    ) -> Arc<HttpConns> {
        Arc::new(HttpConns {
            max: settings.max_connections,
            per_address: settings.max_per_address,
            exempt,
            untrusted,
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            metrics,
            refusals: Default::default(),
            accept_failures: PeriodicLog::default(),
        })
    }

    /// No caps (a listener outside the server: the tests' fake Drupal over TLS).
    pub fn unlimited() -> Arc<HttpConns> {
        Arc::new(HttpConns {
            max: 0,
            per_address: 0,
            exempt: TrustedProxies::default(),
            untrusted: UntrustedForwarders::default(),
            open: AtomicUsize::new(0),
            by_address: Mutex::new(HashMap::new()),
            metrics: Arc::new(Metrics::new()),
            refusals: Default::default(),
            accept_failures: PeriodicLog::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.by_address.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit for one more connection from `peer`, unless a cap is reached.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Permit, Refused> {
        let peer = peer.to_canonical();
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max && self.max > 0 {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refused::Limit);
        }
        let mut address = None;
        if self.per_address > 0 && !self.exempt.contains(peer) {
            let mut table = self.lock();
            let n = table.entry(peer).or_insert(0);
            if *n >= self.per_address {
                drop(table);
                self.open.fetch_sub(1, Ordering::Relaxed);
                return Err(Refused::AddressLimit);
            }
            *n += 1;
            address = Some(peer);
        }
        self.metrics.http_connections.inc();
        Ok(Permit { conns: self.clone(), address })
    }

    /// Counts and logs (once per period) a connection refused by `cap`.
    fn refused(&self, peer: SocketAddr, cap: Refused) {
        self.metrics.http_refused(cap.label());
        let (key, log) = match cap {
            Refused::Limit => ("maxHttpConnections", &self.refusals[0]),
            Refused::AddressLimit => ("maxHttpConnectionsPerAddress", &self.refusals[1]),
        };
        if let Some(more) = log.due() {
            // A peer seen sending X-Forwarded-For without being trusted is most likely a reverse
            // proxy missing from trustedProxies, which every browser behind it shares.
            let hint = match cap {
                Refused::AddressLimit => self.untrusted.hint(peer.ip()),
                Refused::Limit => String::new(),
            };
            tracing::warn!(%peer, refused_since_last_log = more, "HTTP connection refused: {key} reached{hint}");
        }
    }
}

/// Accepts the next connection that gets a permit: refused ones are answered 503 and closed;
/// failures of the listener itself (out of descriptors) back off.
pub async fn accept(listener: &TcpListener, conns: &Arc<HttpConns>) -> (TcpStream, SocketAddr, Permit) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => match conns.admit(peer.ip()) {
                Ok(permit) => return (tcp, peer, permit),
                Err(cap) => {
                    let _ = tcp.try_write(REFUSED);
                    conns.refused(peer, cap);
                }
            },
            Err(e) if is_peer_error(&e) => {}
            Err(e) => {
                conns.metrics.accept_error();
                if let Some(more) = conns.accept_failures.due() {
                    tracing::error!(
                        error = %e,
                        failed_since_last_log = more,
                        "cannot accept connections (out of file descriptors? raise LimitNOFILE / ulimit -n, \
                         or lower maxHttpConnections); retrying every {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// Errors of one connection that went away before it was accepted: the next one may be fine.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    )
}

/// Says when a repeated event is due to be logged again, and how many went unlogged.
#[derive(Default)]
struct PeriodicLog {
    last: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl PeriodicLog {
    /// `Some(events not logged since the last line)` when a line is due, else `None`.
    fn due(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < LOG_PERIOD) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(max: usize, per_address: usize) -> Arc<HttpConns> {
        let settings =
            crate::config::load_file_text(crate::config::FileFormat::Toml, "serviceKey = \"k\"").unwrap().0;
        let http = HttpSettings { max_connections: max, max_per_address: per_address, ..settings.http };
        HttpConns::new(&http, settings.edge.proxies, UntrustedForwarders::default(), Arc::new(Metrics::new()))
    }

    #[test]
    fn caps_in_total_and_per_address_with_trusted_proxies_exempt() {
        let c = conns(4, 2);
        let (a, b, proxy): (IpAddr, IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap());
        let a1 = c.admit(a).unwrap();
        let _a2 = c.admit(a).unwrap();
        assert_eq!(c.admit(a).err(), Some(Refused::AddressLimit));
        let _b1 = c.admit(b).unwrap();
        let _p1 = c.admit(proxy).unwrap();
        assert_eq!(
            c.admit(proxy).err(),
            Some(Refused::Limit),
            "the proxy is exempt from the address cap only"
        );
        drop(a1);
        assert_eq!(c.metrics.http_connections.get(), 3);
        let _a3 = c.admit(a).expect("a permit given back makes room");
        assert_eq!(c.admit(b).err(), Some(Refused::Limit));
        drop(_a3);
        drop(_a2);
        assert!(c.lock().get(&a).is_none(), "an address with no connection is forgotten");
        let open = conns(0, 0);
        let permits: Vec<_> = (0..10_000).map(|_| open.admit(a).unwrap()).collect();
        assert_eq!(open.open.load(Ordering::Relaxed), permits.len(), "0: no limit");
    }

    #[test]
    fn a_repeated_event_is_logged_once_per_period() {
        let log = PeriodicLog::default();
        assert_eq!(log.due(), Some(0));
        assert_eq!((log.due(), log.due()), (None, None));
        *log.last.lock().unwrap() = Some(Instant::now() - LOG_PERIOD);
        assert_eq!(log.due(), Some(2), "the next line counts the ones not logged");
    }
}
