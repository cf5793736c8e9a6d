//! This node's metrics, and `/metrics` in the Prometheus text format (version 0.0.4).
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: a registry is a
//! value, not a process-wide recorder (the `metrics` crate's model), so every server in one
//! process (the tests start dozens) counts on its own; a counter is an `Arc`'d atomic that the
//! hot paths hold directly, without a label lookup; and it brings no HTTP server of its own.
//!
//! Two kinds of numbers:
//! * **Counted where they happen**, each one atomic add: publications (one per publish, by
//!   stream kind) and deliveries (the fan-out adds its loop's total once per publish, never once
//!   per socket), authentications by outcome, backend requests (latency histogram, errors by
//!   kind), closes by code, slow-consumer closes, refused handshakes; the bytes waiting in
//!   outboxes move with each queued frame (a frame the socket takes at once costs nothing).
//! * **Read at scrape time** from counters the hub, the engine and the backend client already
//!   keep (each O(1)): connections by state, sessions, online users, channels, history
//!   messages and bytes, nodes alive and their sockets, whether the engine is ready, the
//!   backend's queue and in-flight requests, pending notices, RSS. When the engine cannot be
//!   reached the engine's figures keep their last values and `drupal_push_engine_ready` is 0.
//!
//! `/metrics` (`endpoint`) is behind `Authorization: Bearer <metricsToken>` (README.md, "Metrics", says why
//! not the service key) and off while `metricsToken` is empty. The public status page reads the
//! publication and delivery totals from `/status.json` and turns them into rates.

use crate::engine::Stream;
use crate::ops::figures::Figures;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::{Duration, SystemTime};

mod endpoint;
pub use endpoint::router;

/// Where Prometheus scrapes.
pub const METRICS_PATH: &str = "/metrics";

/// Upper bounds of the backend latency buckets, seconds: a Drupal that answers in a few
/// milliseconds up to one at the 30 s default timeout.
const BACKEND_BUCKETS: [f64; 13] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    request: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    by: &'static str,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Cause {
    cause: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamKind {
    stream: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnState {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: &'static str,
}

/// How an authentication ended (`drupal_push_authentications_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Drupal accepted the token.
    Ok,
    /// Answered from the auth cache, without asking Drupal.
    Cached,
    /// Drupal rejected the token, or it was empty or oversized.
    Rejected,
    /// `authRatePerAddress` exceeded.
    RateLimited,
    /// The backend queue was full.
    BackendBusy,
    /// Drupal could not be asked or answered badly.
    BackendError,
    /// The cluster-wide state could not be reached.
    EngineError,
}

impl AuthOutcome {
    fn label(self) -> &'static str {
        match self {
            AuthOutcome::Ok => "ok",
            AuthOutcome::Cached => "cached",
            AuthOutcome::Rejected => "rejected",
            AuthOutcome::RateLimited => "rate_limited",
            AuthOutcome::BackendBusy => "backend_busy",
            AuthOutcome::BackendError => "backend_error",
            AuthOutcome::EngineError => "engine_error",
        }
    }
}

/// Who ended a connection (`drupal_push_closes_total{by}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    /// The server sent a close frame with the code.
    Server,
    /// The client sent a close frame (code 1005 when it gave none).
    Client,
    /// The connection ended without a close frame (counted as 1006, as browsers report it).
    Network,
}

/// Values read when Prometheus scrapes.
#[derive(Default)]
struct Sampled {
    connections: Family<ConnState, Gauge>,
    sessions: Gauge,
    online_users: Gauge,
    channels: Gauge,
    token_channels: Gauge,
    cached_auth_tokens: Gauge,
    history_messages: Gauge,
    history_bytes: Gauge,
    nodes: Gauge,
    cluster_sockets: Gauge,
    engine_ready: Gauge,
    backend_queue: Gauge,
    backend_in_flight: Gauge,
    pending_notices: Gauge,
    client_addresses: Gauge,
    top_address_connections: Gauge,
    rss: Gauge,
}

