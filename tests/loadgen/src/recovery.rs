//! Issue 8's figures, against drupal-push only (the peers have no recovery of this kind):
//!
//! * **storm**: N clients connect and authenticate, their TCP connections are cut (no close
//!   frame), `missed` messages are published to their channel, and all N reconnect at once
//!   with their positions: time until every client has recovered every missed message, the
//!   server's CPU and RSS, lost and duplicated messages, `recovered` flags, backend calls.
//! * **memory**: `channels` channels × `per_channel` messages of `body` bytes published against
//!   the default `historyMaxBytes`: RSS and the server's `historyBytes` after, and what recovery
//!   reports for a position taken before the flood on the first channel (its history is the
//!   oldest, so the cap evicted it) and for one taken on the last channel before the flood's
//!   last round (its missed message is among the newest, still held).
//!
//! These clients are plain tokio-tungstenite connections (not the fleet's hot path): the
//! figures are about the server's recovery, and each client parses every frame to check order.

use crate::backend::{Backend, uid_of};
use crate::metrics::{CpuPair, Histogram, rss_kib, wall_ns};
use crate::target::{Kind, Servers};
use crate::{ServerArgs, write_json};
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Token generation of the clients (any number the backend's rule accepts).
const TOKEN_GEN: u64 = 81;
/// Longest a client waits for one frame.
const FRAME_WAIT: Duration = Duration::from_secs(60);

#[derive(Args, Clone)]
pub struct RecoveryArgs {
    #[command(flatten)]
    servers: ServerArgs,
    /// Clients of the reconnect storm (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Messages each client misses while cut.
    #[arg(long, default_value_t = 20)]
    missed: u32,
    /// Channels of the memory scenario (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    channels: usize,
    /// Messages per channel in the memory scenario.
    #[arg(long, default_value_t = 50)]
    per_channel: u32,
    /// Bytes of padding per message in the memory scenario.
    #[arg(long, default_value_t = 300)]
    body: usize,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct StormResult {
    pub clients: usize,
    pub missed_each: u32,
    /// Clients whose `authenticated` said `recovered: true` for the channel.
    pub recovered_true: usize,
    pub failed: usize,
    /// From the first reconnect to the last client holding all its missed messages.
    pub all_recovered_secs: f64,
    pub per_client_p50_ms: f64,
    pub per_client_p99_ms: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub server_cpu_percent: f64,
    pub server_rss_kib_before: u64,
    pub server_rss_kib_after: u64,
    pub backend_auth_calls: u64,
}

#[derive(Debug, Serialize)]
pub struct MemoryResult {
    pub channels: usize,
    pub per_channel: u32,
    pub body_bytes: usize,
    pub payload_mib: f64,
    pub publish_secs: f64,
    pub publish_errors: u64,
    pub server_rss_kib_before: u64,
    pub server_rss_kib_after: u64,
    pub history_bytes_after: u64,
    /// `recovered` for a position on the first channel taken before the flood.
    pub oldest_channel_recovered: Option<bool>,
    /// `recovered` for a position on the last channel taken before the flood's last round, and
    /// how many messages were replayed (1 expected).
    pub newest_channel_recovered: Option<bool>,
    pub newest_channel_replayed: usize,
}

#[derive(Debug, Serialize)]
pub struct RecoveryResult {
    pub command: String,
    pub machine: crate::results::Machine,
    pub loadavg_before: String,
    pub storm: Option<StormResult>,
    pub memory: Option<MemoryResult>,
}

pub async fn run(args: &RecoveryArgs) -> anyhow::Result<()> {
    let loadavg_before = crate::metrics::loadavg();
    let backend = Backend::start("bench", false).await?;
    let storm = if args.clients > 0 { Some(storm(args, backend.clone()).await?) } else { None };
    let memory = if args.channels > 0 { Some(memory(args, backend).await?) } else { None };
    let result = RecoveryResult {
        command: crate::argv(),
        machine: crate::results::Machine::read(),
        loadavg_before,
        storm,
        memory,
    };
    write_json(args.out.as_ref(), &result)
}

fn token(idx: usize) -> String {
    format!("bench-{TOKEN_GEN}-{idx}")
}

async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        let frame = tokio::time::timeout(FRAME_WAIT, ws.next()).await?;
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t)?;
                if v["type"] == "ping" {
                    ws.send(Message::text(r#"{"type":"pong"}"#)).await?;
                    continue;
                }
                return Ok(v);
            }
            Some(Ok(Message::Close(c))) => anyhow::bail!("closed: {c:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => anyhow::bail!("{e}"),
            None => anyhow::bail!("connection ended"),
        }
    }
}

