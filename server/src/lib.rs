//! drupal-push server: a drop-in replacement for the Node.js server of Drupal's `nodejs` module.
//!
//! Drupal talks to it over the original REST API under `/nodejs/` ([`api`]) and answers its
//! authentication callback ([`backend`]); browsers connect over plain WebSocket JSON ([`conn`],
//! protocol in the `drupal-push-protocol` crate).
//!
//! Module map, one folder per part (ARCHITECTURE.md draws them and the data paths):
//! * [`http`]: the listener, HTTP connection caps and timeouts, TLS, the client's files.
//! * [`edge`]: what is let in: origins, trusted proxies, per-address limits, the upgrade's
//!   checks, the fair share of Drupal's queue, refused-token cache, the no-key guard.
//! * [`api`]: Drupal's REST API under `/nodejs/`.
//! * [`conn`]: one WebSocket connection: handshake, codec, authentication, client requests,
//!   its outbox.
//! * [`hub`]: this node's sockets and their channels; [`hub::node`] the engine's way back in.
//! * [`engine`]: everything cluster-wide (streams and history, presence, the auth cache,
//!   content tokens, commands between nodes), in memory or on Redis.
//! * [`drupal`]: the client of Drupal's `/nodejs/message`, presence notices, the fake Drupal
//!   and the demo mode.
//! * [`ops`]: status page and `/status.json`, `/metrics`, logging, the drain on shutdown.
//! * [`config`] what can be set; [`error`] one error type per boundary; [`ids`] random ids.
//!
//! Start reading at [`run`] and [`app`].

// The configuration defaults are one `json!` literal with many keys.
#![recursion_limit = "256"]

mod api;
pub mod config;
mod conn;
mod drupal;
mod edge;
mod engine;
mod error;
mod http;
mod hub;
mod ids;
mod ops;

pub use drupal::fake_drupal;
pub use http::tls;
pub use ops::logging;

use axum::Router;
use axum::routing::get;
use backend::Backend;
use config::Settings;
#[doc(hidden)]
pub use conn::codec::CodecRun;
use drupal::{backend, demo};
use edge::{admission, proxy};
use engine::{Engine, MemoryEngine, RedisEngine};
pub use error::StartError;
use http::{client_assets, http_conns, serve};
use hub::Hub;
use hub::node;
use ops::{drain, metrics, status};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Turns verbose logging on or off (`debug/toggle`); given by `main`, which owns the logger.
pub type DebugSwitch = Arc<dyn Fn(bool) + Send + Sync>;

/// Everything a request handler or connection task needs.
pub(crate) struct App {
    /// Every setting, parsed once; each part reads its own part.
    pub settings: Arc<Settings>,
    /// This node's sockets.
    pub hub: Hub,
    /// The cluster-wide state.
    pub engine: Arc<dyn Engine>,
    pub backend: Backend,
    /// This node's metrics (`/metrics`, and the totals of `/status.json`).
    pub metrics: Arc<metrics::Metrics>,
    /// Origin, rate-limit and drain checks in front of the WebSocket upgrade.
    pub admission: admission::Admission,
    /// HTTP connections that are not WebSockets (yet): their caps.
    pub http: Arc<http_conns::HttpConns>,
    /// Connection tasks, so shutdown can wait for them (axum does not track upgraded sockets).
    pub tracker: TaskTracker,
    pub started: Instant,
    /// The engine's figures for the public `/status.json`, computed at most once a second.
    pub status_stats: status::StatsCache,
    /// The address the server listens on.
    pub local: SocketAddr,
    debug: Option<DebugSwitch>,
}

impl App {
    pub fn http_timeouts(&self) -> serve::Timeouts {
        serve::Timeouts {
            header: self.settings.http.header_timeout,
            idle: self.settings.http.idle_timeout,
            finish: self.settings.conn.write_timeout,
        }
    }

    pub fn set_debug(&self, on: bool) {
        if let Some(switch) = &self.debug {
            switch(on);
        }
        tracing::info!(debug = on, "debug logging switched");
    }
}

/// How long shutdown waits for connections to close after the drain told them to.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// The HTTP application: backend API, WebSocket endpoint, status, demo and static files.
fn app(state: Arc<App>) -> Router {
    let (s, l) = (&state.settings, &state.settings.listen);
    let mut router =
        Router::new().merge(api::router(state.clone())).route(&s.listen.ws_path, get(conn::upgrade::upgrade));
    router = router
        .merge(client_assets::router(&l.resource, &l.ws_path, l.dist_dir.as_deref()))
        .merge(metrics::router())
        .route("/readyz", get(status::ready));
    if s.ops.public_status {
        router = router.merge(status::router());
    }
    if s.ops.demo {
        router = router.merge(demo::router(&s.api.service_key, &l.host));
    }
    router.merge(status::static_files(&s.listen)).with_state(state)
}

