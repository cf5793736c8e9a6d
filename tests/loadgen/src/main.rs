//! `drupal-push-bench`: load generator and benchmarks of drupal-push, against the same scenarios
//! run on laravel-echo-server (the Node + socket.io 2 peer), on Sockudo (a Rust server of the
//! Pusher protocol) and on a raw broadcaster (the ceiling of this machine). Loopback only; every
//! run is bounded in count and time.
//!
//! Subcommands: `suite` (run the scenarios against one server, write JSON), `interleave` (one
//! sequential fan-out size, two server variants alternating, their ratio), `cluster` (several
//! nodes on one Redis against one node on the memory engine, issue 9), `report` (render
//! `RESULTS.md` from the JSON of one run), `smoke` (a small run against drupal-push that fails on
//! any lost or duplicated message), `broadcaster` (the ceiling server), `fleet` (clients in a
//! process of their own, driven by `cluster`).
//!
//! Modules: [`fleet`] (simulated browsers and their shared counters), [`client`] (one
//! browser's task, every protocol), [`wire`] (its WebSocket transport), [`pusher`] (Pusher
//! signatures and frames), [`backend`] (the fake Drupal), [`configs`] and [`target`] (starting
//! the servers, publishing), [`redis`] (a deployment's redis-server), [`scenario`] (connect,
//! hold, fan-out), [`round`] (one fan-out round), [`publish`] (publish latency alone),
//! [`interleave`], [`recovery`], [`cluster`] with [`child`] and [`group`] (fleets in child
//! processes),
//! [`ceiling`] (raw broadcaster), [`metrics`] (histogram, /proc), [`results`], [`report`],
//! [`tables`] and [`cluster_tables`]. Start at [`suite`].

mod backend;
mod ceiling;
mod child;
mod client;
mod cluster;
mod cluster_tables;
mod configs;
mod fleet;
mod group;
mod interleave;
mod metrics;
mod publish;
mod pusher;
mod recovery;
mod redis;
mod report;
mod results;
mod round;
mod scenario;
mod tables;
mod target;
mod wire;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use results::{Machine, SuiteResult};
use scenario::{Ctx, FanoutPlan};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use target::Kind;

#[derive(Parser)]
#[command(name = "drupal-push-bench", about = "Load generator and benchmarks of drupal-push.")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the scenarios against one server and write the results as JSON.
    Suite(SuiteArgs),
    /// A small run against drupal-push; exits non-zero on any failure, loss or duplicate.
    Smoke(SuiteArgs),
    /// One sequential fan-out size, two server variants alternating; writes their ratio as JSON.
    Interleave(interleave::InterleaveArgs),
    /// Issue 8's figures: a reconnect storm with recovery, and history memory under its cap.
    Recovery(recovery::RecoveryArgs),
    /// Render RESULTS.md from suite results.
    Report(report::ReportArgs),
    /// Several nodes on one Redis against one node on the memory engine (issue 9); JSON.
    Cluster(cluster::ClusterArgs),
    /// The ceiling: a raw WebSocket broadcaster (prints its ports, serves until killed).
    Broadcaster,
    /// Clients in a process of their own, driven over stdin/stdout by `cluster`.
    Fleet(child::FleetArgs),
}

/// How servers are started and clients connect, for every subcommand that runs servers.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The drupal-push binary.
    #[arg(long, default_value = "target/release/drupal-push")]
    server_bin: PathBuf,
    /// Where laravel-echo-server is installed (node_modules inside).
    #[arg(long, default_value = "tests/bench/peer")]
    peer_dir: PathBuf,
    /// The Sockudo binary (`tests/bench/run.sh` installs it).
    #[arg(long, default_value = "tests/bench/sockudo/bin/sockudo")]
    sockudo_bin: PathBuf,
    /// Where configs and server logs go (default: a directory of this process under the
    /// system's temporary directory, so that runs of several worktrees on one machine never
    /// share config files).
    #[arg(long, default_value_os_t = std::env::temp_dir().join(format!("drupal-push-bench-{}", std::process::id())))]
    work_dir: PathBuf,
    /// Pin the server to these CPUs (`taskset -c`).
    #[arg(long)]
    server_cpu: Option<String>,
    /// An extra top-level line for drupal-push's TOML (repeatable), e.g. `historySize = 0`.
    #[arg(long = "ours-toml")]
    ours_toml: Vec<String>,
    /// Server processes per deployment, sharing the backend; clients are spread over them and
    /// messages published to the first. Fan-out across nodes needs the Redis engine, which
    /// `cluster` sets up (a redis-server of its own); with the memory engine only node 0's
    /// subscribers get messages.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Client source addresses 127.0.0.1 .. 127.0.0.N, round-robin (0: the kernel's choice,
    /// enough for ~28k connections per server port). Needed past that.
    #[arg(long, default_value_t = 0)]
    sources: u8,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Seconds without a delivery before a round is abandoned.
    #[arg(long, default_value_t = 10)]
    stall_secs: u64,
    /// The backend answers uid 0 for every client (anonymous visitors: no presence, no
    /// `userOnline`/`userOffline` calls) instead of one uid per client.
    #[arg(long)]
    anonymous: bool,
}

