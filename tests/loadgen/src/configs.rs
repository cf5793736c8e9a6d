//! How each server under test is configured and started: the program, its arguments and
//! environment, and the configuration file the load generator writes for it. Every setting a
//! server gets is written here, so the report can show it and a reader can tell what differs
//! from that server's defaults.

use crate::pusher;
use crate::target::{Kind, Opts};
use anyhow::Context;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;

pub const SERVICE_KEY: &str = "bench-service-key";
pub const PEER_APP_ID: &str = "bench";
pub const PEER_KEY: &str = "bench-app-key";

/// How to start one server process and where it listens.
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    /// Environment variables set for the process (Sockudo's environment is cleared first: it
    /// reads dozens of variables such as `PORT` and `HOST`).
    pub env: Vec<(String, String)>,
    pub clear_env: bool,
    /// The generated configuration, for the report.
    pub config: String,
    pub listen: Listen,
}

/// How the load generator learns the server's address.
pub enum Listen {
    /// The first stdout line names it (drupal-push prints `http://ADDR`, the ceiling
    /// `ws=ADDR http=ADDR`).
    FirstLine,
    /// The configured port: wait until it accepts connections.
    Port(u16),
}

/// The launch of node `node` of a server of `kind`.
pub fn launch(kind: Kind, opts: &Opts, node: usize, backend: SocketAddr) -> anyhow::Result<Launch> {
    let suffix = if node == 0 { String::new() } else { format!("-{node}") };
    let dir = &opts.work_dir;
    Ok(match kind {
        Kind::Ours => {
            let config = ours_toml(backend, &opts.ours_toml);
            let path = write(dir, &format!("drupal-push{suffix}.toml"), &config)?;
            Launch {
                program: opts.server_bin.display().to_string(),
                args: vec![path],
                env: vec![("RUST_LOG".into(), "warn".into())],
                clear_env: false,
                config,
                listen: Listen::FirstLine,
            }
        }
        Kind::Peer => {
            let port = free_port()?;
            let config = serde_json::to_string_pretty(&peer_config(port, backend))?;
            let cfg = write(dir, &format!("laravel-echo-server{suffix}.json"), &config)?;
            let module = std::path::absolute(opts.peer_dir.join("node_modules/laravel-echo-server"))?;
            let runner = format!(
                "const o = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));\n\
                 require({:?}).run(o);\n",
                module.display().to_string()
            );
            let script = write(dir, "run-peer.js", &runner)?;
            Launch {
                program: "node".into(),
                args: vec![script, cfg],
                env: Vec::new(),
                clear_env: false,
                config,
                listen: Listen::Port(port),
            }
        }
        Kind::Sockudo | Kind::SockudoTuned => {
            let port = free_port()?;
            let config = sockudo_toml(port, free_port()?, kind == Kind::SockudoTuned);
            let path = write(dir, &format!("sockudo{suffix}.toml"), &config)?;
            let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
            Launch {
                program: opts.sockudo_bin.display().to_string(),
                args: vec!["--config".into(), path],
                env: vec![("PATH".into(), path_var)],
                clear_env: true,
                config,
                listen: Listen::Port(port),
            }
        }
        Kind::Ceiling => Launch {
            program: std::env::current_exe()?.display().to_string(),
            args: vec!["broadcaster".into()],
            env: Vec::new(),
            clear_env: false,
            config: "(none)".into(),
            listen: Listen::FirstLine,
        },
    })
}

/// drupal-push's TOML: loopback, an ephemeral port, the service key, the fake backend; `extra`
/// lines (e.g. `historySize = 0`) go in at the top level, before the `[backend]` table.
pub fn ours_toml(backend: SocketAddr, extra: &[String]) -> String {
    let mut config = format!(
        "host = \"127.0.0.1\"\nport = 0\nserviceKey = \"{SERVICE_KEY}\"\n\
         # One load generator is one address: no per-address limits; no drain window.\n\
         connectionRatePerAddress = 0\nauthRatePerAddress = 0\ndrainWindowMs = 0\nallowedOrigins = [\"*\"]\n"
    );
    for line in extra {
        config.push_str(line);
        config.push('\n');
    }
    config.push_str(&format!(
        "\n[backend]\nscheme = \"http\"\nhost = \"127.0.0.1\"\nport = {}\n",
        backend.port()
    ));
    config
}

