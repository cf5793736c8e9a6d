//! The server's configuration: one validated [`Config`] built from defaults, a config file
//! (TOML, or the original server's `nodejs.config.js`), `DRUPAL_PUSH_*` environment variables and
//! command-line flags, in that order of precedence (later wins).
//!
//! Keys keep the original server's names (`serviceKey`, `backend.messagePath`, …) so that a
//! `nodejs.config.js` carries over unchanged; keys of our own are camelCase too. Every error
//! names the key it is about. Sources are merged as JSON trees in [`sources`]; the JS object
//! literal of `nodejs.config.js` is read by [`nodejs_js`].

mod lenient;
mod nodejs_js;
mod sources;
#[cfg(test)]
mod tests;

pub use sources::{Cli, FileFormat, LoadError, load, load_file_text};

use lenient::{lenient_f64, string_list};
use serde::{Deserialize, Deserializer};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `health/check` reports as `version`: Drupal 8+ publishes only to servers of the 1.x line
/// at or above 1.0.8 (spec 1.5), so we report the version of the original we replace.
pub const COMPAT_VERSION: &str = "1.0.13";

/// The listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

/// The `status` value `content/token` answers with: Drupal 8+ expects `success`, Drupal 7 `ok`
/// (spec 9.3). `auto` tells them apart on the request: Drupal 7's `drupal_http_request` sends
/// the JSON body with no `Content-Type` header at all, Drupal 8+ (Guzzle) sends
/// `application/json` (spec 1.1, 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentTokenStatus {
    Auto,
    Success,
    Ok,
}

impl ContentTokenStatus {
    /// The answer for a request that did (`true`) or did not carry a `Content-Type` header.
    pub fn answer(self, has_content_type: bool) -> &'static str {
        match self {
            ContentTokenStatus::Auto if !has_content_type => "ok",
            ContentTokenStatus::Auto | ContentTokenStatus::Success => "success",
            ContentTokenStatus::Ok => "ok",
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (coloured only on a terminal).
    Text,
    /// One JSON object per line, for journald, Loki, Elasticsearch and friends.
    Json,
}

/// Where the state shared by the nodes lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// This process only (one node).
    Memory,
    /// One Redis shared by several nodes (`redis.*`).
    Redis,
}

/// The Redis of `engine = "redis"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]` or `rediss://` for TLS.
    #[serde(deserialize_with = "lenient_string")]
    pub url: String,
    /// Prefix of every key and channel, so that several deployments can share one Redis.
    #[serde(deserialize_with = "lenient_string")]
    pub prefix: String,
    /// A node whose heartbeat is older than this is dead: its sockets leave, ms.
    pub node_timeout_ms: u64,
}

/// Where Drupal's `/nodejs/message` callback lives and how to call it (spec 2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendConfig {
    pub scheme: Scheme,
    #[serde(deserialize_with = "lenient_string")]
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "lenient_string")]
    pub base_path: String,
    #[serde(deserialize_with = "lenient_string")]
    pub message_path: String,
    /// Verify the backend's TLS certificate (the original defaulted to false: spec 7.18).
    #[serde(rename = "strictSSL")]
    pub strict_ssl: bool,
    /// `user:password` for HTTP basic auth, empty for none.
    #[serde(deserialize_with = "lenient_string")]
    pub http_auth: String,
    /// Timeout of one backend request, in milliseconds.
    pub timeout_ms: u64,
    /// Backend requests in flight at most; more wait their turn.
    pub concurrency: usize,
    /// `authenticate` calls waiting for a free request slot at most; one more is refused at once
    /// (close 4100, the client backs off). 0: refuse whenever every slot is busy.
    pub queue_length: usize,
    /// The part of `queue_length` one client address may hold waiting (0 < share <= 1); one
    /// more from that address is refused at once (close 4100).
    #[serde(deserialize_with = "lenient_f64")]
    pub queue_share_per_address: f64,
    /// Browser messages (`clientMessages`) in flight to Drupal at most, in request slots of
    /// their own beside `concurrency`, so that they never delay an authentication.
    pub message_concurrency: usize,
    /// Browser messages waiting for one of their slots at most; one more is refused at once
    /// (`backend-unavailable`). 0: refuse whenever every slot is busy.
    pub message_queue_length: usize,
}

