//! Where settings come from and how they merge: defaults <- config file <- environment <- flags.
//! Each source is a JSON tree; the merged tree is deserialized once into [`Config`], so a type
//! error from any source names its key (`backend.port: invalid type …`).

use super::{Config, ConfigError, Settings, nodejs_js};
use clap::Parser;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// Command line of the `drupal-push` binary.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "drupal-push",
    version,
    about = "Real-time push server for Drupal's nodejs module: \
a drop-in replacement for the module's Node.js server (node app.js)."
)]
pub struct Cli {
    /// Config file: TOML (`*.toml`) or the original server's `nodejs.config.js`.
    pub config: Option<PathBuf>,
    /// Demo mode: a built-in demo Drupal backend and the demo page, on 127.0.0.1 only.
    #[arg(long)]
    pub demo: bool,
    /// Listen address (`host`).
    #[arg(long)]
    pub host: Option<String>,
    /// Listen port (`port`; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Service key shared with Drupal (`serviceKey`). Prefer the env var DRUPAL_PUSH_SERVICE_KEY.
    #[arg(long)]
    pub service_key: Option<String>,
    /// Accept an empty service key, leaving the API open (development only).
    #[arg(long)]
    pub allow_empty_service_key: bool,
    /// Serve this directory at `/` (`staticDir`).
    #[arg(long)]
    pub static_dir: Option<String>,
    /// Verbose logging (`debug`).
    #[arg(long)]
    pub debug: bool,
    /// Set any key, e.g. `--set backend.port=8888` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Validate the configuration, print it (without the service key) and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// A configuration problem; the text names the key or the source.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A source that cannot be read, or a value of the wrong form; the text names the source or
    /// the key.
    #[error("configuration: {0}")]
    Source(String),
    /// A value that cannot be used.
    #[error("configuration: {0}")]
    Invalid(#[from] ConfigError),
}

/// The defaults: those of the original server where it had the key (spec 6.1).
fn defaults() -> Value {
    json!({
        "scheme": "http",
        "host": "localhost",
        "port": 8080,
        "serviceKey": "",
        "allowEmptyServiceKey": false,
        "debug": false,
        "bodyParserJsonLimit": "1mb",
        "baseAuthPath": "/nodejs/",
        "wsPath": "/ws",
        "resource": "/socket.io",
        "sslKeyPath": "",
        "sslCertPath": "",
        "sslCAPath": "",
        "backend": {
            "scheme": "http",
            "host": "localhost",
            "port": 80,
            "basePath": "/",
            "messagePath": "nodejs/message",
            "strictSSL": true,
            "httpAuth": "",
            "timeoutMs": 30000,
            "concurrency": 64,
            "queueLength": 5000,
            "queueSharePerAddress": 0.125,
            "messageConcurrency": 8,
            "messageQueueLength": 1000
        },
        "contentTokenStatus": "auto",
        "authTimeoutMs": 10000,
        "heartbeatIntervalMs": 25000,
        "heartbeatTimeoutMs": 60000,
        "presenceGraceMs": 2000,
        "authCacheTtlSecs": 600,
        "authCacheMax": 200000,
        "authRejectCacheSecs": 30,
        "authRejectCacheMax": 10000,
        "contentTokenTtlSecs": 86400,
        "engine": "memory",
        "redis": {
            "url": "redis://127.0.0.1:6379/0",
            "prefix": "drupal-push",
            "nodeTimeoutMs": 10000
        },
        "historySize": 50,
        "historyTtlSecs": 300,
        "historyMaxBytes": "64mb",
        "maxFrameSize": 65536,
        "maxQueuedMessages": 1024,
        "maxQueuedBytes": "16mb",
        "writeTimeoutMs": 10000,
        "wsReadBufferSize": 1024,
        "httpHeaderTimeoutMs": 10000,
        "httpIdleTimeoutMs": 5000,
        "maxHttpConnections": 8192,
        "maxHttpConnectionsPerAddress": 1024,
        "maxConnections": 0,
        "maxConnectionsPerAddress": 0,
        "allowedOrigins": [],
        "trustedProxies": ["127.0.0.1", "::1"],
        "connectionRatePerAddress": 200,
        "connectionBurstPerAddress": 4000,
        "authRatePerAddress": 100,
        "authBurstPerAddress": 2000,
        "tokenJoinRatePerSocket": 2,
        "tokenJoinBurstPerSocket": 20,
        "clientMessages": [],
        "clientWritableChannels": [],
        "clientPublishCallbacks": [],
        "clientRequestRatePerSocket": 10,
        "clientRequestBurstPerSocket": 20,
        "clientRequestMaxBytes": "8kb",
        "drainWindowMs": 5000,
        "logFormat": "text",
        "staticDir": "",
        "distDir": "",
        "publicStatus": true,
        "metricsToken": "",
        "demo": false,
        "extensions": []
    })
}

/// Builds the configuration from all sources; `env` is the process environment.
/// Returns the settings and warnings to log once logging is up.
pub fn load(
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Settings, Vec<String>), LoadError> {
    let (config, warnings) = load_config(cli, env)?;
    Ok((Settings::parse(&config)?, warnings))
}

/// [`load`] up to the flat [`Config`], before it is checked.
pub fn load_config(
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Config, Vec<String>), LoadError> {
    let file = match &cli.config {
        Some(path) => Some(read_file(path)?),
        None => None,
    };
    build(file, cli, env)
}

/// The kinds of config file, told apart by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// `*.toml`.
    Toml,
    /// `nodejs.config.js` (or a `*.json`/`*.json5` object).
    Js,
}