/// The whole HTTP application for `settings`, as served at `local`, without a listener: what
/// the fuzz harness drives in-process (call it inside a tokio runtime).
pub fn router(settings: Settings, local: SocketAddr) -> Result<Router, StartError> {
    Ok(app(build_state(settings, local, None)?))
}

/// Runs the WebSocket frame reader (`conn::codec`, private) over `chunks` fed one after the
/// other, as successive reads from a socket, with `max_message` as `maxFrameSize`. Exists for
/// the fuzz harness (`drupal_push_tests::fuzz::ws_codec`, `server/fuzz/`); not an API.
#[doc(hidden)]
pub fn fuzz_codec(max_message: usize, chunks: &[&[u8]]) -> CodecRun {
    conn::codec::run_chunks(max_message, chunks)
}

/// Builds the shared state for a server listening at `local`.
fn build_state(
    settings: Settings,
    local: SocketAddr,
    debug: Option<DebugSwitch>,
) -> Result<Arc<App>, StartError> {
    let s = settings;
    let url = if s.ops.demo { demo::backend_url(local) } else { s.backend.url.clone() };
    let metrics = Arc::new(metrics::Metrics::new());
    let untrusted = proxy::UntrustedForwarders::default();
    let backend = Backend::new(&s.backend, url, metrics.clone(), untrusted.clone())
        .map_err(StartError::BackendClient)?;
    let http =
        http_conns::HttpConns::new(&s.http, s.edge.proxies.clone(), untrusted.clone(), metrics.clone());
    let admission = admission::Admission::new(&s.edge, untrusted, metrics.untrusted_forwarded.clone());
    let hub = Hub::new(s.hub);
    // The node first: the engine is built delivering to it, with no second start step.
    let node: Arc<dyn engine::Node> =
        Arc::new(node::LocalNode::new(hub.clone(), Arc::new(backend.clone()), metrics.clone()));
    let engine: Arc<dyn Engine> = match &s.engine {
        config::settings::EngineSettings::Memory(m) => Arc::new(MemoryEngine::new(m.clone(), node)),
        config::settings::EngineSettings::Redis(r) => {
            Arc::new(RedisEngine::new(r.clone(), node).map_err(StartError::Engine)?)
        }
    };
    Ok(Arc::new(App {
        settings: Arc::new(s),
        hub,
        engine,
        backend,
        metrics,
        admission,
        http,
        tracker: TaskTracker::new(),
        started: Instant::now(),
        status_stats: status::StatsCache::default(),
        local,
        debug,
    }))
}

/// Serves on `listener` until `shutdown` completes, then drains: closes every WebSocket with
/// 1001 (clients reconnect soon) spread over `drainWindowMs`, and waits up to 10 s more for the
/// connections to finish.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    debug: Option<DebugSwitch>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    run_until(listener, settings, debug, shutdown, std::future::pending()).await
}

/// [`run`], where `hurry` completing during the drain closes the remaining sockets at once
/// (the binary's second SIGTERM).
pub async fn run_until(
    listener: TcpListener,
    settings: Settings,
    debug: Option<DebugSwitch>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hurry: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let local = listener.local_addr()?;
    let state = build_state(settings, local, debug)?;
    tracing::info!(
        %local,
        backend = state.backend.url(),
        ws_path = %state.settings.listen.ws_path,
        "drupal-push serving"
    );
    let router = app(state.clone());
    let draining = state.clone();
    // The HTTP API keeps serving during the drain; the listener closes when it is over.
    let stop = async move {
        shutdown.await;
        draining.admission.start_draining();
        drain::drain(&draining.hub, draining.settings.ops.drain_window, hurry).await;
    };
    if state.settings.listen.scheme == config::Scheme::Https {
        tls::serve(listener, router, &state, stop).await?;
    } else {
        let acceptor = serve::TcpAcceptor { listener, conns: state.http.clone() };
        serve::serve(acceptor, router, state.http_timeouts(), state.metrics.clone(), stop).await;
    }
    state.tracker.close();
    if tokio::time::timeout(SHUTDOWN_DRAIN, state.tracker.wait()).await.is_err() {
        tracing::warn!(left = state.hub.connection_count(), "connections still open after the drain period");
    }
    Ok(())
}