impl BackendConfig {
    /// Waiting authentications one client address may hold: its share of the queue, at least 1.
    pub fn queue_share(&self) -> usize {
        ((self.queue_length as f64 * self.queue_share_per_address).ceil() as usize).max(1)
    }
}

/// All settings. Field docs say what each key does; defaults are in `sources::defaults()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub scheme: Scheme,
    /// Listen address; `""` listens on all addresses, `localhost` on the loopback.
    #[serde(deserialize_with = "lenient_string")]
    pub host: String,
    pub port: u16,
    /// Shared secret Drupal sends in the `NodejsServiceKey` header.
    #[serde(deserialize_with = "lenient_string")]
    pub service_key: String,
    /// Allow an empty service key (an open API): for development only.
    pub allow_empty_service_key: bool,
    pub debug: bool,
    /// Largest accepted request body, bytes or `"1mb"`-style.
    #[serde(deserialize_with = "byte_size")]
    pub body_parser_json_limit: usize,
    /// Prefix of the backend API. Drupal hard-codes `/nodejs/`.
    #[serde(deserialize_with = "lenient_string")]
    pub base_auth_path: String,
    /// Path of the WebSocket endpoint.
    #[serde(deserialize_with = "lenient_string")]
    pub ws_path: String,
    /// Where the browser client is served: `{resource}/socket.io.js` (the `io` facade the
    /// module's own nodejs.js loads, from the module's `resource` setting), and beside it the
    /// rest of the client (`drupal-push.js`, glue, wasm). The original's key of that name.
    #[serde(deserialize_with = "lenient_string")]
    pub resource: String,
    #[serde(deserialize_with = "lenient_string")]
    pub ssl_key_path: String,
    #[serde(deserialize_with = "lenient_string")]
    pub ssl_cert_path: String,
    #[serde(rename = "sslCAPath", deserialize_with = "lenient_string")]
    pub ssl_ca_path: String,
    pub backend: BackendConfig,
    /// `memory` (one node) or `redis` (several nodes sharing `redis.url`).
    pub engine: EngineKind,
    pub redis: RedisConfig,
    pub content_token_status: ContentTokenStatus,
    /// Time a socket has to send `authenticate`, ms.
    pub auth_timeout_ms: u64,
    /// The server pings a socket it has sent nothing to for this long, ms.
    pub heartbeat_interval_ms: u64,
    /// The server closes a socket it has heard nothing from for this long, ms.
    pub heartbeat_timeout_ms: u64,
    /// Delay before a user whose last socket closed is reported offline, ms (original: 2000).
    pub presence_grace_ms: u64,
    /// How long Drupal's answer for an auth token is reused without asking again, seconds.
    pub auth_cache_ttl_secs: u64,
    /// Most auth tokens remembered at once.
    pub auth_cache_max: usize,
    /// How long an auth token Drupal refused is refused again without asking Drupal, seconds
    /// (0: off). Per node.
    pub auth_reject_cache_secs: u64,
    /// Most refused auth tokens remembered at once.
    pub auth_reject_cache_max: usize,
    /// An unused content token expires after this many seconds (and a used one that long after
    /// its last member left).
    pub content_token_ttl_secs: u64,
    /// Messages kept per stream for recovery after a reconnect (0: no history).
    pub history_size: usize,
    /// How long a message is kept for recovery, and a stream's state after its last use, s.
    pub history_ttl_secs: u64,
    /// History of all streams together at most this many bytes; the oldest messages go first.
    #[serde(deserialize_with = "byte_size")]
    pub history_max_bytes: usize,
    /// Largest frame a client may send, bytes.
    #[serde(deserialize_with = "byte_size")]
    pub max_frame_size: usize,
    /// Frames queued for one socket before it counts as a slow consumer.
    pub max_queued_messages: usize,
    /// Bytes queued for one socket before it counts as a slow consumer.
    #[serde(deserialize_with = "byte_size")]
    pub max_queued_bytes: usize,
    /// A write to a socket that does not complete in this time closes it as a slow consumer, ms.
    pub write_timeout_ms: u64,
    /// WebSocket read buffer per connection, bytes (small keeps idle connections cheap).
    #[serde(deserialize_with = "byte_size")]
    pub ws_read_buffer_size: usize,
    /// Time a client has to send a request's headers (from the connection's opening, or the
    /// end of the previous response), and then its body, ms.
    pub http_header_timeout_ms: u64,
    /// A kept-alive HTTP connection with no request for this long after a response is closed, ms.
    pub http_idle_timeout_ms: u64,
    /// HTTP connections that are not WebSockets (yet) open at most; one more is closed at once
    /// (0: no limit).
    pub max_http_connections: usize,
    /// The same from one peer address, trusted proxies excepted (0: no limit).
    pub max_http_connections_per_address: usize,
    /// Connections held at most (0: no limit).
    pub max_connections: usize,
    /// Connections from one IP address at most (0: no limit; behind a proxy all share one).
    pub max_connections_per_address: usize,
    /// Page origins allowed to open a WebSocket (`https://www.example.com`, `https://*.example.com`,
    /// `http://localhost:*`, `*`). Empty: every origin, with a start-up warning.
    #[serde(deserialize_with = "string_list")]
    pub allowed_origins: Vec<String>,
    /// Addresses or CIDR ranges of reverse proxies whose `X-Forwarded-For` names the client.
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    /// New WebSocket connections per second one client address may open (0: no limit).
    #[serde(deserialize_with = "lenient_f64")]
    pub connection_rate_per_address: f64,
    /// How many connections one address may open at once before the rate applies.
    pub connection_burst_per_address: u32,
    /// Authentications per second one client address may send to Drupal (0: no limit).
    #[serde(deserialize_with = "lenient_f64")]
    pub auth_rate_per_address: f64,
    /// How many authentications one address may send at once before the rate applies.
    pub auth_burst_per_address: u32,
    /// Content-token channel joins per second one socket may ask for, `join-token-channel`
    /// frames and the `contentTokens` of its `authenticate` together (0: no limit).
    #[serde(deserialize_with = "lenient_f64")]
    pub token_join_rate_per_socket: f64,
    /// How many content-token channel joins one socket may ask for at once before the rate
    /// applies.
    pub token_join_burst_per_socket: u32,
    /// Message types a browser may send to Drupal's `/nodejs/message` (`["*"]`: any type but the
    /// reserved `authenticate`, `userOnline`, `userOffline`). Empty: none (the default).
    #[serde(deserialize_with = "string_list")]
    pub client_messages: Vec<String>,
    /// Channels whose members may publish to each other, as patterns (`chat_*`, `*` matches any
    /// run of characters). Empty: none (the default).
    #[serde(deserialize_with = "string_list")]
    pub client_writable_channels: Vec<String>,
    /// Page callbacks (`Drupal.Nodejs.callbacks` names) a publish to a client-writable channel
    /// may name in its `callback` member. Empty: none (the default); a publish without one
    /// reaches the members' channel listeners and no callback.
    #[serde(deserialize_with = "string_list")]
    pub client_publish_callbacks: Vec<String>,
    /// Requests (`message`, `publish`) per second one socket may send (0: no limit).
    #[serde(deserialize_with = "lenient_f64")]
    pub client_request_rate_per_socket: f64,
    /// How many requests one socket may send at once before the rate applies.
    pub client_request_burst_per_socket: u32,
    /// Largest request frame (`message`, `publish`) a socket may send, bytes; over it the request
    /// is refused (`message-too-large`). `maxFrameSize` still applies first (close 1009).
    #[serde(deserialize_with = "byte_size")]
    pub client_request_max_bytes: usize,
    /// On SIGTERM, close the WebSockets with 1001 spread over this many milliseconds.
    pub drain_window_ms: u64,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// Serve this directory at `/` (a demo or test page). Empty: serve nothing.
    #[serde(deserialize_with = "lenient_string")]
    pub static_dir: String,
    /// Serve this directory at `/dist/` (the built wasm client and shim). Empty: serve nothing.
    #[serde(deserialize_with = "lenient_string")]
    pub dist_dir: String,
    /// Serve `/status` (page) and `/status.json` (counters only, no secrets) without a key.
    pub public_status: bool,
    /// Bearer token Prometheus sends to `/metrics` (`Authorization: Bearer …`). Empty: no
    /// `/metrics`. Kept apart from the service key, which can publish and kick.
    #[serde(deserialize_with = "lenient_string")]
    pub metrics_token: String,
    /// Demo mode: built-in demo Drupal backend and demo routes, loopback only.
    pub demo: bool,
    /// Original server keys that have no effect here; accepted so old files load.
    #[serde(default)]
    pub extensions: Vec<String>,
}

