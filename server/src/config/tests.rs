//! The operations keys (backend queue, origins, proxies, rate limits, HTTP timeouts and caps,
//! drain, log format) from
//! every source, and their validation errors naming the key.

use super::{Config, ConfigError, LogFormat, Settings, load, load_config};
use crate::config::Cli;
use clap::Parser;
use std::time::Duration;

fn cli(args: &[&str]) -> Cli {
    Cli::parse_from(std::iter::once("drupal-push").chain(args.iter().copied()))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The flat config of a `load` that succeeds.
fn raw(cli: &Cli, env: Vec<(String, String)>) -> Result<(Config, Vec<String>), super::LoadError> {
    load(cli, env.clone())?;
    load_config(cli, env)
}

#[test]
fn defaults_and_the_origin_warning() {
    let (c, warnings) = raw(&cli(&["--service-key", "k"]), env(&[])).unwrap();
    assert_eq!(c.backend.timeout_ms, 30_000);
    assert_eq!(c.backend.queue_length, 5000);
    assert!(c.allowed_origins.is_empty());
    assert_eq!(c.trusted_proxies, ["127.0.0.1", "::1"]);
    assert_eq!((c.connection_rate_per_address, c.connection_burst_per_address), (200.0, 4000));
    assert_eq!((c.auth_rate_per_address, c.auth_burst_per_address), (100.0, 2000));
    assert_eq!(c.drain_window_ms, 5000);
    assert_eq!((c.http_header_timeout_ms, c.http_idle_timeout_ms), (10_000, 5000));
    assert_eq!((c.max_http_connections, c.max_http_connections_per_address), (8192, 1024));
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!((c.backend.queue_share_per_address, c.backend.queue_share()), (0.125, 625));
    assert_eq!((c.auth_reject_cache_secs, c.auth_reject_cache_max), (30, 10_000));
    assert!(c.client_publish_callbacks.is_empty());
    assert!(warnings.iter().any(|w| w.starts_with("allowedOrigins: not set")), "{warnings:?}");
    let (_, warnings) = load(&cli(&["--service-key", "k", "--set", "allowedOrigins=*"]), env(&[])).unwrap();
    assert!(warnings.is_empty(), "an explicit \"*\" is a decision: {warnings:?}");
}

#[test]
fn env_and_set_take_lists_and_fractions() {
    let (c, _) = raw(
        &cli(&["--set", "allowedOrigins=https://a.example, https://*.b.example", "--set", "logFormat=json"]),
        env(&[
            ("DRUPAL_PUSH_SERVICE_KEY", "k"),
            ("DRUPAL_PUSH_TRUSTED_PROXIES", "10.0.0.0/8 192.168.0.1"),
            ("DRUPAL_PUSH_AUTH_RATE_PER_ADDRESS", "0.5"),
            ("DRUPAL_PUSH_BACKEND__QUEUE_LENGTH", "7"),
            ("DRUPAL_PUSH_DRAIN_WINDOW_MS", "0"),
            ("DRUPAL_PUSH_MAX_HTTP_CONNECTIONS_PER_ADDRESS", "0"),
        ]),
    )
    .unwrap();
    assert_eq!(c.allowed_origins, ["https://a.example", "https://*.b.example"]);
    assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "192.168.0.1"]);
    assert_eq!(c.auth_rate_per_address, 0.5);
    assert_eq!(c.backend.queue_length, 7);
    assert_eq!(c.drain_window_ms, 0);
    assert_eq!(c.max_http_connections_per_address, 0, "0: no limit per address");
    assert_eq!(c.log_format, LogFormat::Json);
}

