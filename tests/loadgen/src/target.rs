//! The servers under test, started as child processes (pinned to a CPU with `taskset` when
//! asked) and driven over HTTP; their configurations are in [`crate::configs`]:
//!
//! * `ours`: `drupal-push`; publish via `POST /nodejs/publish`.
//! * `peer`: laravel-echo-server 1.6.3 (Node, socket.io 2) from `tests/bench/peer`; publish via
//!   `POST /apps/{appId}/events?auth_key=…`; subscribers join a private channel whose auth the
//!   server asks the fake backend for (`authHost`).
//! * `sockudo`, `sockudo-tuned`: Sockudo 5.2.0 (Rust, Pusher protocol 7) with its defaults, or
//!   with the buffer settings of its documentation ([`crate::configs::SOCKUDO_TUNED`]); publish
//!   via its signed HTTP API ([`crate::pusher`]).
//! * `ceiling`: this binary's `broadcaster` subcommand (see `ceiling.rs`).
//!
//! [`Servers`] is one deployment: `--nodes` processes of one kind, each with its own index,
//! config file, port and log, all pointing at the same fake backend; fleets spread their clients
//! over the nodes, and publishes go to node 0. With [`Opts::redis_bin`] the deployment is on the
//! Redis engine (issue 9): [`Servers::start`] first starts its own `redis-server`
//! ([`crate::redis`]), gives every node `engine = "redis"` and its URL, and waits until each
//! node's `/readyz` says it reaches Redis.

use crate::configs::{self, Listen, PEER_APP_ID, PEER_KEY, SERVICE_KEY};
use crate::fleet::{Endpoint, FleetSpec, Proto, STAMP_KEY};
use crate::pusher;
use crate::redis::Redis;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ours,
    Peer,
    Sockudo,
    SockudoTuned,
    Ceiling,
}

impl Kind {
    /// The name of its results file and work directory.
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::Peer => "peer",
            Kind::Sockudo => "sockudo",
            Kind::SockudoTuned => "sockudo-tuned",
            Kind::Ceiling => "ceiling",
        }
    }

    fn is_sockudo(self) -> bool {
        matches!(self, Kind::Sockudo | Kind::SockudoTuned)
    }
}

/// How to start the servers.
#[derive(Debug, Clone)]
pub struct Opts {
    pub server_bin: PathBuf,
    pub peer_dir: PathBuf,
    pub sockudo_bin: PathBuf,
    pub work_dir: PathBuf,
    /// `taskset -c` CPU list for the server, if any.
    pub server_cpu: Option<String>,
    /// Extra top-level TOML lines for drupal-push (e.g. `historySize = 0`).
    pub ours_toml: Vec<String>,
    /// Server processes per deployment.
    pub nodes: usize,
    /// Run drupal-push on the Redis engine, with a `redis-server` (this binary) of its own.
    pub redis_bin: Option<PathBuf>,
}

/// What a fleet is for: Pusher clients of the connect scenario subscribe to a private channel
/// (one signed auth request to the backend each, as drupal-push makes one authenticate call);
/// fan-out subscribers to a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Connect,
    Fanout,
}

/// One server process.
pub struct Target {
    pub kind: Kind,
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub ws_url: String,
    api: SocketAddr,
    pub command: String,
    pub config: String,
}

impl Target {
    /// Starts node `node` of a server of `kind` whose backend is `backend`.
    pub async fn start(kind: Kind, opts: &Opts, node: usize, backend: SocketAddr) -> anyhow::Result<Target> {
        std::fs::create_dir_all(&opts.work_dir)?;
        let mut launch = configs::launch(kind, opts, node, backend)?;
        // The server runs in its work directory (Sockudo reads ./config/ if present).
        if launch.program.contains('/') {
            launch.program = std::path::absolute(&launch.program)?.display().to_string();
        }
        let mut cmd = match &opts.server_cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu).arg(&launch.program);
                c
            }
            None => Command::new(&launch.program),
        };
        if launch.clear_env {
            cmd.env_clear();
        }
        cmd.args(&launch.args).envs(launch.env.iter().cloned()).kill_on_drop(true).stdin(Stdio::null());
        cmd.current_dir(&opts.work_dir);
        let suffix = if node == 0 { String::new() } else { format!("-{node}") };
        let log_path = opts.work_dir.join(format!("{}{suffix}.log", kind.slug()));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
        let log_len = log.metadata().map_or(0, |m| m.len());
        cmd.stderr(log.try_clone()?);
        let first_line = matches!(launch.listen, Listen::FirstLine);
        cmd.stdout(if first_line { Stdio::piped() } else { Stdio::from(log) });
        let command = format!(
            "{}{} {}",
            opts.server_cpu.as_ref().map(|c| format!("taskset -c {c} ")).unwrap_or_default(),
            relative(&launch.program),
            launch.args.iter().map(|a| relative(a)).collect::<Vec<_>>().join(" ")
        );
        let mut child = cmd.spawn().with_context(|| format!("cannot start {command}"))?;
        let pid = child.id().context("server exited at once")?;
        let listening = listen(kind, launch.listen, &mut child).await;
        let (addr, api) = listening.map_err(|e| {
            // Say why: the end of what this start wrote to the server's log.
            let text = std::fs::read(&log_path).unwrap_or_default();
            let text = String::from_utf8_lossy(text.get(log_len as usize..).unwrap_or_default());
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            e.context(format!("{} (log {}: {})", command, log_path.display(), tail.join(" | ")))
        })?;
        let ws_url = match kind {
            Kind::Ours | Kind::Ceiling => format!("ws://{addr}/ws"),
            Kind::Peer => format!("ws://{addr}/socket.io/?EIO=3&transport=websocket"),
            Kind::Sockudo | Kind::SockudoTuned => format!("ws://{addr}/app/{}?protocol=7", pusher::APP_KEY),
        };
        Ok(Target { kind, child, pid, addr, ws_url, api, command, config: launch.config })
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