impl Config {
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }
    pub fn presence_grace(&self) -> Duration {
        Duration::from_millis(self.presence_grace_ms)
    }
    pub fn history(&self) -> crate::engine::HistorySettings {
        crate::engine::HistorySettings {
            size: self.history_size,
            ttl: Duration::from_secs(self.history_ttl_secs),
            max_bytes: self.history_max_bytes,
        }
    }
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
    pub fn drain_window(&self) -> Duration {
        Duration::from_millis(self.drain_window_ms)
    }
    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_timeout_ms)
    }
    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.http_idle_timeout_ms)
    }

    /// The address to bind: `localhost` means the IPv4 loopback, `""` every address.
    pub fn bind_addr(&self) -> Result<std::net::SocketAddr, String> {
        let ip: IpAddr = match self.host.as_str() {
            "" | "0.0.0.0" => IpAddr::from([0, 0, 0, 0]),
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other.parse().map_err(|_| {
                format!("host: {other:?} is not an IP address (use an address, \"localhost\" or \"\")")
            })?,
        };
        Ok(std::net::SocketAddr::new(ip, self.port))
    }

    /// The URL of Drupal's message callback.
    pub fn backend_url(&self) -> String {
        let b = &self.backend;
        let scheme = match b.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let mut path = format!("{}{}", b.base_path, b.message_path);
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        format!("{scheme}://{}:{}{}", b.host, b.port, path)
    }

    /// Checks the values serde cannot: ranges, relations, files. Errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        self.bind_addr()?;
        if self.service_key.is_empty() && !self.allow_empty_service_key && !self.demo {
            return Err("serviceKey: is empty, which would let anyone publish; set it (the same value \
                as Drupal's \"Node.js server service key\"), or pass --allow-empty-service-key for development"
                .into());
        }
        if !self.base_auth_path.starts_with('/')
            || !self.base_auth_path.ends_with('/')
            || self.base_auth_path.len() < 2
        {
            return Err(format!(
                "baseAuthPath: {:?} must start and end with '/', like \"/nodejs/\"",
                self.base_auth_path
            ));
        }
        if !self.ws_path.starts_with('/') || self.ws_path.len() < 2 || self.ws_path.ends_with('/') {
            return Err(format!(
                "wsPath: {:?} must start with '/' and not end with one, like \"/ws\"",
                self.ws_path
            ));
        }
        if !self.resource.starts_with('/') || self.resource.len() < 2 || self.resource.ends_with('/') {
            return Err(format!(
                "resource: {:?} must start with '/' and not end with one, like \"/socket.io\"",
                self.resource
            ));
        }
        if format!("{}/", self.resource).starts_with(&self.base_auth_path) {
            return Err(format!(
                "resource: {:?} lies under baseAuthPath {:?}, which needs the service key",
                self.resource, self.base_auth_path
            ));
        }
        if self.resource == self.ws_path {
            return Err(format!("resource: {:?} is also wsPath; give them different paths", self.resource));
        }
        if format!("{}/", self.ws_path).starts_with(&self.base_auth_path) {
            return Err(format!(
                "wsPath: {:?} lies under baseAuthPath {:?}, which needs the service key",
                self.ws_path, self.base_auth_path
            ));
        }
        if self.backend.host.is_empty() {
            return Err("backend.host: is empty".into());
        }
        if self.backend.port == 0 {
            return Err("backend.port: must be between 1 and 65535".into());
        }
        if !self.backend.http_auth.is_empty() && !self.backend.http_auth.contains(':') {
            return Err("backend.httpAuth: must be \"user:password\"".into());
        }
        let positive = [
            ("backend.timeoutMs", self.backend.timeout_ms),
            ("backend.concurrency", self.backend.concurrency as u64),
            ("backend.messageConcurrency", self.backend.message_concurrency as u64),
            ("authTimeoutMs", self.auth_timeout_ms),
            ("heartbeatIntervalMs", self.heartbeat_interval_ms),
            ("writeTimeoutMs", self.write_timeout_ms),
            ("authCacheMax", self.auth_cache_max as u64),
            ("maxQueuedMessages", self.max_queued_messages as u64),
            ("bodyParserJsonLimit", self.body_parser_json_limit as u64),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{key}: must be greater than 0"));
        }
        let share = self.backend.queue_share_per_address;
        if !share.is_finite() || share <= 0.0 || share > 1.0 {
            return Err(format!(
                "backend.queueSharePerAddress: {share} must be a fraction of backend.queueLength above 0 \
                 and at most 1 (1: no share per address)"
            ));
        }
        if self.auth_reject_cache_secs > MAX_AUTH_REJECT_CACHE_SECS {
            return Err(format!(
                "authRejectCacheSecs: {} is over an hour; a session Drupal had not saved yet when it was \
                 asked would stay refused that long",
                self.auth_reject_cache_secs
            ));
        }
        if self.auth_reject_cache_secs > 0 && self.auth_reject_cache_max == 0 {
            return Err("authRejectCacheMax: must be at least 1 when authRejectCacheSecs is set".into());
        }
        if self.engine == EngineKind::Redis {
            let url = &self.redis.url;
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(format!(
                    "redis.url: {:?} must start with redis:// or rediss://",
                    crate::ids::redact_url(url)
                ));
            }
            if self.redis.prefix.is_empty() || self.redis.prefix.contains(char::is_whitespace) {
                return Err("redis.prefix: must be a non-empty word".into());
            }
            if self.redis.node_timeout_ms < 1000 {
                return Err("redis.nodeTimeoutMs: must be at least 1000".into());
            }
        }
        if self.history_size > 0 && self.history_ttl_secs == 0 {
            return Err("historyTtlSecs: must be greater than 0 while historySize is not 0".into());
        }
        if self.history_size > 100_000 {
            return Err(format!(
                "historySize: {} is more than the 100000 messages a stream may keep",
                self.history_size
            ));
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return Err(format!(
                "heartbeatTimeoutMs: {} must be greater than heartbeatIntervalMs ({})",
                self.heartbeat_timeout_ms, self.heartbeat_interval_ms
            ));
        }
        if self.max_frame_size < 1024 {
            return Err(format!(
                "maxFrameSize: {} is below the 1024 bytes an authenticate frame may need",
                self.max_frame_size
            ));
        }
        if self.max_queued_bytes < self.max_frame_size {
            return Err("maxQueuedBytes: must be at least maxFrameSize".into());
        }
        if self.ws_read_buffer_size < 256 {
            return Err("wsReadBufferSize: must be at least 256 bytes".into());
        }
        self.validate_admission()?;
        self.validate_http()?;
        crate::conn::client_requests::Policy::new(self)?;
        validate_metrics_token(&self.metrics_token)?;
        if self.scheme == Scheme::Https {
            for (key, path) in [("sslKeyPath", &self.ssl_key_path), ("sslCertPath", &self.ssl_cert_path)] {
                if path.is_empty() {
                    return Err(format!("{key}: is required when scheme is \"https\""));
                }
                if !std::path::Path::new(path).is_file() {
                    return Err(format!("{key}: {path:?} is not a readable file"));
                }
            }
        }
        for (key, dir) in [("staticDir", &self.static_dir), ("distDir", &self.dist_dir)] {
            if !dir.is_empty() && !std::path::Path::new(dir).is_dir() {
                return Err(format!("{key}: {dir:?} is not a directory"));
            }
        }
        Ok(())
    }

    /// The origin, proxy, rate-limit and drain settings.
    fn validate_admission(&self) -> Result<(), String> {
        crate::edge::origin::Origins::parse(&self.allowed_origins)?;
        crate::edge::proxy::TrustedProxies::parse(&self.trusted_proxies)?;
        let limits = [
            (
                "connectionRatePerAddress",
                self.connection_rate_per_address,
                "connectionBurstPerAddress",
                self.connection_burst_per_address,
            ),
            (
                "authRatePerAddress",
                self.auth_rate_per_address,
                "authBurstPerAddress",
                self.auth_burst_per_address,
            ),
            (
                "tokenJoinRatePerSocket",
                self.token_join_rate_per_socket,
                "tokenJoinBurstPerSocket",
                self.token_join_burst_per_socket,
            ),
        ];
        for (rate_key, rate, burst_key, burst) in limits {
            if !rate.is_finite() || rate < 0.0 {
                return Err(format!("{rate_key}: {rate} must be a number of at least 0 (0: no limit)"));
            }
            if rate > 0.0 && burst == 0 {
                return Err(format!("{burst_key}: must be at least 1 when {rate_key} is set"));
            }
        }
        if self.drain_window_ms > MAX_DRAIN_WINDOW_MS {
            return Err(format!(
                "drainWindowMs: {} is over 10 minutes; a service manager kills the process long before \
                 (systemd waits 90 s by default)",
                self.drain_window_ms
            ));
        }
        Ok(())
    }

    /// The HTTP connection timeouts and caps.
    fn validate_http(&self) -> Result<(), String> {
        for (key, ms) in [
            ("httpHeaderTimeoutMs", self.http_header_timeout_ms),
            ("httpIdleTimeoutMs", self.http_idle_timeout_ms),
        ] {
            if !(MIN_HTTP_TIMEOUT_MS..=MAX_HTTP_TIMEOUT_MS).contains(&ms) {
                return Err(format!(
                    "{key}: {ms} must be between {MIN_HTTP_TIMEOUT_MS} and {MAX_HTTP_TIMEOUT_MS} ms"
                ));
            }
        }
        let (all, one) = (self.max_http_connections, self.max_http_connections_per_address);
        if all > 0 && one > all {
            return Err(format!(
                "maxHttpConnectionsPerAddress: {one} is more than maxHttpConnections ({all}); \
                 lower it (0: no limit per address)"
            ));
        }
        Ok(())
    }

    pub fn static_dir(&self) -> Option<PathBuf> {
        (!self.static_dir.is_empty()).then(|| PathBuf::from(&self.static_dir))
    }

    pub fn dist_dir(&self) -> Option<PathBuf> {
        (!self.dist_dir.is_empty()).then(|| PathBuf::from(&self.dist_dir))
    }
}

