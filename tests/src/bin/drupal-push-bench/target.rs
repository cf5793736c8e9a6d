//! The servers under test, started as child processes (pinned to a CPU with `taskset` when
//! asked) and driven over HTTP:
//!
//! * `ours`: `drupal-push` with a generated TOML config; publish via `POST /nodejs/publish`.
//! * `peer`: laravel-echo-server 1.6.3 (Node, socket.io 2) from `tests/bench/peer`, with a
//!   generated `laravel-echo-server.json`; publish via its HTTP API
//!   `POST /apps/{appId}/events?auth_key=…`; subscribers join a private channel whose auth goes to
//!   the fake backend (`authHost`).
//! * `ceiling`: this binary's `broadcaster` subcommand (see `ceiling.rs`).

use crate::fleet::{FleetSpec, Proto, STAMP_KEY};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ours,
    Peer,
    Ceiling,
}

const SERVICE_KEY: &str = "bench-service-key";
const PEER_APP_ID: &str = "bench";
const PEER_KEY: &str = "bench-app-key";

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Opts {
    pub server_bin: PathBuf,
    pub peer_dir: PathBuf,
    pub work_dir: PathBuf,
    /// `taskset -c` CPU list for the server, if any.
    pub server_cpu: Option<String>,
}

pub struct Target {
    pub kind: Kind,
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    ws_url: String,
    publish_url: String,
    http: reqwest::Client,
    pub channel: String,
    /// The command line that started it.
    pub command: String,
    /// The generated configuration, for the report.
    pub config: String,
}