impl ServerArgs {
    /// The context of scenarios against `kind`, with `extra_toml` after `--ours-toml`, its files
    /// in `work_dir/<sub>`.
    pub fn ctx(&self, kind: Kind, extra_toml: &[String], sub: &str, backend: Arc<backend::Backend>) -> Ctx {
        Ctx {
            kind,
            opts: target::Opts {
                server_bin: self.server_bin.clone(),
                peer_dir: self.peer_dir.clone(),
                sockudo_bin: self.sockudo_bin.clone(),
                work_dir: std::path::absolute(&self.work_dir)
                    .unwrap_or_else(|_| self.work_dir.clone())
                    .join(sub),
                server_cpu: self.server_cpu.clone(),
                ours_toml: self.ours_toml.iter().chain(extra_toml).cloned().collect(),
                nodes: self.nodes,
                redis_bin: None,
            },
            backend,
            sources: (1..=self.sources).map(|i| IpAddr::from([127, 0, 0, i])).collect(),
            concurrency: self.concurrency,
            connect_limit: Duration::from_secs(180),
            stall: Duration::from_secs(self.stall_secs),
            errors: Default::default(),
        }
    }
}

#[derive(Args, Clone)]
struct SuiteArgs {
    #[command(flatten)]
    servers: ServerArgs,
    /// Which server to measure.
    #[arg(long, value_enum, default_value = "ours")]
    target: Kind,
    /// Clients of the connect scenario (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    connect: usize,
    /// Idle connections held (0: skip hold and fan-out).
    #[arg(long, default_value_t = 19_000)]
    hold: usize,
    /// Fan-out subscriber counts (each at most `hold`).
    #[arg(long, value_delimiter = ',', default_value = "19000,10000,1000")]
    fanout: Vec<usize>,
    /// Messages per fan-out round.
    #[arg(long, default_value_t = 100)]
    messages: u32,
    /// Size of each published body, bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Messages in flight per round (1 is sequential).
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    windows: Vec<u32>,
    /// Fan-out sizes at which one more sequential round runs while a REST call (the server's
    /// health or status route) is timed.
    #[arg(long, value_delimiter = ',')]
    probe_sizes: Vec<usize>,
    /// Milliseconds between the starts of two REST probe calls.
    #[arg(long, default_value_t = 20)]
    probe_ms: u64,
    /// Where to write the JSON results.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Cmd::Suite(args) => {
                let result = suite(&args).await?;
                write_json(args.out.as_ref(), &result)
            }
            Cmd::Smoke(args) => smoke(&args).await,
            Cmd::Interleave(args) => interleave::run(&args).await,
            Cmd::Recovery(args) => recovery::run(&args).await,
            Cmd::Report(args) => report::render(&args),
            Cmd::Cluster(args) => cluster::run(&args).await,
            Cmd::Broadcaster => ceiling::serve().await,
            Cmd::Fleet(args) => child::serve(&args).await,
        }
    })
}