/// The extra drupal-push lines of a node on the Redis engine at `url` (dotted keys, so they stay
/// top-level lines like the others).
pub fn redis_lines(url: &str) -> Vec<String> {
    vec!["engine = \"redis\"".into(), format!("redis.url = \"{url}\"")]
}

fn peer_config(port: u16, backend: SocketAddr) -> Value {
    json!({
        "authHost": format!("http://{backend}"),
        "authEndpoint": "/broadcasting/auth",
        "clients": [{"appId": PEER_APP_ID, "key": PEER_KEY}],
        "database": "none",
        "devMode": false,
        "host": "127.0.0.1",
        "port": port.to_string(),
        "protocol": "http",
        "socketio": {},
        "subscribers": {"http": true, "redis": false},
        "apiOriginAllow": {"allowCors": false},
    })
}

/// The settings of the tuned Sockudo run. Sockudo's documentation gives no buffer sizes for a
/// given connection count; its README's example configuration bounds each connection's send
/// buffer by count and bytes and drops rather than disconnects when it is full ("WebSocket
/// Runtime"), and its "Performance Tuning" block enlarges the disconnect-cleanup queue and
/// shrinks its batches. Those are the values used here; everything else stays at its default.
pub const SOCKUDO_TUNED: &str = "[websocket]\nmax_messages = 1000\nmax_bytes = 1048576\n\
     disconnect_on_buffer_full = false\n\n[cleanup]\nqueue_buffer_size = 50000\nbatch_size = 25\n";

/// Sockudo's TOML. Defaults everywhere except: loopback addresses and free ports (its metrics
/// listener too: the default 9601 may be taken), one app in the built-in (memory) app manager
/// with no connection limit (an app left without limits has none), and the rate limiter off:
/// by default it admits 20 WebSocket connections per minute per IP address, and every bench
/// client comes from 127.0.0.1 (real visitors come from many addresses).
pub fn sockudo_toml(port: u16, metrics_port: u16, tuned: bool) -> String {
    let mut config = format!(
        "host = \"127.0.0.1\"\nport = {port}\n\n[metrics]\nhost = \"127.0.0.1\"\nport = {metrics_port}\n\n\
         [rate_limiter]\nenabled = false\n\n"
    );
    if tuned {
        config.push_str(SOCKUDO_TUNED);
        config.push('\n');
    }
    config.push_str(&format!(
        "[[app_manager.array.apps]]\nid = \"{}\"\nkey = \"{}\"\nsecret = \"{}\"\nenabled = true\n",
        pusher::APP_ID,
        pusher::APP_KEY,
        pusher::APP_SECRET
    ));
    config
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_configs_parse_and_extra_ours_lines_stay_top_level() {
        let backend: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let ours: toml::Table = ours_toml(backend, &["historySize = 0".into()]).parse().unwrap();
        assert_eq!(ours["historySize"].as_integer(), Some(0));
        assert_eq!(ours["backend"]["port"].as_integer(), Some(4000));
        let on_redis: toml::Table =
            ours_toml(backend, &redis_lines("redis://127.0.0.1:7000/0")).parse().unwrap();
        assert_eq!(on_redis["engine"].as_str(), Some("redis"));
        assert_eq!(on_redis["redis"]["url"].as_str(), Some("redis://127.0.0.1:7000/0"));
        assert_eq!(on_redis["backend"]["port"].as_integer(), Some(4000));
        for tuned in [false, true] {
            let s: toml::Table = sockudo_toml(6001, 9601, tuned).parse().unwrap();
            assert_eq!(s["rate_limiter"]["enabled"].as_bool(), Some(false));
            assert_eq!(s["app_manager"]["array"]["apps"][0]["key"].as_str(), Some(pusher::APP_KEY));
            assert_eq!(s.contains_key("websocket"), tuned);
        }
    }
}