/// [`load`] with the text of a config file instead of its path, and no other source but the
/// defaults: what the binary does with a file, without the file system (fuzzing, tests).
pub fn load_file_text(format: FileFormat, text: &str) -> Result<(Settings, Vec<String>), LoadError> {
    let file = parse_file_text(format, "config", text)?;
    let (config, warnings) = build(Some(file), &Cli::default(), std::iter::empty())?;
    Ok((Settings::parse(&config)?, warnings))
}

/// Merges the sources over the defaults, deserializes, applies demo mode and gathers the
/// warnings.
fn build(
    file: Option<(Value, Vec<String>)>,
    cli: &Cli,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(Config, Vec<String>), LoadError> {
    let mut tree = defaults();
    let mut warnings = Vec::new();
    if let Some((file, w)) = file {
        warnings.extend(w);
        merge(&mut tree, file);
    }
    merge(&mut tree, env_tree(env)?);
    merge(&mut tree, cli_tree(cli)?);
    let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        LoadError::Invalid(ConfigError::new(path, e.into_inner().to_string()))
    })?;
    if !config.extensions.is_empty() {
        warnings.push(format!(
            "extensions: {:?} ignored: Node.js extensions cannot run in drupal-push",
            config.extensions
        ));
    }
    if config.demo {
        apply_demo(&mut config)?;
    }
    if config.allowed_origins.is_empty() && !config.demo {
        warnings.push(
            "allowedOrigins: not set, so pages on any site may open WebSocket connections here; \
             set it to your site's origins, e.g. allowedOrigins = [\"https://www.example.com\"] \
             (or [\"*\"] to allow every origin without this warning)"
                .into(),
        );
    }
    Ok((config, warnings))
}

fn read_file(path: &Path) -> Result<(Value, Vec<String>), LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::Source(format!("cannot read {}: {e}", path.display())))?;
    let name = path.display().to_string();
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => FileFormat::Toml,
        Some("js") | Some("json") | Some("json5") => FileFormat::Js,
        _ => {
            return Err(LoadError::Source(format!(
                "{name}: unknown config format; use a .toml file or the original nodejs.config.js"
            )));
        }
    };
    parse_file_text(format, &name, &text)
}

/// The settings tree of a config file's text, and warnings; errors start with `name`.
fn parse_file_text(format: FileFormat, name: &str, text: &str) -> Result<(Value, Vec<String>), LoadError> {
    match format {
        FileFormat::Toml => {
            let v: Value = toml::from_str(text).map_err(|e| LoadError::Source(format!("{name}: {e}")))?;
            Ok((v, Vec::new()))
        }
        FileFormat::Js => {
            let (v, w) = if text.trim_start().starts_with('{') {
                (json5::from_str(text).map_err(|e| LoadError::Source(format!("{name}: {e}")))?, Vec::new())
            } else {
                nodejs_js::parse(text).map_err(|e| LoadError::Source(format!("{name}: {e}")))?
            };
            Ok((v, w.into_iter().map(|w| format!("{name}: {w}")).collect()))
        }
    }
}

/// Recursively overlays `over` onto `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Finds the key path (`["backend","strictSSL"]`) whose letters, ignoring case and `_`,
/// match `wanted` (`BACKEND__STRICT_SSL`), using the defaults as the list of keys.
fn key_path(wanted: &str) -> Option<Vec<String>> {
    let norm =
        |s: &str| s.chars().filter(|c| *c != '_' && *c != '.').collect::<String>().to_ascii_lowercase();
    let mut node = defaults();
    let mut path = Vec::new();
    let parts: Vec<&str> =
        if wanted.contains("__") { wanted.split("__").collect() } else { wanted.split('.').collect() };
    for part in parts {
        let obj = node.as_object()?;
        let key = obj.keys().find(|k| norm(k) == norm(part))?.clone();
        node = obj[&key].clone();
        path.push(key);
    }
    Some(path)
}