/// A `metricsToken` travels in an `Authorization` header: visible ASCII, and long enough not to
/// be guessed.
fn validate_metrics_token(token: &str) -> Result<(), String> {
    if token.is_empty() {
        return Ok(());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "metricsToken: must be printable ASCII without spaces (it is sent as a bearer token)".into()
        );
    }
    if token.len() < 16 {
        return Err(format!(
            "metricsToken: {} characters is too short to keep /metrics private; use at least 16 \
             (e.g. `openssl rand -hex 24`)",
            token.len()
        ));
    }
    Ok(())
}

/// Shortest and longest `httpHeaderTimeoutMs` and `httpIdleTimeoutMs`: less would cut off
/// ordinary requests, more is no timeout.
const MIN_HTTP_TIMEOUT_MS: u64 = 100;
const MAX_HTTP_TIMEOUT_MS: u64 = 3_600_000;
/// Longest accepted `authRejectCacheSecs`.
const MAX_AUTH_REJECT_CACHE_SECS: u64 = 3600;

/// Longest accepted `drainWindowMs`.
const MAX_DRAIN_WINDOW_MS: u64 = 600_000;

/// Accepts a string, or a number/bool written where a string was meant (env vars, CLI).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(serde::de::Error::custom(format!("expected a string, found {other}"))),
    }
}

/// Accepts a number of bytes or a string like `"1mb"`, `"512kb"`, `"100b"` (body-parser style).
fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    use serde_json::Value;
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a byte count"))),
        Value::String(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!(
            "expected a byte count like 1048576 or \"1mb\", found {other}"
        ))),
    }
}

pub(crate) fn parse_byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a byte count like \"1mb\""))?;
    let mult = match unit.trim() {
        "" | "b" => 1.0,
        "kb" | "k" => 1024.0,
        "mb" | "m" => 1024.0 * 1024.0,
        "gb" | "g" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use b, kb, mb or gb)")),
    };
    Ok((n * mult) as usize)
}
