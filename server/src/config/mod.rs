//! The server's configuration: the flat [`Config`] of every key, built from defaults, a config
//! file (TOML, or the original server's `nodejs.config.js`), `DRUPAL_PUSH_*` environment
//! variables and command-line flags, in that order of precedence (later wins), then checked and
//! turned once into the typed [`Settings`] ([`settings`]), a part for each part of the server.
//!
//! Keys keep the original server's names (`serviceKey`, `backend.messagePath`, …) so that a
//! `nodejs.config.js` carries over unchanged; keys of our own are camelCase too. Every error
//! names the key it is about. Sources are merged as JSON trees in [`sources`]; the JS object
//! literal of `nodejs.config.js` is read by [`nodejs_js`].

mod lenient;
mod nodejs_js;
mod parse;
pub mod settings;
mod sources;
#[cfg(test)]
mod tests;

pub use crate::error::ConfigError;
pub use settings::Settings;
pub use sources::{Cli, FileFormat, LoadError, load, load_config, load_file_text};

use lenient::{lenient_f64, string_list};
use serde::{Deserialize, Deserializer};

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

/// All keys, as written (flat: serde's `deny_unknown_fields` does not combine with `flatten`).
/// Field docs say what each key does; defaults are in `sources::defaults()`; [`Settings::parse`]
/// checks them.
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