/// A value given as text: numbers and booleans become JSON numbers and booleans (string keys
/// accept them back), everything else stays a string.
fn text_value(s: &str) -> Value {
    if let Ok(n) = s.parse::<u64>() {
        return Value::from(n);
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_owned()),
    }
}

fn set_path(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for (i, k) in path.iter().enumerate() {
        let obj = match node {
            Value::Object(o) => o,
            other => {
                *other = Value::Object(Map::new());
                other.as_object_mut().expect("just made an object")
            }
        };
        if i + 1 == path.len() {
            obj.insert(k.clone(), value);
            return;
        }
        node = obj.entry(k.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
}

const ENV_PREFIX: &str = "DRUPAL_PUSH_";

fn env_tree(env: impl IntoIterator<Item = (String, String)>) -> Result<Value, LoadError> {
    let mut tree = Value::Object(Map::new());
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        let path = key_path(rest).ok_or_else(|| {
            LoadError::Source(format!(
                "{name}: no setting of that name (e.g. DRUPAL_PUSH_SERVICE_KEY, DRUPAL_PUSH_BACKEND__HOST)"
            ))
        })?;
        set_path(&mut tree, &path, text_value(&value));
    }
    Ok(tree)
}

fn cli_tree(cli: &Cli) -> Result<Value, LoadError> {
    let mut tree = Value::Object(Map::new());
    for item in &cli.set {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| LoadError::Source(format!("--set {item:?}: expected KEY=VALUE")))?;
        let path = key_path(k.trim())
            .ok_or_else(|| LoadError::Source(format!("--set {k}: no setting of that name")))?;
        set_path(&mut tree, &path, text_value(v));
    }
    let t = tree.as_object_mut().expect("tree is an object");
    if let Some(h) = &cli.host {
        t.insert("host".into(), Value::from(h.clone()));
    }
    if let Some(p) = cli.port {
        t.insert("port".into(), Value::from(p));
    }
    if let Some(k) = &cli.service_key {
        t.insert("serviceKey".into(), Value::from(k.clone()));
    }
    if let Some(d) = &cli.static_dir {
        t.insert("staticDir".into(), Value::from(d.clone()));
    }
    for (flag, key) in
        [(cli.allow_empty_service_key, "allowEmptyServiceKey"), (cli.debug, "debug"), (cli.demo, "demo")]
    {
        if flag {
            t.insert(key.into(), Value::Bool(true));
        }
    }
    Ok(tree)
}

