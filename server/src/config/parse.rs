//! [`Settings::parse`]: checks what serde cannot (ranges, relations between keys, files) and
//! turns the flat [`Config`] into the typed [`Settings`], once. Every error names its key; the
//! first error found is the one reported.

use super::settings::*;
use super::{Config, EngineKind, Scheme};
use crate::error::ConfigError;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Shortest and longest `httpHeaderTimeoutMs` and `httpIdleTimeoutMs`: less would cut off
/// ordinary requests, more is no timeout.
const MIN_HTTP_TIMEOUT_MS: u64 = 100;
const MAX_HTTP_TIMEOUT_MS: u64 = 3_600_000;
/// Longest accepted `authRejectCacheSecs`.
const MAX_AUTH_REJECT_CACHE_SECS: u64 = 3600;

/// Longest accepted `drainWindowMs`.
const MAX_DRAIN_WINDOW_MS: u64 = 600_000;

fn err<T>(key: &str, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(key, message))
}

impl Settings {
    /// Checks `config` and builds the settings of every part from it.
    pub fn parse(config: &Config) -> Result<Settings, ConfigError> {
        let c = config;
        let addr = bind_addr(&c.host, c.port)?;
        if c.service_key.is_empty() && !c.allow_empty_service_key && !c.demo {
            return err(
                "serviceKey",
                "is empty, which would let anyone publish; set it (the same value \
                as Drupal's \"Node.js server service key\"), or pass --allow-empty-service-key for \
                development",
            );
        }
        check_paths(c)?;
        check_backend(c)?;
        let positive = [
            ("backend.timeoutMs", c.backend.timeout_ms),
            ("backend.concurrency", c.backend.concurrency as u64),
            ("backend.messageConcurrency", c.backend.message_concurrency as u64),
            ("authTimeoutMs", c.auth_timeout_ms),
            ("heartbeatIntervalMs", c.heartbeat_interval_ms),
            ("writeTimeoutMs", c.write_timeout_ms),
            ("authCacheMax", c.auth_cache_max as u64),
            ("maxQueuedMessages", c.max_queued_messages as u64),
            ("bodyParserJsonLimit", c.body_parser_json_limit as u64),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return err(key, "must be greater than 0");
        }
        let share = c.backend.queue_share_per_address;
        if !share.is_finite() || share <= 0.0 || share > 1.0 {
            return err(
                "backend.queueSharePerAddress",
                format!(
                    "{share} must be a fraction of backend.queueLength above 0 \
                 and at most 1 (1: no share per address)"
                ),
            );
        }
        if c.auth_reject_cache_secs > MAX_AUTH_REJECT_CACHE_SECS {
            return err(
                "authRejectCacheSecs",
                format!(
                    "{} is over an hour; a session Drupal had not saved yet when it was \
                 asked would stay refused that long",
                    c.auth_reject_cache_secs
                ),
            );
        }
        if c.auth_reject_cache_secs > 0 && c.auth_reject_cache_max == 0 {
            return err("authRejectCacheMax", "must be at least 1 when authRejectCacheSecs is set");
        }
        let engine = engine(c)?;
        check_conn(c)?;
        let edge = edge(c)?;
        let http = http(c)?;
        let requests = Policy::new(&PolicyRules {
            messages: &c.client_messages,
            writable_channels: &c.client_writable_channels,
            publish_callbacks: &c.client_publish_callbacks,
            rate_per_socket: c.client_request_rate_per_socket,
            burst_per_socket: c.client_request_burst_per_socket,
            max_bytes: c.client_request_max_bytes,
        })?;
        check_metrics_token(&c.metrics_token)?;
        if c.scheme == Scheme::Https {
            for (key, path) in [("sslKeyPath", &c.ssl_key_path), ("sslCertPath", &c.ssl_cert_path)] {
                if path.is_empty() {
                    return err(key, "is required when scheme is \"https\"");
                }
                if !std::path::Path::new(path).is_file() {
                    return err(key, format!("{path:?} is not a readable file"));
                }
            }
        }
        for (key, dir) in [("staticDir", &c.static_dir), ("distDir", &c.dist_dir)] {
            if !dir.is_empty() && !std::path::Path::new(dir).is_dir() {
                return err(key, format!("{dir:?} is not a directory"));
            }
        }
        let dir = |d: &String| (!d.is_empty()).then(|| PathBuf::from(d));
        Ok(Settings {
            listen: Listen {
                scheme: c.scheme,
                host: c.host.clone(),
                port: c.port,
                addr,
                tls: TlsFiles {
                    key_path: c.ssl_key_path.clone(),
                    cert_path: c.ssl_cert_path.clone(),
                    ca_path: c.ssl_ca_path.clone(),
                },
                ws_path: c.ws_path.clone(),
                resource: c.resource.clone(),
                static_dir: dir(&c.static_dir),
                dist_dir: dir(&c.dist_dir),
            },
            http,
            api: ApiSettings {
                service_key: c.service_key.clone(),
                base_auth_path: c.base_auth_path.clone(),
                body_limit: c.body_parser_json_limit,
                content_token_status: c.content_token_status,
            },
            edge,
            backend: backend(c),
            engine,
            hub: ConnLimits {
                max_connections: c.max_connections,
                max_per_address: c.max_connections_per_address,
            },
            conn: ConnSettings {
                auth_timeout: Duration::from_millis(c.auth_timeout_ms),
                heartbeat_interval: Duration::from_millis(c.heartbeat_interval_ms),
                heartbeat_timeout: Duration::from_millis(c.heartbeat_timeout_ms),
                write_timeout: Duration::from_millis(c.write_timeout_ms),
                max_frame_size: c.max_frame_size,
                ws_read_buffer_size: c.ws_read_buffer_size,
                token_join_rate: c.token_join_rate_per_socket,
                token_join_burst: c.token_join_burst_per_socket,
                outbox: crate::conn::outbox::Limits {
                    max_frames: c.max_queued_messages,
                    max_bytes: c.max_queued_bytes,
                },
                requests,
            },
            ops: OpsSettings {
                log_format: c.log_format,
                debug: c.debug,
                public_status: c.public_status,
                metrics_token: c.metrics_token.clone(),
                drain_window: Duration::from_millis(c.drain_window_ms),
                demo: c.demo,
            },
        })
    }
}