impl Target {
    /// Starts a fresh server of `kind` whose backend is `backend`.
    pub async fn start(kind: Kind, opts: &Opts, backend: SocketAddr) -> anyhow::Result<Target> {
        std::fs::create_dir_all(&opts.work_dir)?;
        let http = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(64).build()?;
        let (program, args, config, channel) = match kind {
            Kind::Ours => {
                let config = format!(
                    "host = \"127.0.0.1\"\nport = 0\nserviceKey = \"{SERVICE_KEY}\"\n\
                     # One load generator is one address: no per-address limits; no drain window.\n\
                     connectionRatePerAddress = 0\nauthRatePerAddress = 0\ndrainWindowMs = 0\n\
                     allowedOrigins = [\"*\"]\n\n[backend]\nscheme = \"http\"\n\
                     host = \"127.0.0.1\"\nport = {}\n",
                    backend.port()
                );
                let path = write(&opts.work_dir, "drupal-push.toml", &config)?;
                (opts.server_bin.display().to_string(), vec![path], config, "bench")
            }
            Kind::Peer => {
                let port = free_port()?;
                let config = serde_json::to_string_pretty(&peer_config(port, backend))?;
                let cfg = write(&opts.work_dir, "laravel-echo-server.json", &config)?;
                let module = std::path::absolute(opts.peer_dir.join("node_modules/laravel-echo-server"))?;
                let runner = format!(
                    "const o = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));\n\
                     require({:?}).run(o);\n",
                    module.display().to_string()
                );
                let script = write(&opts.work_dir, "run-peer.js", &runner)?;
                ("node".into(), vec![script, cfg], config, "private-bench")
            }
            Kind::Ceiling => {
                let me = std::env::current_exe()?.display().to_string();
                (me, vec!["broadcaster".into()], "(none)".into(), "bench")
            }
        };
        let mut cmd = match &opts.server_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(&args).env("RUST_LOG", "warn").kill_on_drop(true).stdin(Stdio::null());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.work_dir.join(format!("{kind:?}.log").to_lowercase()))?;
        cmd.stderr(log.try_clone()?);
        cmd.stdout(if kind == Kind::Peer { Stdio::from(log) } else { Stdio::piped() });
        let command = format!(
            "{}{} {}",
            opts.server_cpu.as_ref().map(|c| format!("taskset -c {c} ")).unwrap_or_default(),
            program,
            args.join(" ")
        );
        let mut child = cmd.spawn().with_context(|| format!("cannot start {command}"))?;
        let pid = child.id().context("server exited at once")?;
        let (addr, ws_url, publish_url) = match kind {
            Kind::Ours => {
                let line = first_line(&mut child).await?;
                let addr = parse_addr(&line, "http://")?;
                (addr, format!("ws://{addr}/ws"), format!("http://{addr}/nodejs/publish"))
            }
            Kind::Ceiling => {
                let line = first_line(&mut child).await?;
                let ws = parse_addr(&line, "ws=")?;
                let api = parse_addr(&line, "http=")?;
                (ws, format!("ws://{ws}/ws"), format!("http://{api}/nodejs/publish"))
            }
            Kind::Peer => {
                let addr = SocketAddr::from(([127, 0, 0, 1], peer_port(&config)?));
                wait_listening(addr, &mut child).await?;
                let publish = format!("http://{addr}/apps/{PEER_APP_ID}/events?auth_key={PEER_KEY}");
                (addr, format!("ws://{addr}/socket.io/?EIO=3&transport=websocket"), publish)
            }
        };
        Ok(Target {
            kind,
            child,
            pid,
            addr,
            ws_url,
            publish_url,
            http,
            channel: channel.into(),
            command,
            config,
        })
    }

    /// What a fleet needs to connect to this server.
    pub fn fleet_spec(&self, sources: Vec<std::net::IpAddr>, token_gen: u32) -> FleetSpec {
        FleetSpec {
            proto: if self.kind == Kind::Peer { Proto::SocketIo } else { Proto::Ours },
            url: self.ws_url.clone(),
            addr: self.addr,
            sources,
            token_gen,
            channel: self.channel.clone(),
        }
    }

    /// The publish body of message `seq` of `round`, stamped `sent_ns`, padded to about `size`
    /// bytes.
    pub fn body(&self, round: u32, seq: u32, sent_ns: u64, size: usize) -> String {
        let mut data = json!({ STAMP_KEY: [round, seq, sent_ns], "pad": "" });
        let mut body = self.envelope(&data);
        let pad = size.saturating_sub(body.len());
        if pad > 0 {
            data["pad"] = Value::String("x".repeat(pad));
            body = self.envelope(&data);
        }
        body
    }

    fn envelope(&self, data: &Value) -> String {
        match self.kind {
            Kind::Peer => json!({"channel": self.channel, "name": "bench", "data": data}),
            _ => json!({"channel": self.channel, "callback": "benchMessage", "data": data}),
        }
        .to_string()
    }

    /// Publishes one message; returns the `sent` count when the server reports one.
    pub async fn publish(&self, body: String) -> anyhow::Result<Option<u64>> {
        let resp = self
            .http
            .post(&self.publish_url)
            .header("NodejsServiceKey", SERVICE_KEY)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            bail!("publish: HTTP {status}: {text}");
        }
        let v: Value = serde_json::from_str(&text).with_context(|| format!("publish answer {text:?}"))?;
        if let Some(e) = v.get("error") {
            bail!("publish: {e}");
        }
        Ok(v.get("sent").and_then(Value::as_u64))
    }

    pub fn rss_kib(&self) -> u64 {
        crate::metrics::rss_kib(self.pid).unwrap_or(0)
    }

    /// SIGTERM (a clean exit: profilers write their output), SIGKILL after 10 s.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status().await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
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

fn peer_port(config: &str) -> anyhow::Result<u16> {
    let v: Value = serde_json::from_str(config)?;
    Ok(v["port"].as_str().context("port")?.parse()?)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn first_line(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the server printed no listening line within 30 s")??
        .context("the server exited before listening")?;
    // Keep reading so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(line)
}

fn parse_addr(line: &str, after: &str) -> anyhow::Result<SocketAddr> {
    let at = line.find(after).with_context(|| format!("no {after:?} in {line:?}"))? + after.len();
    let text: String = line[at..].chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
    text.parse().with_context(|| format!("bad address in {line:?}"))
}

async fn wait_listening(addr: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Some(status) = child.try_wait()? {
            bail!("the peer exited with {status} before listening");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the peer is not listening on {addr} after 30 s")
}