/// A path relative to the working directory (the repository root in `run.sh`) when it is inside.
pub fn relative(path: &str) -> String {
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    match path.strip_prefix(&format!("{cwd}/")) {
        Some(rest) if !cwd.is_empty() => rest.to_owned(),
        _ => path.to_owned(),
    }
}

/// One deployment: `opts.nodes` processes of one kind sharing the fake backend (and Redis).
pub struct Servers {
    pub kind: Kind,
    pub nodes: Vec<Target>,
    pub redis: Option<Redis>,
    backend: SocketAddr,
    http: reqwest::Client,
}

impl Servers {
    pub async fn start(kind: Kind, opts: &Opts, backend: SocketAddr) -> anyhow::Result<Servers> {
        let http = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(64).build()?;
        let mut servers = Servers { kind, nodes: Vec::new(), redis: None, backend, http };
        let mut opts = opts.clone();
        if let (Kind::Ours, Some(bin)) = (kind, &opts.redis_bin) {
            let redis = Redis::start(bin, &opts.work_dir, opts.server_cpu.as_deref()).await?;
            opts.ours_toml.extend(configs::redis_lines(&redis.url()));
            servers.redis = Some(redis);
        }
        for node in 0..opts.nodes.max(1) {
            match Target::start(kind, &opts, node, backend).await {
                Ok(t) => servers.nodes.push(t),
                Err(e) => {
                    servers.stop().await;
                    return Err(e);
                }
            }
        }
        if servers.redis.is_some() {
            if let Err(e) = servers.wait_ready().await {
                servers.stop().await;
                return Err(e);
            }
        }
        Ok(servers)
    }