/// Connects and authenticates (with `positions` after a reconnect); returns the socket and
/// the `authenticated` frame, after `clientAuthenticated`.
async fn connect(url: &str, token: &str, positions: Option<&Value>) -> anyhow::Result<(Ws, Value)> {
    let (mut ws, _) = tokio::time::timeout(FRAME_WAIT, tokio_tungstenite::connect_async(url)).await??;
    let hello = next_json(&mut ws).await?;
    anyhow::ensure!(hello["type"] == "hello", "expected hello, got {hello}");
    let mut auth = json!({"type": "authenticate", "authToken": token});
    if let Some(p) = positions {
        auth["positions"] = p.clone();
    }
    ws.send(Message::text(auth.to_string())).await?;
    let ack = next_json(&mut ws).await?;
    anyhow::ensure!(ack["type"] == "authenticated", "expected authenticated, got {ack}");
    let m = next_json(&mut ws).await?;
    anyhow::ensure!(
        m["message"]["callback"] == "clientAuthenticated",
        "expected clientAuthenticated, got {m}"
    );
    Ok((ws, ack))
}

/// Moves `positions` to a message envelope's position.
fn track(positions: &mut Value, frame: &Value) {
    let stream = frame["stream"].as_str().or(frame["channel"].as_str());
    if let (Some(stream), Some(offset), Some(epoch)) =
        (stream, frame["offset"].as_u64(), frame["epoch"].as_str())
    {
        positions[stream] = json!({"offset": offset, "epoch": epoch});
    }
}

async fn start(args: &RecoveryArgs, backend: Arc<Backend>, sub: &str) -> anyhow::Result<Servers> {
    let ctx = args.servers.ctx(Kind::Ours, &[], sub, backend);
    ctx.start_servers().await
}

async fn storm(args: &RecoveryArgs, backend: Arc<Backend>) -> anyhow::Result<StormResult> {
    let servers = start(args, backend.clone(), "recovery-storm").await?;
    let url = servers.nodes[0].ws_url.clone();
    let n = args.clients;
    eprintln!("recovery storm: connecting {n} clients");
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::new();
    for idx in 0..n {
        let (url, gate) = (url.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            let (ws, ack) = connect(&url, &token(idx), None).await?;
            anyhow::Ok((ws, ack["streams"].clone()))
        }));
    }
    let mut first = Vec::new();
    for t in tasks {
        first.push(t.await??);
    }
    // Cut every connection (no close frame) and wait until the server has seen them go.
    let positions: Vec<Value> = first.into_iter().map(|(ws, p)| (drop(ws), p).1).collect();
    wait_sockets(&servers, 0).await?;
    for i in 0..args.missed {
        let body = json!({"channel": "bench", "callback": "bench", "data": {"i": i}});
        servers.publish(body.to_string()).await?;
    }
    let calls_before = backend.auth_calls();
    let rss_before = servers.nodes.iter().filter_map(|t| rss_kib(t.pid)).sum();
    eprintln!("recovery storm: {n} clients reconnect at once, each missed {}", args.missed);
    let cpu = CpuPair::start(&servers.pids());
    let started = Instant::now();
    let latency = Arc::new(Histogram::default());
    let (lost, dup, disorder, recovered) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let gate = Arc::new(Semaphore::new(args.servers.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (idx, mut pos) in positions.into_iter().enumerate() {
        let (url, gate, latency) = (url.clone(), gate.clone(), latency.clone());
        let (lost, dup, disorder, recovered) =
            (lost.clone(), dup.clone(), disorder.clone(), recovered.clone());
        let missed = args.missed;
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire().await;
            let (mut ws, ack) = connect(&url, &token(idx), Some(&pos)).await?;
            drop(permit);
            if ack["recovered"]["bench"] == true {
                recovered.fetch_add(1, Relaxed);
            }
            let mut seen = vec![0u32; missed as usize];
            let mut next = 0u64;
            while seen.contains(&0) {
                let f = next_json(&mut ws).await?;
                track(&mut pos, &f);
                let Some(i) = f["message"]["data"]["i"].as_u64() else { continue };
                if i != next {
                    disorder.fetch_add(1, Relaxed);
                }
                next = i + 1;
                seen[i as usize] += 1;
            }
            latency.record(started.elapsed().as_micros() as u64);
            dup.fetch_add(seen.iter().map(|c| u64::from(c.saturating_sub(1))).sum(), Relaxed);
            lost.fetch_add(seen.iter().filter(|c| **c == 0).count() as u64, Relaxed);
            anyhow::Ok(ws)
        }));
    }
    let mut held = Vec::new();
    let mut failed = 0;
    for t in tasks {
        match t.await? {
            Ok(ws) => held.push(ws),
            Err(e) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("recovery storm: a client failed: {e:#}");
                }
            }
        }
    }
    let all_secs = started.elapsed().as_secs_f64();
    let (server_cpu, _) = cpu.read();
    let rss_after = servers.nodes.iter().filter_map(|t| rss_kib(t.pid)).sum();
    // A client that failed lost its messages too.
    let lost = lost.load(Relaxed) + failed as u64 * u64::from(args.missed);
    drop(held);
    servers.stop().await;
    let (p50, p99, _) = latency.summary_ms();
    Ok(StormResult {
        clients: n,
        missed_each: args.missed,
        recovered_true: recovered.load(Relaxed) as usize,
        failed,
        all_recovered_secs: all_secs,
        per_client_p50_ms: p50,
        per_client_p99_ms: p99,
        lost,
        duplicated: dup.load(Relaxed),
        out_of_order: disorder.load(Relaxed),
        server_cpu_percent: server_cpu,
        server_rss_kib_before: rss_before,
        server_rss_kib_after: rss_after,
        backend_auth_calls: backend.auth_calls() - calls_before,
    })
}