/// The address to bind: `localhost` means the IPv4 loopback, `""` every address.
fn bind_addr(host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let ip: IpAddr = match host {
        "" | "0.0.0.0" => IpAddr::from([0, 0, 0, 0]),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other.parse().map_err(|_| {
            ConfigError::new(
                "host",
                format!("{other:?} is not an IP address (use an address, \"localhost\" or \"\")"),
            )
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// `baseAuthPath`, `wsPath` and `resource`: their form, and that they stay apart.
fn check_paths(c: &Config) -> Result<(), ConfigError> {
    if !c.base_auth_path.starts_with('/') || !c.base_auth_path.ends_with('/') || c.base_auth_path.len() < 2 {
        return err(
            "baseAuthPath",
            format!("{:?} must start and end with '/', like \"/nodejs/\"", c.base_auth_path),
        );
    }
    if !c.ws_path.starts_with('/') || c.ws_path.len() < 2 || c.ws_path.ends_with('/') {
        return err(
            "wsPath",
            format!("{:?} must start with '/' and not end with one, like \"/ws\"", c.ws_path),
        );
    }
    if !c.resource.starts_with('/') || c.resource.len() < 2 || c.resource.ends_with('/') {
        return err(
            "resource",
            format!("{:?} must start with '/' and not end with one, like \"/socket.io\"", c.resource),
        );
    }
    if format!("{}/", c.resource).starts_with(&c.base_auth_path) {
        return err(
            "resource",
            format!(
                "{:?} lies under baseAuthPath {:?}, which needs the service key",
                c.resource, c.base_auth_path
            ),
        );
    }
    if c.resource == c.ws_path {
        return err("resource", format!("{:?} is also wsPath; give them different paths", c.resource));
    }
    if format!("{}/", c.ws_path).starts_with(&c.base_auth_path) {
        return err(
            "wsPath",
            format!(
                "{:?} lies under baseAuthPath {:?}, which needs the service key",
                c.ws_path, c.base_auth_path
            ),
        );
    }
    Ok(())
}

fn check_backend(c: &Config) -> Result<(), ConfigError> {
    if c.backend.host.is_empty() {
        return err("backend.host", "is empty");
    }
    if c.backend.port == 0 {
        return err("backend.port", "must be between 1 and 65535");
    }
    if !c.backend.http_auth.is_empty() && !c.backend.http_auth.contains(':') {
        return err("backend.httpAuth", "must be \"user:password\"");
    }
    Ok(())
}

/// The URL of Drupal's message callback.
fn backend_url(c: &Config) -> String {
    let b = &c.backend;
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

fn backend(c: &Config) -> BackendSettings {
    let b = &c.backend;
    BackendSettings {
        url: backend_url(c),
        strict_ssl: b.strict_ssl,
        http_auth: b.http_auth.clone(),
        timeout: Duration::from_millis(b.timeout_ms),
        concurrency: b.concurrency,
        queue_length: b.queue_length,
        queue_share: b.queue_share(),
        message_concurrency: b.message_concurrency,
        message_queue_length: b.message_queue_length,
        service_key: c.service_key.clone(),
        reject_cache_ttl: Duration::from_secs(c.auth_reject_cache_secs),
        reject_cache_max: c.auth_reject_cache_max,
    }
}

/// The engine, its Redis and its history.
fn engine(c: &Config) -> Result<EngineSettings, ConfigError> {
    if c.engine == EngineKind::Redis {
        let url = &c.redis.url;
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return err(
                "redis.url",
                format!("{:?} must start with redis:// or rediss://", crate::ids::redact_url(url)),
            );
        }
        if c.redis.prefix.is_empty() || c.redis.prefix.contains(char::is_whitespace) {
            return err("redis.prefix", "must be a non-empty word");
        }
        if c.redis.node_timeout_ms < 1000 {
            return err("redis.nodeTimeoutMs", "must be at least 1000");
        }
    }
    if c.history_size > 0 && c.history_ttl_secs == 0 {
        return err("historyTtlSecs", "must be greater than 0 while historySize is not 0");
    }
    if c.history_size > 100_000 {
        return err(
            "historySize",
            format!("{} is more than the 100000 messages a stream may keep", c.history_size),
        );
    }
    let history = HistorySettings {
        size: c.history_size,
        ttl: Duration::from_secs(c.history_ttl_secs),
        max_bytes: c.history_max_bytes,
    };
    let presence_grace = Duration::from_millis(c.presence_grace_ms);
    let auth_cache_ttl = Duration::from_secs(c.auth_cache_ttl_secs);
    let content_token_ttl = Duration::from_secs(c.content_token_ttl_secs);
    Ok(match c.engine {
        EngineKind::Memory => EngineSettings::Memory(MemorySettings {
            history,
            presence_grace,
            auth_cache_ttl,
            auth_cache_max: c.auth_cache_max,
            content_token_ttl,
        }),
        EngineKind::Redis => EngineSettings::Redis(RedisSettings {
            url: c.redis.url.clone(),
            prefix: c.redis.prefix.clone(),
            history,
            presence_grace,
            auth_cache_ttl,
            content_token_ttl,
            node_ttl: Duration::from_millis(c.redis.node_timeout_ms),
        }),
    })
}

/// Heartbeats and frame sizes.
fn check_conn(c: &Config) -> Result<(), ConfigError> {
    if c.heartbeat_timeout_ms <= c.heartbeat_interval_ms {
        return err(
            "heartbeatTimeoutMs",
            format!(
                "{} must be greater than heartbeatIntervalMs ({})",
                c.heartbeat_timeout_ms, c.heartbeat_interval_ms
            ),
        );
    }
    if c.max_frame_size < 1024 {
        return err(
            "maxFrameSize",
            format!("{} is below the 1024 bytes an authenticate frame may need", c.max_frame_size),
        );
    }
    if c.max_queued_bytes < c.max_frame_size {
        return err("maxQueuedBytes", "must be at least maxFrameSize");
    }
    if c.ws_read_buffer_size < 256 {
        return err("wsReadBufferSize", "must be at least 256 bytes");
    }
    Ok(())
}

/// The origin, proxy, rate-limit and drain settings.
fn edge(c: &Config) -> Result<EdgeSettings, ConfigError> {
    let origins = Origins::parse(&c.allowed_origins)?;
    let proxies = TrustedProxies::parse(&c.trusted_proxies)?;
    let limits = [
        (
            "connectionRatePerAddress",
            c.connection_rate_per_address,
            "connectionBurstPerAddress",
            c.connection_burst_per_address,
        ),
        ("authRatePerAddress", c.auth_rate_per_address, "authBurstPerAddress", c.auth_burst_per_address),
        (
            "tokenJoinRatePerSocket",
            c.token_join_rate_per_socket,
            "tokenJoinBurstPerSocket",
            c.token_join_burst_per_socket,
        ),
    ];
    for (rate_key, rate, burst_key, burst) in limits {
        if !rate.is_finite() || rate < 0.0 {
            return err(rate_key, format!("{rate} must be a number of at least 0 (0: no limit)"));
        }
        if rate > 0.0 && burst == 0 {
            return err(burst_key, format!("must be at least 1 when {rate_key} is set"));
        }
    }
    if c.drain_window_ms > MAX_DRAIN_WINDOW_MS {
        return err(
            "drainWindowMs",
            format!(
                "{} is over 10 minutes; a service manager kills the process long before \
                 (systemd waits 90 s by default)",
                c.drain_window_ms
            ),
        );
    }
    Ok(EdgeSettings {
        origins,
        proxies,
        connection_rate: c.connection_rate_per_address,
        connection_burst: c.connection_burst_per_address,
        auth_rate: c.auth_rate_per_address,
        auth_burst: c.auth_burst_per_address,
    })
}

/// The HTTP connection timeouts and caps.
fn http(c: &Config) -> Result<HttpSettings, ConfigError> {
    for (key, ms) in
        [("httpHeaderTimeoutMs", c.http_header_timeout_ms), ("httpIdleTimeoutMs", c.http_idle_timeout_ms)]
    {
        if !(MIN_HTTP_TIMEOUT_MS..=MAX_HTTP_TIMEOUT_MS).contains(&ms) {
            return err(
                key,
                format!("{ms} must be between {MIN_HTTP_TIMEOUT_MS} and {MAX_HTTP_TIMEOUT_MS} ms"),
            );
        }
    }
    let (all, one) = (c.max_http_connections, c.max_http_connections_per_address);
    if all > 0 && one > all {
        return err(
            "maxHttpConnectionsPerAddress",
            format!("{one} is more than maxHttpConnections ({all}); lower it (0: no limit per address)"),
        );
    }
    Ok(HttpSettings {
        header_timeout: Duration::from_millis(c.http_header_timeout_ms),
        idle_timeout: Duration::from_millis(c.http_idle_timeout_ms),
        max_connections: all,
        max_per_address: one,
    })
}

/// A `metricsToken` travels in an `Authorization` header: visible ASCII, and long enough not to
/// be guessed.
fn check_metrics_token(token: &str) -> Result<(), ConfigError> {
    if token.is_empty() {
        return Ok(());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return err("metricsToken", "must be printable ASCII without spaces (it is sent as a bearer token)");
    }
    if token.len() < 16 {
        return err(
            "metricsToken",
            format!(
                "{} characters is too short to keep /metrics private; use at least 16 \
             (e.g. `openssl rand -hex 24`)",
                token.len()
            ),
        );
    }
    Ok(())
}