    /// Waits until every node's `/readyz` answers 200 (its engine is up).
    async fn wait_ready(&self) -> anyhow::Result<()> {
        for t in &self.nodes {
            let url = format!("http://{}/readyz", t.api);
            let mut last = String::new();
            for _ in 0..300 {
                match self.http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        last.clear();
                        break;
                    }
                    Ok(r) => last = format!("HTTP {}", r.status()),
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if !last.is_empty() {
                bail!("node {} is not ready after 30 s: {url}: {last}", t.addr);
            }
        }
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|t| t.pid).collect()
    }

    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().map(|r| r.pid)
    }

    /// RSS of all nodes, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.nodes.iter().map(Target::rss_kib).sum()
    }

    /// The channel clients of `purpose` subscribe to, and messages are published on.
    pub fn channel(&self, purpose: Purpose) -> &'static str {
        match (self.kind, purpose) {
            (Kind::Peer, _) => "private-bench",
            (Kind::Sockudo | Kind::SockudoTuned, Purpose::Connect) => "private-bench",
            _ => "bench",
        }
    }

    /// What a fleet needs to connect to these servers.
    pub fn fleet_spec(&self, sources: Vec<IpAddr>, token_gen: u32, purpose: Purpose) -> FleetSpec {
        let channel = self.channel(purpose);
        FleetSpec {
            proto: match self.kind {
                Kind::Peer => Proto::SocketIo,
                Kind::Sockudo | Kind::SockudoTuned => Proto::Pusher,
                Kind::Ours | Kind::Ceiling => Proto::Ours,
            },
            endpoints: self.nodes.iter().map(|t| Endpoint { addr: t.addr, url: t.ws_url.clone() }).collect(),
            sources,
            token_gen,
            channel: channel.into(),
            auth_url: (self.kind.is_sockudo() && channel.starts_with("private-"))
                .then(|| format!("http://{}/pusher/auth", self.backend)),
        }
    }

    /// The publish body of message `seq` of `round`, stamped `sent_ns`, padded to about `size`
    /// bytes.
    pub fn body(&self, round: u32, seq: u32, sent_ns: u64, size: usize) -> String {
        self.body_on(self.channel(Purpose::Fanout), round, seq, sent_ns, size)
    }

    /// The same on another channel.
    pub fn body_on(&self, channel: &str, round: u32, seq: u32, sent_ns: u64, size: usize) -> String {
        let mut data = json!({ STAMP_KEY: [round, seq, sent_ns], "pad": "" });
        let mut body = self.envelope(channel, &data);
        let pad = size.saturating_sub(body.len());
        if pad > 0 {
            data["pad"] = Value::String("x".repeat(pad));
            body = self.envelope(channel, &data);
        }
        body
    }

    fn envelope(&self, channel: &str, data: &Value) -> String {
        match self.kind {
            Kind::Peer => json!({"channel": channel, "name": "bench", "data": data}).to_string(),
            Kind::Sockudo | Kind::SockudoTuned => pusher::event_body(channel, data),
            Kind::Ours | Kind::Ceiling => {
                json!({"channel": channel, "callback": "benchMessage", "data": data}).to_string()
            }
        }
    }

    /// Publishes one message through node 0; returns the `sent` count when the server reports one.
    pub async fn publish(&self, body: String) -> anyhow::Result<Option<u64>> {
        let api = self.nodes[0].api;
        let url = match self.kind {
            Kind::Ours | Kind::Ceiling => format!("http://{api}/nodejs/publish"),
            Kind::Peer => format!("http://{api}/apps/{PEER_APP_ID}/events?auth_key={PEER_KEY}"),
            Kind::Sockudo | Kind::SockudoTuned => {
                let path = format!("/apps/{}/events", pusher::APP_ID);
                let now = crate::metrics::wall_ns() / 1_000_000_000;
                let query = pusher::signed_query(
                    pusher::APP_KEY,
                    pusher::APP_SECRET,
                    "POST",
                    &path,
                    body.as_bytes(),
                    now,
                );
                format!("http://{api}{path}?{query}")
            }
        };
        let resp = self
            .http
            .post(url)
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

    /// The REST call made during a fan-out to see whether the server keeps answering: its health
    /// or status route. `None` for the ceiling, which has none.
    pub fn probe_request(&self) -> Option<reqwest::RequestBuilder> {
        let api = self.nodes[0].api;
        let url = match self.kind {
            Kind::Ours => format!("http://{api}/nodejs/health/check"),
            Kind::Peer => format!("http://{api}/apps/{PEER_APP_ID}/status?auth_key={PEER_KEY}"),
            Kind::Sockudo | Kind::SockudoTuned => format!("http://{api}/up/{}", pusher::APP_ID),
            Kind::Ceiling => return None,
        };
        Some(self.http.get(url).header("NodejsServiceKey", SERVICE_KEY))
    }

    /// A description of the probe request, for the report.
    pub fn probe_route(kind: Kind) -> &'static str {
        match kind {
            Kind::Ours => "GET /nodejs/health/check (service key)",
            Kind::Peer => "GET /apps/bench/status",
            Kind::Sockudo | Kind::SockudoTuned => "GET /up/bench",
            Kind::Ceiling => "-",
        }
    }

    /// `GET /status.json` of node `node` (drupal-push).
    pub async fn status_json(&self, node: usize) -> anyhow::Result<Value> {
        let url = format!("http://{}/status.json", self.nodes[node].api);
        Ok(self.http.get(url).send().await?.error_for_status()?.json().await?)
    }

    /// `GET /nodejs/{path}` of node `node` with the service key (drupal-push); the JSON answer.
    pub async fn api_get(&self, node: usize, path: &str) -> anyhow::Result<Value> {
        let url = format!("http://{}/nodejs/{path}", self.nodes[node].api);
        let resp = self.http.get(url).header("NodejsServiceKey", SERVICE_KEY).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        anyhow::ensure!(status.is_success() && body["status"] == "success", "{path}: HTTP {status}: {body}");
        Ok(body)
    }

    pub async fn stop(self) {
        for t in self.nodes {
            t.stop().await;
        }
        if let Some(r) = self.redis {
            r.stop().await;
        }
    }
}

/// Waits until the server listens; returns its WebSocket and HTTP API addresses.
async fn listen(kind: Kind, listen: Listen, child: &mut Child) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    Ok(match listen {
        Listen::FirstLine => {
            let line = first_line_of(child).await?;
            match kind {
                Kind::Ceiling => (parse_addr(&line, "ws=")?, parse_addr(&line, "http=")?),
                _ => {
                    let addr = parse_addr(&line, "http://")?;
                    (addr, addr)
                }
            }
        }
        Listen::Port(port) => {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            wait_listening(addr, child).await?;
            (addr, addr)
        }
    })
}

async fn first_line_of(child: &mut Child) -> anyhow::Result<String> {
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
            bail!("the server exited with {status} before listening on {addr} (see its log)");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server is not listening on {addr} after 30 s")
}
