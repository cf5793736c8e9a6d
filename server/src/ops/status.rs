//! The public status page (`/status`, the page in `www/status.html` built into the binary) and
//! its data (`/status.json`: counters only, no channel names, tokens, keys or addresses), plus
//! the static file service for `staticDir` and `distDir`. Among the counters: the distinct
//! client addresses of this node's connections and the busiest address's share of them, so that
//! one address holding most connections (a reverse proxy missing from `trustedProxies`) shows
//! at a glance.
//!
//! `/status.json` needs no key, so the engine's figures in it (several round trips on Redis)
//! are computed at most once per [`STATS_TTL`] ([`StatsCache`]), one computation shared by the
//! requests that arrive meanwhile: a flood of requests costs Redis nothing more. This node's own
//! figures are read fresh every time.

use crate::App;
use crate::api::ApiError;
use crate::config::{COMPAT_VERSION, Config};
use crate::engine::{Engine, EngineStats};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::services::ServeDir;

/// How long `/status.json` reuses the engine's figures.
pub const STATS_TTL: Duration = Duration::from_secs(1);

/// The engine's figures (or why they could not be read), kept for [`STATS_TTL`].
#[derive(Default)]
pub struct StatsCache {
    slot: tokio::sync::Mutex<Option<(Instant, Result<EngineStats, String>)>>,
}

impl StatsCache {
    /// The figures of at most [`STATS_TTL`] ago; a request finding them older computes them
    /// while the others wait for its answer.
    pub async fn get(&self, engine: &dyn Engine) -> Result<EngineStats, String> {
        let mut slot = self.slot.lock().await;
        if let Some((at, stats)) = slot.as_ref()
            && at.elapsed() < STATS_TTL
        {
            return stats.clone();
        }
        let stats = engine.stats().await.map_err(|e| e.to_string());
        *slot = Some((Instant::now(), stats.clone()));
        stats
    }
}

const STATUS_PAGE: &str = include_str!("../../../www/status.html");

pub fn router() -> Router<Arc<App>> {
    Router::new().route("/status", get(page)).route("/status.json", get(data))
}

async fn page() -> Html<&'static str> {
    Html(STATUS_PAGE)
}

/// The counters of `health/check` (behind the service key): this node's and the engine's, all
/// kept up to date as state changes, plus the content-token channels (bounded list). While the
/// engine cannot be reached (Redis down) it answers from this node's own figures, with
/// `engineError` saying why the cluster's are missing: a monitoring Drupal still sees the node.
pub async fn health(app: &App) -> Result<Value, ApiError> {
    let local = app.hub.stats();
    let cluster = match app.engine.stats().await {
        Ok(cluster) => cluster,
        Err(e) => {
            return Ok(json!({
                "authenticatedClients": local.sessions,
                "sockets": local.sockets,
                "preAuthSockets": local.pre_auth_sockets,
                "channels": local.channels,
                "tokenChannels": local.token_channels,
                "engineError": e.to_string(),
            }));
        }
    };
    let details = app.engine.token_channel_details().await.unwrap_or_default();
    let content_tokens: Map<String, Value> = details
        .into_iter()
        .map(|d| (d.channel, json!({"tokens": d.waiting, "sockets": d.sockets})))
        .collect();
    Ok(json!({
        "authenticatedClients": cluster.sessions,
        "sockets": local.sockets,
        "preAuthSockets": local.pre_auth_sockets,
        "onlineUsers": cluster.online_users,
        "channels": cluster.channels,
        "tokenChannels": cluster.token_channels,
        "cachedAuthTokens": cluster.cached_auth_tokens,
        "historyMessages": cluster.history_messages,
        "historyBytes": cluster.history_bytes,
        "nodes": cluster.nodes,
        "clusterSockets": if cluster.nodes > 1 { cluster.cluster_sockets } else { local.sockets },
        "contentTokens": content_tokens,
    }))
}

/// `GET /readyz`, for load balancers: 200 when this node can serve (its engine reaches the
/// shared state and it is not draining), else 503. No key needed; no secrets in the answer.
pub async fn ready(State(app): State<Arc<App>>) -> Response {
    let engine = app.engine.ready();
    let draining = app.admission.is_draining();
    let body = json!({"ready": engine && !draining, "engine": engine, "draining": draining});
    let status = if engine && !draining { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `/status.json`: counters only (no channel names, tokens or keys), each O(1) to read, the
/// engine's from the [`StatsCache`].
async fn data(State(app): State<Arc<App>>) -> Response {
    let s = app.hub.stats();
    let mut body = json!({
        "server": concat!("drupal-push ", env!("CARGO_PKG_VERSION")),
        "compatVersion": COMPAT_VERSION,
        "engine": format!("{:?}", app.config.engine).to_lowercase(),
        "engineReady": app.engine.ready(),
        "uptimeSecs": app.started.elapsed().as_secs(),
        "rssBytes": rss_bytes(),
        "sockets": s.sockets,
        "preAuthSockets": s.pre_auth_sockets,
        "clientAddresses": s.client_addresses,
        "topAddressConnections": s.top_address_connections,
        "topAddressShare": top_share(s.top_address_connections, s.sockets + s.pre_auth_sockets),
        "backendQueuedAuthentications": app.backend.queued(),
        "backendPendingNotices": app.backend.notices().pending(),
        "draining": app.admission.is_draining(),
        "publications": app.metrics.publication_total(),
        "deliveries": app.metrics.delivery_total(),
        "queuedBytes": app.metrics.queued_bytes.get(),
    });
    match app.status_stats.get(app.engine.as_ref()).await {
        Ok(e) => {
            body["nodes"] = json!(e.nodes);
            body["clusterSockets"] = json!(if e.nodes > 1 { e.cluster_sockets } else { s.sockets });
            body["authenticatedClients"] = json!(e.sessions);
            body["onlineUsers"] = json!(e.online_users);
            body["channels"] = json!(e.channels);
            body["tokenChannels"] = json!(e.token_channels);
            body["cachedAuthTokens"] = json!(e.cached_auth_tokens);
            body["historyMessages"] = json!(e.history_messages);
            body["historyBytes"] = json!(e.history_bytes);
        }
        Err(e) => body["engineError"] = json!(e),
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The busiest address's part of all connections, 0 to 1 in steps of 0.001 (0 without any).
fn top_share(top: usize, connections: usize) -> f64 {
    if connections == 0 {
        return 0.0;
    }
    (top as f64 * 1000.0 / connections as f64).round() / 1000.0
}

/// Resident memory of this process, from `/proc/self/statm` (Linux); 0 elsewhere.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found.").into_response()
}

/// `distDir` at `/dist/`, `staticDir` at `/`, and the original's plain `Not Found.` for the rest.
pub fn static_files(config: &Config) -> Router<Arc<App>> {
    let mut router = Router::new();
    if let Some(dist) = config.dist_dir() {
        router = router.nest_service("/dist", ServeDir::new(dist));
    }
    match config.static_dir() {
        Some(dir) => {
            router.fallback_service(ServeDir::new(dir).not_found_service(get(not_found).post(not_found)))
        }
        None => router.fallback(not_found),
    }
}