/// This node's metrics: the registry and the handles the code counts with.
pub struct Metrics {
    registry: Registry,
    publications: [Counter; 3],
    deliveries: Counter,
    /// Bytes queued in outboxes for sockets that could not take them yet.
    pub queued_bytes: Gauge,
    slow_consumers: Family<Cause, Counter>,
    closes: Family<CloseLabels, Counter>,
    authentications: Family<Outcome, Counter>,
    backend_seconds: Family<Request, Histogram, fn() -> Histogram>,
    backend_errors: Family<Kind, Counter>,
    handshakes_refused: Family<Reason, Counter>,
    /// HTTP connections open that are not WebSockets (yet).
    pub http_connections: Gauge,
    http_refused: Family<Reason, Counter>,
    http_timeouts: Family<Kind, Counter>,
    accept_errors: Counter,
    /// Handshakes carrying `X-Forwarded-For` or `Forwarded` from a peer not in
    /// `trustedProxies` (counted by the admission checks).
    pub untrusted_forwarded: Counter,
    sampled: Sampled,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn backend_histogram() -> Histogram {
    Histogram::new(BACKEND_BUCKETS)
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            publications: Default::default(),
            deliveries: Counter::default(),
            queued_bytes: Gauge::default(),
            slow_consumers: Family::default(),
            closes: Family::default(),
            authentications: Family::default(),
            backend_seconds: Family::new_with_constructor(backend_histogram),
            backend_errors: Family::default(),
            handshakes_refused: Family::default(),
            http_connections: Gauge::default(),
            http_refused: Family::default(),
            http_timeouts: Family::default(),
            accept_errors: Counter::default(),
            untrusted_forwarded: Counter::default(),
            sampled: Sampled::default(),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        let s = &self.sampled;
        let publications: Family<StreamKind, Counter> = Family::default();
        for (counter, stream) in self.publications.iter_mut().zip(["channel", "token", "broadcast"]) {
            *counter = publications.get_or_create(&StreamKind { stream }).clone();
        }
        r.register(
            "drupal_push_publications",
            "Messages fanned out on this node, by stream kind (a channel, a content-token channel, broadcast)",
            publications,
        );
        r.register(
            "drupal_push_deliveries",
            "Messages written or queued to this node's sockets (one per socket per publication)",
            self.deliveries.clone(),
        );
        r.register(
            "drupal_push_connections",
            "WebSocket connections on this node, by state (pre_auth: not authenticated yet)",
            s.connections.clone(),
        );
        r.register(
            "drupal_push_sessions",
            "Distinct sessions (auth tokens) with a socket, cluster-wide",
            s.sessions.clone(),
        );
        r.register("drupal_push_online_users", "Users with a socket, cluster-wide", s.online_users.clone());
        r.register("drupal_push_channels", "Channels, cluster-wide", s.channels.clone());
        r.register("drupal_push_nodes", "Nodes alive (1 with the memory engine)", s.nodes.clone());
        r.register(
            "drupal_push_cluster_sockets",
            "Authenticated sockets on all nodes",
            s.cluster_sockets.clone(),
        );
        r.register(
            "drupal_push_engine_ready",
            "1 when the engine reaches the shared state (always with the memory engine), else 0",
            s.engine_ready.clone(),
        );
        r.register(
            "drupal_push_token_channels",
            "Content-token channels, cluster-wide",
            s.token_channels.clone(),
        );
        r.register(
            "drupal_push_cached_auth_tokens",
            "Auth tokens whose Drupal answer is cached",
            s.cached_auth_tokens.clone(),
        );
        r.register(
            "drupal_push_authentications",
            "Socket authentications by outcome (ok: Drupal accepted; cached: from the auth cache)",
            self.authentications.clone(),
        );
        r.register(
            "drupal_push_backend_request_duration_seconds",
            "Time of requests to Drupal's /nodejs/message, by request (authenticate, notice)",
            self.backend_seconds.clone(),
        );
        r.register(
            "drupal_push_backend_errors",
            "Failed requests to Drupal by kind (queue_full: refused before a request was made)",
            self.backend_errors.clone(),
        );
        r.register(
            "drupal_push_backend_queued_authentications",
            "Authentications waiting for a backend request slot (at most backend.queueLength)",
            s.backend_queue.clone(),
        );
        r.register(
            "drupal_push_backend_requests_in_flight",
            "Requests to Drupal running now (at most backend.concurrency)",
            s.backend_in_flight.clone(),
        );
        r.register(
            "drupal_push_backend_pending_notices",
            "userOnline/userOffline notices queued or being sent to Drupal",
            s.pending_notices.clone(),
        );
        r.register(
            "drupal_push_closes",
            "Ended connections by who closed them (server, client, network) and close code",
            self.closes.clone(),
        );
        r.register(
            "drupal_push_slow_consumer_closes",
            "Sockets closed with 4101 as slow consumers, by cause (queue_full, write_timeout)",
            self.slow_consumers.clone(),
        );
        r.register(
            "drupal_push_handshakes_refused",
            "WebSocket handshakes refused before the upgrade, by reason (origin, rate_limited, draining)",
            self.handshakes_refused.clone(),
        );
        r.register(
            "drupal_push_http_connections",
            "HTTP connections open that are not WebSockets (yet)",
            self.http_connections.clone(),
        );
        r.register(
            "drupal_push_http_connections_refused",
            "HTTP connections closed as soon as accepted, by reason (limit: maxHttpConnections; \
             address_limit: maxHttpConnectionsPerAddress)",
            self.http_refused.clone(),
        );
        r.register(
            "drupal_push_http_timeouts",
            "HTTP connections closed by a timeout, by kind (header: httpHeaderTimeoutMs; idle: httpIdleTimeoutMs)",
            self.http_timeouts.clone(),
        );
        r.register(
            "drupal_push_accept_errors",
            "Failed accepts of new connections (out of file descriptors: the loop backs off)",
            self.accept_errors.clone(),
        );
        r.register(
            "drupal_push_untrusted_forwarded_handshakes",
            "WebSocket handshakes carrying X-Forwarded-For or Forwarded from a peer not in trustedProxies \
             (the header is ignored: a reverse proxy missing from trustedProxies?)",
            self.untrusted_forwarded.clone(),
        );
        r.register(
            "drupal_push_client_addresses",
            "Distinct client addresses (IPv6: /64 networks) of this node's connections",
            s.client_addresses.clone(),
        );
        r.register(
            "drupal_push_top_address_connections",
            "Connections of the client address that holds the most on this node",
            s.top_address_connections.clone(),
        );
        r.register(
            "drupal_push_queued_bytes",
            "Bytes waiting in outboxes for sockets to take them",
            self.queued_bytes.clone(),
        );
        r.register(
            "drupal_push_history_messages",
            "Messages held in history for recovery",
            s.history_messages.clone(),
        );
        r.register(
            "drupal_push_history_bytes",
            "Bytes of history held (text plus bookkeeping)",
            s.history_bytes.clone(),
        );
        r.register("process_resident_memory_bytes", "Resident memory size in bytes", s.rss.clone());
        let started: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO);
        started.set(since_epoch.as_secs_f64());
        r.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds",
            started,
        );
        let info: Family<Version, Gauge> = Family::default();
        info.get_or_create(&Version { version: env!("CARGO_PKG_VERSION") }).set(1);
        r.register("drupal_push_build_info", "The server's version (value 1)", info);
        self
    }

    /// One publication fanned out here, to `delivered` sockets counted by the fan-out.
    pub fn published(&self, stream: &Stream) {
        let i = match stream {
            Stream::Channel(_) => 0,
            Stream::Token(_) => 1,
            Stream::Broadcast => 2,
        };
        self.publications[i].inc();
    }

    /// The counter the fan-out adds its total to, once per publication.
    pub fn deliveries(&self) -> &Counter {
        &self.deliveries
    }

    /// Publications fanned out on this node so far.
    pub fn publication_total(&self) -> u64 {
        self.publications.iter().map(Counter::get).sum()
    }

    pub fn delivery_total(&self) -> u64 {
        self.deliveries.get()
    }

    pub fn authentication(&self, outcome: AuthOutcome) {
        self.authentications.get_or_create(&Outcome { outcome: outcome.label() }).inc();
    }

    /// One request to Drupal took `took`.
    pub fn backend_request(&self, request: &'static str, took: Duration) {
        self.backend_seconds.get_or_create(&Request { request }).observe(took.as_secs_f64());
    }

    /// A request to Drupal failed (`kind` as in [`crate::error::BackendError::kind`]).
    pub fn backend_error(&self, kind: &'static str) {
        self.backend_errors.get_or_create(&Kind { kind }).inc();
    }

    pub fn closed(&self, by: ClosedBy, code: u16) {
        let by = match by {
            ClosedBy::Server => "server",
            ClosedBy::Client => "client",
            ClosedBy::Network => "network",
        };
        self.closes.get_or_create(&CloseLabels { by, code }).inc();
    }

    /// A socket closed as a slow consumer: `queue_full` or `write_timeout`.
    pub fn slow_consumer(&self, cause: &'static str) {
        self.slow_consumers.get_or_create(&Cause { cause }).inc();
    }

    pub fn handshake_refused(&self, reason: &'static str) {
        self.handshakes_refused.get_or_create(&Reason { reason }).inc();
    }

    /// An HTTP connection closed as soon as accepted: `limit` or `address_limit`.
    pub fn http_refused(&self, reason: &'static str) {
        self.http_refused.get_or_create(&Reason { reason }).inc();
    }

    /// An HTTP connection closed by a timeout: `header` or `idle`.
    pub fn http_timeout(&self, kind: &'static str) {
        self.http_timeouts.get_or_create(&Kind { kind }).inc();
    }

    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    /// The text Prometheus scrapes, with the sampled values read now.
    pub fn render(&self, f: &Figures) -> String {
        let s = &self.sampled;
        let local = &f.local;
        s.connections.get_or_create(&ConnState { state: "pre_auth" }).set(gauge(local.pre_auth_sockets));
        s.connections.get_or_create(&ConnState { state: "authenticated" }).set(gauge(local.sockets));
        s.client_addresses.set(gauge(local.client_addresses));
        s.top_address_connections.set(gauge(local.top_address_connections));
        s.engine_ready.set(i64::from(f.engine_ready));
        if let Ok(e) = &f.cluster {
            s.nodes.set(gauge(e.nodes));
            s.cluster_sockets.set(gauge(f.cluster_sockets()));
            s.sessions.set(gauge(e.sessions));
            s.online_users.set(gauge(e.online_users));
            s.channels.set(gauge(e.channels));
            s.token_channels.set(gauge(e.token_channels));
            s.cached_auth_tokens.set(gauge(e.cached_auth_tokens));
            s.history_messages.set(gauge(e.history_messages));
            s.history_bytes.set(gauge(e.history_bytes));
        }
        s.backend_queue.set(gauge(f.backend_queued));
        s.backend_in_flight.set(gauge(f.backend_in_flight));
        s.pending_notices.set(gauge(f.pending_notices));
        s.rss.set(i64::try_from(f.rss_bytes).unwrap_or(i64::MAX));
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
