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
use config::Config;
#[doc(hidden)]
pub use conn::codec::CodecRun;
use conn::{client_requests, outbox};
use drupal::{backend, demo};
use edge::{admission, proxy};
use engine::{Engine, MemoryEngine, RedisEngine};
pub use error::StartError;
use http::{client_assets, http_conns, serve};
use hub::node;
use hub::{ConnLimits, Hub};
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
    pub config: Arc<Config>,
    /// This node's sockets.
    pub hub: Hub,
    /// The cluster-wide state.
    pub engine: Arc<dyn Engine>,
    pub backend: Backend,
    /// What browsers may send besides `authenticate`: messages for Drupal, channel publishes.
    pub requests: client_requests::Policy,
    /// This node's metrics (`/metrics`, and the totals of `/status.json`).
    pub metrics: Arc<metrics::Metrics>,
    pub outbox_limits: outbox::Limits,
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
            header: self.config.http_header_timeout(),
            idle: self.config.http_idle_timeout(),
            finish: self.config.write_timeout(),
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
    let c = &state.config;
    let mut router =
        Router::new().merge(api::router(state.clone())).route(&c.ws_path, get(conn::upgrade::upgrade));
    router =
        router.merge(client_assets::router(c)).merge(metrics::router()).route("/readyz", get(status::ready));
    if c.public_status {
        router = router.merge(status::router());
    }
    if c.demo {
        router = router.merge(demo::router(c));
    }
    router.merge(status::static_files(c)).with_state(state)
}

/// The whole HTTP application for `config`, as served at `local`, without a listener: what the
/// fuzz harness drives in-process (call it inside a tokio runtime).
pub fn router(config: Config, local: SocketAddr) -> Result<Router, StartError> {
    Ok(app(build_state(config, local, None)?))
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
    config: Config,
    local: SocketAddr,
    debug: Option<DebugSwitch>,
) -> Result<Arc<App>, StartError> {
    let url = if config.demo { demo::backend_url(local) } else { config.backend_url() };
    let metrics = Arc::new(metrics::Metrics::new());
    let untrusted = proxy::UntrustedForwarders::default();
    let backend =
        Backend::new(&config, url, metrics.clone(), untrusted.clone()).map_err(StartError::BackendClient)?;
    let admission = admission::Admission::new(&config, untrusted, metrics.untrusted_forwarded.clone())
        .map_err(StartError::Admission)?;
    let requests = client_requests::Policy::new(&config).map_err(StartError::Config)?;
    let http = http_conns::HttpConns::new(&config, metrics.clone()).map_err(StartError::Config)?;
    let hub = Hub::new(ConnLimits {
        max_connections: config.max_connections,
        max_per_address: config.max_connections_per_address,
    });
    let engine: Arc<dyn Engine> = match config.engine {
        config::EngineKind::Memory => Arc::new(MemoryEngine::new(engine::MemorySettings {
            history: config.history(),
            presence_grace: config.presence_grace(),
            auth_cache_ttl: Duration::from_secs(config.auth_cache_ttl_secs),
            auth_cache_max: config.auth_cache_max,
            content_token_ttl: Duration::from_secs(config.content_token_ttl_secs),
        })),
        config::EngineKind::Redis => Arc::new(
            RedisEngine::new(engine::RedisSettings {
                url: config.redis.url.clone(),
                prefix: config.redis.prefix.clone(),
                history: config.history(),
                presence_grace: config.presence_grace(),
                auth_cache_ttl: Duration::from_secs(config.auth_cache_ttl_secs),
                content_token_ttl: Duration::from_secs(config.content_token_ttl_secs),
                node_ttl: Duration::from_millis(config.redis.node_timeout_ms),
            })
            .map_err(StartError::Engine)?,
        ),
    };
    engine.start(Arc::new(node::LocalNode::new(hub.clone(), Arc::new(backend.clone()), metrics.clone())));
    Ok(Arc::new(App {
        outbox_limits: outbox::Limits {
            max_frames: config.max_queued_messages,
            max_bytes: config.max_queued_bytes,
        },
        config: Arc::new(config),
        hub,
        engine,
        backend,
        requests,
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
    config: Config,
    debug: Option<DebugSwitch>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    run_until(listener, config, debug, shutdown, std::future::pending()).await
}

/// [`run`], where `hurry` completing during the drain closes the remaining sockets at once
/// (the binary's second SIGTERM).
pub async fn run_until(
    listener: TcpListener,
    config: Config,
    debug: Option<DebugSwitch>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hurry: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let local = listener.local_addr()?;
    let state = build_state(config, local, debug)?;
    tracing::info!(
        %local,
        backend = state.backend.url(),
        ws_path = %state.config.ws_path,
        "drupal-push serving"
    );
    let router = app(state.clone());
    let draining = state.clone();
    // The HTTP API keeps serving during the drain; the listener closes when it is over.
    let stop = async move {
        shutdown.await;
        draining.admission.start_draining();
        drain::drain(&draining.hub, draining.config.drain_window(), hurry).await;
    };
    if state.config.scheme == config::Scheme::Https {
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
