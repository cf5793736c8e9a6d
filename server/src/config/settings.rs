//! The typed settings: what [`Config`] becomes once it is checked, one part for each part of
//! the server, with `Duration`s for the `…Ms`/`…Secs` keys and the parsed origins, proxies and
//! client-request policy inside. Each part of the server takes its own part and nothing else;
//! the parts that have settings of their own define them ([`EdgeSettings`], [`ConnSettings`],
//! [`HttpSettings`], [`BackendSettings`], the engine's); those that are only a few keys are
//! defined here ([`Listen`], [`ApiSettings`], [`OpsSettings`]).
//!
//! [`Settings::parse`] (in `parse.rs`) is the one place that checks and converts.

use super::{ContentTokenStatus, EngineKind, LogFormat, Scheme};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::conn::ConnSettings;
pub use crate::conn::client_requests::{Policy, PolicyRules};
pub use crate::drupal::backend::BackendSettings;
pub use crate::edge::admission::EdgeSettings;
pub use crate::edge::origin::Origins;
pub use crate::edge::proxy::TrustedProxies;
pub use crate::engine::{HistorySettings, MemorySettings, RedisSettings};
pub use crate::http::http_conns::HttpSettings;
pub use crate::http::tls::TlsFiles;
pub use crate::hub::ConnLimits;

/// Every setting, checked and typed, in parts.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: Listen,
    /// HTTP connection timeouts and caps.
    pub http: HttpSettings,
    /// Drupal's REST API under `baseAuthPath`.
    pub api: ApiSettings,
    /// Origins, trusted proxies and the per-address rates of the upgrade and authentication.
    pub edge: EdgeSettings,
    /// Drupal's `/nodejs/message`.
    pub backend: BackendSettings,
    pub engine: EngineSettings,
    /// `maxConnections`, `maxConnectionsPerAddress`.
    pub hub: ConnLimits,
    /// One WebSocket connection: timeouts, frame and outbox limits, client requests.
    pub conn: ConnSettings,
    pub ops: OpsSettings,
}

/// Where and how the server listens, and what it serves besides the API.
#[derive(Debug, Clone)]
pub struct Listen {
    pub scheme: Scheme,
    /// `host` as written (`""`, `localhost`, an address).
    pub host: String,
    pub port: u16,
    /// The address to bind: `localhost` means the IPv4 loopback, `""` every address.
    pub addr: SocketAddr,
    /// `sslKeyPath`, `sslCertPath`, `sslCAPath` (read when `scheme` is `https`).
    pub tls: TlsFiles,
    /// `wsPath`.
    pub ws_path: String,
    /// `resource`: where the browser client is served.
    pub resource: String,
    /// `staticDir`, served at `/`.
    pub static_dir: Option<PathBuf>,
    /// `distDir`, served at `/dist/`.
    pub dist_dir: Option<PathBuf>,
}

/// Drupal's REST API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `serviceKey`: empty only when allowed (`allowEmptyServiceKey`, demo).
    pub service_key: String,
    /// `baseAuthPath`, like `/nodejs/`.
    pub base_auth_path: String,
    /// `bodyParserJsonLimit`, bytes.
    pub body_limit: usize,
    pub content_token_status: ContentTokenStatus,
}

/// Where the state shared by the nodes lives, with that engine's settings.
#[derive(Debug, Clone)]
pub enum EngineSettings {
    Memory(MemorySettings),
    Redis(RedisSettings),
}

impl EngineSettings {
    pub fn kind(&self) -> EngineKind {
        match self {
            EngineSettings::Memory(_) => EngineKind::Memory,
            EngineSettings::Redis(_) => EngineKind::Redis,
        }
    }
}

/// Operations: logging, status, metrics, the drain, demo mode.
#[derive(Debug, Clone)]
pub struct OpsSettings {
    pub log_format: LogFormat,
    pub debug: bool,
    /// `publicStatus`.
    pub public_status: bool,
    /// `metricsToken`; empty: no `/metrics`.
    pub metrics_token: String,
    /// `drainWindowMs`.
    pub drain_window: Duration,
    pub demo: bool,
}