pub fn write_json<T: serde::Serialize>(out: Option<&PathBuf>, result: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(result)?;
    match out {
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// This process's command line, paths relative to the working directory.
pub fn argv() -> String {
    std::env::args().map(|a| target::relative(&a)).collect::<Vec<_>>().join(" ")
}

/// Runs connect, then hold + fan-out, against a fresh server each.
async fn suite(args: &SuiteArgs) -> anyhow::Result<SuiteResult> {
    let loadavg_before = metrics::loadavg();
    let backend = backend::Backend::start("bench", args.servers.anonymous).await?;
    let ctx = args.servers.ctx(args.target, &[], args.target.slug(), backend);
    let version = version(&args.servers, args.target);
    eprintln!("== {}: {version}", args.target.slug());
    let connect = if args.connect > 0 { scenario::connect(&ctx, args.connect).await? } else { Vec::new() };
    let plan = FanoutPlan {
        sizes: args.fanout.clone(),
        messages: args.messages,
        body_bytes: args.size,
        windows: args.windows.clone(),
        probe_sizes: args.probe_sizes.clone(),
        probe_every: Duration::from_millis(args.probe_ms.max(1)),
        expect_sent: None,
    };
    let (hold, fanout, notes) = if args.hold > 0 {
        let (h, f, n) = scenario::hold_and_fanout(&ctx, args.hold, &plan).await?;
        (Some(h), f, n)
    } else {
        (None, Vec::new(), Vec::new())
    };
    let (command, config) = describe(&ctx).await;
    Ok(SuiteResult {
        kind: args.target,
        version,
        command,
        config,
        loadgen_argv: argv(),
        machine: Machine::read(),
        started_unix: metrics::wall_ns() / 1_000_000_000,
        loadavg_before,
        loadavg_after: metrics::loadavg(),
        connect,
        hold,
        fanout,
        errors: ctx.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        notes,
    })
}

/// The command line and configuration of the server, from one more short-lived start.
pub async fn describe(ctx: &Ctx) -> (String, String) {
    match target::Target::start(ctx.kind, &ctx.opts, 0, ctx.backend.addr).await {
        Ok(t) => {
            let out = (t.command.clone(), t.config.clone());
            t.stop().await;
            out
        }
        Err(e) => (format!("(cannot start: {e:#})"), String::new()),
    }
}

pub fn version(args: &ServerArgs, kind: Kind) -> String {
    let run = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let package = |name: &str| {
        let path = args.peer_dir.join("node_modules").join(name).join("package.json");
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into())
    };
    match kind {
        Kind::Ours => run(&args.server_bin.display().to_string(), "--version"),
        Kind::Peer => format!(
            "laravel-echo-server {} (socket.io {}, engine.io {}, ws {}) on node {}",
            package("laravel-echo-server"),
            package("socket.io"),
            package("engine.io"),
            package("ws"),
            run("node", "--version")
        ),
        Kind::Sockudo | Kind::SockudoTuned => {
            let v = run(&args.sockudo_bin.display().to_string(), "--version");
            let settings = if kind == Kind::Sockudo { "default settings" } else { "documented buffer settings" };
            format!("{v} (crates.io, default features; {settings})")
        }
        Kind::Ceiling => {
            "raw broadcaster (drupal-push-bench broadcaster: tokio, one pre-encoded frame, one write per socket and batch)".into()
        }
    }
}

/// The CI smoke run: small, against drupal-push; any failure, loss or duplicate is an error.
async fn smoke(args: &SuiteArgs) -> anyhow::Result<()> {
    let result = suite(args).await?;
    write_json(args.out.as_ref(), &result)?;
    let mut problems = Vec::new();
    for c in &result.connect {
        if c.ready != c.clients {
            problems.push(format!("connect {}: {} of {} clients ready", c.round, c.ready, c.clients));
        }
        if c.round == "cached" && args.target == Kind::Ours && c.backend_auth_calls != 0 {
            problems
                .push(format!("cached reconnect made {} backend authenticate calls", c.backend_auth_calls));
        }
    }
    if let Some(h) = &result.hold {
        if h.ready != h.clients || h.dropped != 0 {
            problems.push(format!("hold: {} of {} ready, {} dropped", h.ready, h.clients, h.dropped));
        }
    }
    for f in &result.fanout {
        if f.lost != 0 || f.duplicated != 0 || f.stray != 0 || f.publish_errors != 0 || f.sent_mismatch != 0 {
            problems.push(format!(
                "fanout {} subscribers, window {}: lost {}, duplicated {}, stray {}, publish errors {}, sent mismatches {}",
                f.subscribers, f.window, f.lost, f.duplicated, f.stray, f.publish_errors, f.sent_mismatch
            ));
        }
        if let Some(p) = &f.probe {
            if p.calls == 0 || p.errors != 0 {
                problems.push(format!("REST probe during fan-out: {} calls, {} errors", p.calls, p.errors));
            }
        }
    }
    if result.fanout.is_empty() {
        problems.push("no fan-out round ran".into());
    }
    let probes = result.fanout.iter().filter(|f| f.probe.is_some()).count();
    if probes != args.probe_sizes.iter().filter(|s| **s <= args.hold && args.fanout.contains(s)).count() {
        problems.push(format!("{probes} fan-out rounds with a REST probe, expected one per --probe-sizes"));
    }
    if problems.is_empty() {
        eprintln!("smoke: OK");
        return Ok(());
    }
    for p in &problems {
        eprintln!("smoke: FAILED: {p}");
    }
    bail!("{} problem(s)", problems.len())
}