#[test]
fn toml_takes_arrays_and_floats() {
    let dir = std::env::temp_dir().join(format!("drupal-push-cfg-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ops.toml");
    std::fs::write(
        &path,
        "serviceKey = \"k\"\nallowedOrigins = [\"https://www.example.com\"]\nconnectionRatePerAddress = 2.5\n\
         logFormat = \"json\"\nhttpIdleTimeoutMs = 2500\n[backend]\nqueueLength = 0\ntimeoutMs = 45000\n",
    )
    .unwrap();
    let (c, warnings) = raw(&cli(&[path.to_str().unwrap()]), env(&[])).unwrap();
    assert_eq!(c.allowed_origins, ["https://www.example.com"]);
    assert_eq!(c.connection_rate_per_address, 2.5);
    assert_eq!(c.http_idle_timeout_ms, 2500);
    assert_eq!((c.backend.queue_length, c.backend.timeout_ms), (0, 45_000));
    assert!(warnings.is_empty(), "{warnings:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_values_name_the_key() {
    for (set, key) in [
        ("allowedOrigins=www.example.com", "allowedOrigins[0]"),
        ("trustedProxies=127.0.0.1,proxy.local", "trustedProxies[1]"),
        ("connectionRatePerAddress=fast", "connectionRatePerAddress"),
        ("authRatePerAddress=-1", "authRatePerAddress"),
        ("authBurstPerAddress=0", "authBurstPerAddress"),
        ("tokenJoinRatePerSocket=-2", "tokenJoinRatePerSocket"),
        ("tokenJoinBurstPerSocket=0", "tokenJoinBurstPerSocket"),
        ("connectionBurstPerAddress=-3", "connectionBurstPerAddress"),
        ("drainWindowMs=3600000", "drainWindowMs"),
        ("logFormat=xml", "logFormat"),
        ("backend.queueLength=many", "backend.queueLength"),
        ("backend.timeoutMs=0", "backend.timeoutMs"),
        ("httpHeaderTimeoutMs=0", "httpHeaderTimeoutMs"),
        ("httpIdleTimeoutMs=99", "httpIdleTimeoutMs"),
        ("httpIdleTimeoutMs=soon", "httpIdleTimeoutMs"),
        ("maxHttpConnections=-1", "maxHttpConnections"),
        ("maxHttpConnectionsPerAddress=9000", "maxHttpConnectionsPerAddress"),
        ("backend.queueSharePerAddress=0", "backend.queueSharePerAddress"),
        ("backend.queueSharePerAddress=1.5", "backend.queueSharePerAddress"),
        ("backend.queueSharePerAddress=half", "backend.queueSharePerAddress"),
        ("authRejectCacheSecs=86400", "authRejectCacheSecs"),
        ("authRejectCacheMax=0", "authRejectCacheMax"),
        ("authRejectCacheSecs=-1", "authRejectCacheSecs"),
        ("clientPublishCallbacks=clientJoinedTokenChannel", "clientPublishCallbacks"),
    ] {
        let e = load(&cli(&["--service-key", "k", "--set", set]), env(&[])).unwrap_err().to_string();
        assert!(e.contains(key), "{set}: {e}");
    }
    // A rate of 0 is no limit, and then the burst does not matter.
    load(
        &cli(&["--service-key", "k", "--set", "authRatePerAddress=0", "--set", "authBurstPerAddress=0"]),
        env(&[]),
    )
    .unwrap();
    // No reject cache: the size does not matter; a whole queue per address is allowed.
    let (c, _) = raw(
        &cli(&["--service-key", "k", "--set", "authRejectCacheSecs=0", "--set", "authRejectCacheMax=0"]),
        env(&[
            ("DRUPAL_PUSH_BACKEND__QUEUE_SHARE_PER_ADDRESS", "1"),
            ("DRUPAL_PUSH_BACKEND__QUEUE_LENGTH", "0"),
        ]),
    )
    .unwrap();
    assert_eq!(c.backend.queue_share(), 1, "at least one");
}

#[test]
fn settings_are_typed() {
    let (s, _) = load(
        &cli(&[
            "--service-key",
            "k",
            "--set",
            "heartbeatIntervalMs=1500",
            "--set",
            "allowedOrigins=https://a.example",
            "--set",
            "historyTtlSecs=7",
        ]),
        env(&[]),
    )
    .unwrap();
    assert_eq!(s.conn.heartbeat_interval, Duration::from_millis(1500));
    assert_eq!(s.http.idle_timeout, Duration::from_millis(5000));
    assert_eq!(s.ops.drain_window, Duration::from_millis(5000));
    assert_eq!((s.backend.timeout, s.backend.queue_share), (Duration::from_secs(30), 625));
    assert_eq!(s.backend.reject_cache_ttl, Duration::from_secs(30));
    assert!(s.edge.origins.allows("https://a.example"));
    assert!(!s.edge.origins.allows("https://b.example"));
    assert!(s.edge.proxies.contains("::1".parse().unwrap()));
    assert_eq!(s.listen.addr, "127.0.0.1:8080".parse().unwrap());
    match s.engine {
        super::settings::EngineSettings::Memory(m) => assert_eq!(m.history.ttl, Duration::from_secs(7)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_errors_carry_the_key_apart_from_the_message() {
    let (base, _) = load_config(&cli(&["--service-key", "k"]), env(&[])).unwrap();
    type Change = fn(&mut Config);
    let cases: [(Change, &str, &str); 8] = [
        (|c| c.max_queued_bytes = 1, "maxQueuedBytes", "must be at least maxFrameSize"),
        (
            |c| c.host = "example.org".into(),
            "host",
            "\"example.org\" is not an IP address (use an address, \"localhost\" or \"\")",
        ),
        (|c| c.client_request_max_bytes = 0, "clientRequestMaxBytes", "must be at least 1 byte"),
        (
            |c| c.trusted_proxies = vec!["::1".into(), "proxy".into()],
            "trustedProxies[1]",
            "\"proxy\" is not an IP address or a CIDR range like 10.0.0.0/8",
        ),
        (|c| c.backend.port = 0, "backend.port", "must be between 1 and 65535"),
        (|c| c.http_idle_timeout_ms = 99, "httpIdleTimeoutMs", "99 must be between 100 and 3600000 ms"),
        (
            |c| c.auth_burst_per_address = 0,
            "authBurstPerAddress",
            "must be at least 1 when authRatePerAddress is set",
        ),
        (
            |c| c.metrics_token = "short".into(),
            "metricsToken",
            "5 characters is too short to keep /metrics private; use at least 16 (e.g. `openssl rand -hex 24`)",
        ),
    ];
    for (change, key, message) in cases {
        let mut c = base.clone();
        change(&mut c);
        let e = Settings::parse(&c).unwrap_err();
        assert_eq!(e, ConfigError::new(key, message));
        assert_eq!(e.to_string(), format!("{key}: {message}"));
    }
    let mut c = base.clone();
    c.allowed_origins = vec!["https://ok.example".into(), "www.example.com".into()];
    assert_eq!(Settings::parse(&c).unwrap_err().key, "allowedOrigins[1]");
}

#[test]
fn load_errors_keep_their_text_and_key() {
    let e = load(&cli(&["--service-key", "k", "--set", "maxQueuedBytes=1"]), env(&[])).unwrap_err();
    assert_eq!(e.to_string(), "configuration: maxQueuedBytes: must be at least maxFrameSize");
    let super::LoadError::Invalid(e) = e else { panic!("{e}") };
    assert_eq!(e.key, "maxQueuedBytes");
    // A value of the wrong type names its key too.
    let e = load(&cli(&["--service-key", "k", "--set", "backend.port=abc"]), env(&[])).unwrap_err();
    let super::LoadError::Invalid(e) = e else { panic!("{e}") };
    assert_eq!(e.key, "backend.port");
    // A source that cannot be read has no key.
    let e = load(&cli(&["/nonexistent/drupal-push.toml"]), env(&[])).unwrap_err();
    assert!(matches!(e, super::LoadError::Source(_)), "{e}");
}