/// Polls `/status.json` until the server counts `sockets` authenticated sockets.
async fn wait_sockets(servers: &Servers, sockets: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = servers.status_json(0).await?;
        if status["sockets"].as_u64() == Some(sockets) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the server still counts {} sockets", status["sockets"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A probe of the memory scenario: user `9_000_000 + k` joins `channel` and leaves; returns its
/// token and its positions (the channel's from the `joined` frame).
async fn probe(servers: &Servers, url: &str, k: usize, channel: &str) -> anyhow::Result<(String, Value)> {
    let tok = format!("bench-{TOKEN_GEN}-{}", 9_000_000 + k);
    let uid = uid_of(&tok).unwrap_or(0);
    let (mut ws, ack) = connect(url, &tok, None).await?;
    let mut pos = ack["streams"].clone();
    servers.api_get(0, &format!("user/channel/add/{channel}/{uid}")).await?;
    loop {
        let f = next_json(&mut ws).await?;
        if f["type"] == "joined" && f["stream"] == channel {
            pos[channel] = json!({"offset": f["offset"], "epoch": f["epoch"]});
            return Ok((tok, pos));
        }
    }
}

/// Publishes messages `from..to` of the flood, 16 at a time: message `k` is message
/// `k / channels` of channel `mem_{k % channels}` (message m of every channel before message
/// m + 1 of any, so the first channel's history is the oldest throughout). Returns the errors.
async fn flood(servers: &Arc<Servers>, from: u64, to: u64, channels: u64, pad: &str) -> anyhow::Result<u64> {
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(from));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (servers, errors, next, pad) = (servers.clone(), errors.clone(), next.clone(), pad.to_owned());
        workers.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Relaxed);
                if k >= to {
                    return;
                }
                let (m, ch) = (k / channels, k % channels);
                let body = json!({"channel": format!("mem_{ch}"), "callback": "bench",
                                  "data": {"m": m, "at": wall_ns(), "pad": pad}});
                if servers.publish(body.to_string()).await.is_err() {
                    errors.fetch_add(1, Relaxed);
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    Ok(errors.load(Relaxed))
}

async fn memory(args: &RecoveryArgs, backend: Arc<Backend>) -> anyhow::Result<MemoryResult> {
    let servers = Arc::new(start(args, backend, "recovery-memory").await?);
    let url = servers.nodes[0].ws_url.clone();
    let (first, last) = ("mem_0".to_owned(), format!("mem_{}", args.channels - 1));
    let channels = args.channels as u64;
    let total = channels * u64::from(args.per_channel);
    let pad = "x".repeat(args.body);
    // The first probe takes its position before the flood (its channel's history is the oldest,
    // so the cap evicts it); the second just before the flood's last round (its one missed
    // message is among the newest, still held).
    let (tok0, pos0) = probe(&servers, &url, 0, &first).await?;
    wait_sockets(&servers, 0).await?;
    let rss_before = rss_kib(servers.nodes[0].pid).unwrap_or(0);
    eprintln!("history memory: publishing {total} messages of {} bytes", args.body);
    let started = Instant::now();
    let mut errors = flood(&servers, 0, total - channels, channels, &pad).await?;
    let (tok1, pos1) = probe(&servers, &url, 1, &last).await?;
    errors += flood(&servers, total - channels, total, channels, &pad).await?;
    let publish_secs = started.elapsed().as_secs_f64();
    wait_sockets(&servers, 0).await?;
    let rss_after = rss_kib(servers.nodes[0].pid).unwrap_or(0);
    let status = servers.status_json(0).await?;
    let mut outcomes = Vec::new();
    for (tok, channel, pos) in [(&tok0, &first, &pos0), (&tok1, &last, &pos1)] {
        let (mut ws, ack) = connect(&url, tok, Some(pos)).await?;
        let recovered = ack["recovered"][channel.as_str()].as_bool();
        let mut replayed = 0;
        if recovered == Some(true) {
            // The second probe missed exactly the last round's message of its channel.
            while replayed < 1 {
                let f = next_json(&mut ws).await?;
                if f["channel"] == channel.as_str() {
                    replayed += 1;
                }
            }
        }
        outcomes.push((recovered, replayed));
    }
    if let Ok(s) = Arc::try_unwrap(servers) {
        s.stop().await;
    }
    Ok(MemoryResult {
        channels: args.channels,
        per_channel: args.per_channel,
        body_bytes: args.body,
        payload_mib: (total * args.body as u64) as f64 / (1024.0 * 1024.0),
        publish_secs,
        publish_errors: errors,
        server_rss_kib_before: rss_before,
        server_rss_kib_after: rss_after,
        history_bytes_after: status["historyBytes"].as_u64().unwrap_or(0),
        oldest_channel_recovered: outcomes[0].0,
        newest_channel_recovered: outcomes[1].0,
        newest_channel_replayed: outcomes[1].1,
    })
}
