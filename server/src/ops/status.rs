//! The public status page (`/status`, the page in `www/status.html` built into the binary) and
//! its data (`/status.json`: counters only, no channel names, tokens, keys or addresses), plus
//! the static file service for `staticDir` and `distDir`. The figures themselves are read and
//! named in [`crate::ops::figures`], shared with `health/check` and `/metrics`. Among the counters: the distinct
//! client addresses of this node's connections and the busiest address's share of them, so that
//! one address holding most connections (a reverse proxy missing from `trustedProxies`) shows
//! at a glance.
//!
//! `/status.json` needs no key, so the engine's figures in it (several round trips on Redis)
//! are computed at most once per [`STATS_TTL`] ([`StatsCache`]), one computation shared by the
//! requests that arrive meanwhile: a flood of requests costs Redis nothing more. This node's own
//! figures are read fresh every time.

use crate::App;
use crate::config::settings::Listen;
use crate::engine::{Engine, EngineStats};
use crate::ops::figures::Figures;
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

/// The counters of `health/check` (behind the service key), from a fresh [`Figures`] snapshot,
/// plus the content-token channels (bounded list).
pub async fn health(app: &App) -> Value {
    let figures = Figures::fresh(app).await;
    let mut body = figures.health_json();
    if figures.cluster.is_ok() {
        let details = app.engine.token_channel_details().await.unwrap_or_default();
        let content_tokens: Map<String, Value> = details
            .into_iter()
            .map(|d| (d.channel, json!({"tokens": d.waiting, "sockets": d.sockets})))
            .collect();
        body["contentTokens"] = Value::Object(content_tokens);
    }
    body
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
    let cluster = app.status_stats.get(app.engine.as_ref()).await;
    let body = Figures::read(&app, cluster).status_json();
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found.").into_response()
}

/// `distDir` at `/dist/`, `staticDir` at `/`, and the original's plain `Not Found.` for the rest.
pub fn static_files(config: &Listen) -> Router<Arc<App>> {
    let mut router = Router::new();
    if let Some(dist) = &config.dist_dir {
        router = router.nest_service("/dist", ServeDir::new(dist));
    }
    match &config.static_dir {
        Some(dir) => {
            router.fallback_service(ServeDir::new(dir).not_found_service(get(not_found).post(not_found)))
        }
        None => router.fallback(not_found),
    }
}