/// Demo mode: loopback only, a generated service key, the demo page and the built client.
fn apply_demo(config: &mut Config) -> Result<(), LoadError> {
    match config.host.as_str() {
        "localhost" | "127.0.0.1" => config.host = "127.0.0.1".into(),
        other => {
            return Err(
                ConfigError::new("host", format!("demo mode binds 127.0.0.1 only, not {other:?}")).into()
            );
        }
    }
    if config.service_key.is_empty() {
        config.service_key = format!("demo-{}", crate::ids::random_id(16));
    }
    if config.static_dir.is_empty() && Path::new("www").is_dir() {
        config.static_dir = "www".into();
    }
    if config.dist_dir.is_empty() && Path::new("drupal-js/dist").is_dir() {
        config.dist_dir = "drupal-js/dist".into();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("drupal-push").chain(args.iter().copied()))
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// The flat config and the settings it parses into (or the error).
    fn both(cli: &Cli, env: Vec<(String, String)>) -> Result<(Config, Settings, Vec<String>), LoadError> {
        let (config, warnings) = load_config(cli, env)?;
        let settings = Settings::parse(&config)?;
        Ok((config, settings, warnings))
    }

    #[test]
    fn defaults_are_the_originals_and_need_a_key() {
        let e = load(&cli(&[]), env(&[])).unwrap_err();
        assert!(e.to_string().contains("serviceKey: is empty"), "{e}");
        let (s, _) = load(&cli(&["--service-key", "s"]), env(&[])).unwrap();
        assert_eq!(s.listen.port, 8080);
        assert_eq!(s.listen.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.api.base_auth_path, "/nodejs/");
        assert_eq!(s.backend.url, "http://localhost:80/nodejs/message");
        assert_eq!(s.api.body_limit, 1024 * 1024);
        assert_eq!(s.listen.resource, "/socket.io");
    }

    #[test]
    fn resource_is_validated() {
        let (s, _) = load(&cli(&["--service-key", "k", "--set", "resource=/push/io"]), env(&[])).unwrap();
        assert_eq!(s.listen.resource, "/push/io");
        for bad in ["socket.io", "/socket.io/", "/", "/nodejs/io", "/ws"] {
            let e = load(&cli(&["--service-key", "k", "--set", &format!("resource={bad}")]), env(&[]))
                .unwrap_err();
            assert!(e.to_string().contains("resource:"), "{bad}: {e}");
        }
    }

    #[test]
    fn env_and_flags_override_with_precedence() {
        let (c, s, _) = both(
            &cli(&["--port", "9000", "--set", "backend.strictSSL=false"]),
            env(&[
                ("DRUPAL_PUSH_SERVICE_KEY", "1234"),
                ("DRUPAL_PUSH_PORT", "7000"),
                ("DRUPAL_PUSH_BACKEND__HOST", "drupal.local"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.listen.port, 9000);
        assert_eq!((s.api.service_key.as_str(), s.backend.service_key.as_str()), ("1234", "1234"));
        assert_eq!(c.backend.host, "drupal.local");
        assert!(!s.backend.strict_ssl);
    }

    #[test]
    fn errors_name_the_key() {
        let e =
            load(&cli(&["--set", "backend.port=abc"]), env(&[("DRUPAL_PUSH_SERVICE_KEY", "k")])).unwrap_err();
        assert!(e.to_string().contains("backend.port"), "{e}");
        let e = load(&cli(&[]), env(&[("DRUPAL_PUSH_NOPE", "1")])).unwrap_err();
        assert!(e.to_string().contains("DRUPAL_PUSH_NOPE"), "{e}");
        let e = load(&cli(&["--service-key", "k", "--set", "heartbeatTimeoutMs=10"]), env(&[])).unwrap_err();
        assert!(e.to_string().contains("heartbeatTimeoutMs"), "{e}");
        let e = load(&cli(&["--service-key", "k", "--set", "contentTokenStatus=yes"]), env(&[])).unwrap_err();
        assert!(e.to_string().contains("contentTokenStatus"), "{e}");
        let e = load(&cli(&["--service-key", "k", "--host", "example.org"]), env(&[])).unwrap_err();
        assert!(e.to_string().contains("host:"), "{e}");
    }

    #[test]
    fn toml_and_js_files_load_the_same_keys() {
        let dir = std::env::temp_dir().join(format!("drupal-push-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("c.toml");
        std::fs::write(
            &toml_path,
            "serviceKey = \"t\"\nport = 8111\n[backend]\nport = 8888\nbasePath = \"/drupal/\"\n",
        )
        .unwrap();
        let (c, s, _) = both(&cli(&[toml_path.to_str().unwrap()]), env(&[])).unwrap();
        assert_eq!((c.port, c.backend.port), (8111, 8888));
        assert_eq!(s.backend.url, "http://localhost:8888/drupal/nodejs/message");
        let js_path = dir.join("nodejs.config.js");
        std::fs::write(&js_path, "settings = {serviceKey: 't', port: 8111, backend: {port: 8888, basePath: '', messagePath: '/nodejs/message'}, jsEtag: true, allowedOrigins: ['https://*.example.org']};").unwrap();
        let (c, s, warnings) = both(&cli(&[js_path.to_str().unwrap()]), env(&[])).unwrap();
        assert_eq!(s.backend.url, "http://localhost:8888/nodejs/message");
        assert_eq!(c.allowed_origins, ["https://*.example.org"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        std::fs::write(&toml_path, "serviceKey = \"t\"\nsurprise = 1\n").unwrap();
        let e = load(&cli(&[toml_path.to_str().unwrap()]), env(&[])).unwrap_err();
        assert!(e.to_string().contains("unknown field `surprise`"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn content_token_status_defaults_to_auto() {
        use crate::config::ContentTokenStatus;
        let (s, _) = load(&cli(&["--service-key", "k"]), env(&[])).unwrap();
        let c = s.api;
        assert_eq!(c.content_token_status, ContentTokenStatus::Auto);
        assert_eq!(
            (c.content_token_status.answer(false), c.content_token_status.answer(true)),
            ("ok", "success")
        );
        for (setting, answer) in [("ok", "ok"), ("success", "success")] {
            let (s, _) = load(
                &cli(&["--service-key", "k", "--set", &format!("contentTokenStatus={setting}")]),
                env(&[]),
            )
            .unwrap();
            let c = s.api;
            assert_eq!(
                (c.content_token_status.answer(false), c.content_token_status.answer(true)),
                (answer, answer)
            );
        }
    }

    #[test]
    fn demo_mode_is_loopback_with_a_generated_key() {
        let (s, _) = load(&cli(&["--demo"]), env(&[])).unwrap();
        assert_eq!(s.listen.host, "127.0.0.1");
        assert!(s.api.service_key.starts_with("demo-"));
        assert!(load(&cli(&["--demo", "--host", "0.0.0.0"]), env(&[])).is_err());
    }
}
