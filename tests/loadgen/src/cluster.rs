//! `drupal-push-bench cluster`: the figures of issue 9, one run, two deployments of drupal-push
//! measured in turn with the same load generator:
//!
//! 1. one node on the memory engine with `--memory-baseline` subscribers (the reference);
//! 2. `--nodes` nodes on the Redis engine sharing one `redis-server` that this run starts (and
//!    stops), `--per-node` connections each.
//!
//! For each: the connections are made by one fleet process per node (`group.rs`: one process
//! may open 20,000 files here), held idle (RSS of all nodes, and Redis's `used_memory` and RSS,
//! before and after); then stamped messages are published through node 0 to all of them
//! (`round.rs`; with 1 and with 10 messages in flight); then publish latency alone is taken on
//! a channel nobody is in (`publish.rs`). With `--check` any client that did not get ready or
//! dropped, any lost, duplicated or stray message and any failed publish fails the run (the
//! smoke test).

use crate::backend::Backend;
use crate::group::{Group, ProcSpec};
use crate::metrics::{loadavg, rss_kib, wall_ns};
use crate::results::{ClusterResult, DeploymentResult, HoldResult, Machine};
use crate::scenario::{self, Ctx, FanoutPlan};
use crate::target::{Kind, Purpose, Servers};
use crate::{ServerArgs, publish};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Clone)]
pub struct ClusterArgs {
    #[command(flatten)]
    servers: ServerArgs,
    /// Connections per node of the Redis deployment (one fleet process per node).
    #[arg(long, default_value_t = 19_000)]
    per_node: usize,
    /// Connections of the one memory-engine node measured first in the same run (0: skip it).
    #[arg(long, default_value_t = 19_000)]
    memory_baseline: usize,
    /// The redis-server binary (Redis 6.2 or later).
    #[arg(long, default_value = "redis-server")]
    redis_bin: PathBuf,
    /// Messages per fan-out round.
    #[arg(long, default_value_t = 100)]
    messages: u32,
    /// Size of each published body, bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Messages in flight per fan-out round.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    windows: Vec<u32>,
    /// Publishes per publish-latency measurement (0: skip them).
    #[arg(long, default_value_t = 1000)]
    publishes: u32,
    /// Publishes in flight, one publish-latency measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    in_flight: Vec<u32>,
    /// Exit non-zero on any client not ready or dropped, any lost, duplicated or stray message,
    /// any failed publish.
    #[arg(long)]
    check: bool,
    /// Where to write the JSON result.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Open files a node or a fleet process needs beside its connections (Redis, listener, logs).
const SPARE_FILES: usize = 200;

pub async fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let most = args.per_node.max(args.memory_baseline);
    if let Some(limit) = open_file_limit() {
        if most + SPARE_FILES > limit {
            bail!(
                "{most} connections per process need about {} open files, this shell allows {limit}: \
                 raise it first (`ulimit -n $(ulimit -Hn)`; tests/bench/run.sh does)",
                most + SPARE_FILES
            );
        }
    }
    let loadavg_before = loadavg();
    let started_unix = wall_ns() / 1_000_000_000;
    let backend = Backend::start("bench", args.servers.anonymous).await?;
    let mut deployments = Vec::new();
    let mut redis_version = String::new();
    if args.memory_baseline > 0 {
        let mut ctx = args.servers.ctx(Kind::Ours, &[], "cluster-memory", backend.clone());
        ctx.opts.nodes = 1;
        let label = "1 node, memory engine";
        deployments.push(deployment(&ctx, args, label, args.memory_baseline, &mut redis_version).await?);
    }
    if args.per_node > 0 {
        let mut ctx = args.servers.ctx(Kind::Ours, &[], "cluster-redis", backend.clone());
        ctx.opts.redis_bin = Some(args.redis_bin.clone());
        let n = ctx.opts.nodes.max(1);
        let label = format!("{n} node{}, Redis engine", if n == 1 { "" } else { "s" });
        deployments.push(deployment(&ctx, args, &label, args.per_node, &mut redis_version).await?);
    }
    let result = ClusterResult {
        version: crate::version(&args.servers, Kind::Ours),
        redis_version,
        loadgen_argv: format!("{}{}", pinning(), crate::argv()),
        machine: Machine::read(),
        started_unix,
        loadavg_before,
        loadavg_after: loadavg(),
        deployments,
    };
    crate::write_json(args.out.as_ref(), &result)?;
    let problems = if args.check { problems(&result) } else { Vec::new() };
    if problems.is_empty() {
        eprintln!("cluster: done");
        return Ok(());
    }
    for p in &problems {
        eprintln!("cluster: FAILED: {p}");
    }
    bail!("{} problem(s)", problems.len())
}

/// `taskset -c LIST ` when this process may run on fewer CPUs than are online (run.sh pins the
/// load generator), so that the recorded command says so.
fn pinning() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(str::trim);
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    match allowed {
        Some(list) if !list.is_empty() && list != online.trim() => format!("taskset -c {list} "),
        _ => String::new(),
    }
}

/// The soft limit of open files of this process (inherited by the servers and fleet processes).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Starts the deployment of `ctx`, measures it, stops it.
async fn deployment(
    ctx: &Ctx,
    args: &ClusterArgs,
    label: &str,
    per_node: usize,
    redis_version: &mut String,
) -> anyhow::Result<DeploymentResult> {
    eprintln!("== cluster: {label}, {per_node} connections per node");
    let servers = ctx.start_servers().await?;
    if let Some(r) = &servers.redis {
        *redis_version = r.version().await;
    }
    // One token generation per process: every client has its own uid.
    let specs: Vec<ProcSpec> = servers
        .fleet_spec(Vec::new(), 0, Purpose::Fanout)
        .endpoints
        .iter()
        .map(|e| ProcSpec {
            url: e.url.clone(),
            clients: per_node,
            token_gen: scenario::token_gen(),
            channel: servers.channel(Purpose::Fanout).into(),
            sources: ctx.sources.len() as u8,
            concurrency: ctx.concurrency,
        })
        .collect();
    let group = match Group::spawn(&specs) {
        Ok(g) => g,
        Err(e) => {
            servers.stop().await;
            return Err(e);
        }
    };
    let measured = measure(ctx, args, &servers, &group, label).await;
    group.stop().await;
    servers.stop().await;
    measured
}

async fn measure(
    ctx: &Ctx,
    args: &ClusterArgs,
    servers: &Servers,
    group: &Group,
    label: &str,
) -> anyhow::Result<DeploymentResult> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = group.clients();
    let rss_before_kib = servers.rss_kib();
    let redis_before = match &servers.redis {
        Some(r) => Some(r.memory().await?),
        None => None,
    };
    let loadgen_before = group.rss_kib() + rss_kib(std::process::id()).unwrap_or(0);
    let limit = ctx.connect_limit * servers.nodes.len() as u32;
    let (wave, _) = group.connect(limit).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_kib = servers.rss_kib();
    let redis_after = match &servers.redis {
        Some(r) => Some(r.memory().await?),
        None => None,
    };
    let loadgen_after = group.rss_kib() + rss_kib(std::process::id()).unwrap_or(0);
    let mut hold =
        HoldResult::measured(total, &wave, (rss_before_kib, rss_after_kib), (loadgen_before, loadgen_after));
    eprintln!("  hold: {hold:?}");
    if let (Some(b), Some(a)) = (redis_before, redis_after) {
        eprintln!(
            "  redis: used_memory {} -> {} bytes, RSS {} -> {} KiB",
            b.used_bytes, a.used_bytes, b.rss_kib, a.rss_kib
        );
    }
    let plan = FanoutPlan {
        sizes: vec![total],
        messages: args.messages,
        body_bytes: args.size,
        windows: args.windows.clone(),
        probe_sizes: Vec::new(),
        probe_every: Duration::from_millis(20),
        // `sent` counts the deliveries of the node asked, node 0.
        expect_sent: Some(group.clients_of(0) as u64),
    };
    let mut notes = Vec::new();
    let fanout = scenario::fanout_at(ctx, servers, group, total, &plan, &mut (1..), &mut notes).await?;
    let mut publish = Vec::new();
    for &in_flight in args.in_flight.iter().filter(|_| args.publishes > 0) {
        let p = publish::latency(servers, args.publishes, in_flight, args.size).await;
        eprintln!("  publish latency: {p:?}");
        publish.push(p);
    }
    let (_, dropped, errors) = group.stats().await?;
    hold.dropped = dropped;
    let node0 = &servers.nodes[0];
    Ok(DeploymentResult {
        label: label.into(),
        engine: if servers.redis.is_some() { "redis" } else { "memory" }.into(),
        nodes: servers.nodes.len(),
        fleet_processes: servers.nodes.len(),
        command: node0.command.clone(),
        config: node0.config.clone(),
        redis_command: servers.redis.as_ref().map(|r| r.command.clone()),
        hold,
        redis_before,
        redis_after,
        fanout,
        publish,
        errors,
        notes,
    })
}

/// What `--check` fails on.
fn problems(result: &ClusterResult) -> Vec<String> {
    let mut out = Vec::new();
    for d in &result.deployments {
        let h = &d.hold;
        if h.ready != h.clients || h.dropped != 0 {
            out.push(format!("{}: {} of {} ready, {} dropped", d.label, h.ready, h.clients, h.dropped));
        }
        if d.fanout.is_empty() {
            out.push(format!("{}: no fan-out round ran", d.label));
        }
        for f in &d.fanout {
            if f.lost + f.duplicated + f.stray + f.publish_errors + f.sent_mismatch != 0 || f.stalled {
                out.push(format!(
                    "{}: fan-out window {}: lost {}, duplicated {}, stray {}, publish errors {}, sent mismatches {}{}",
                    d.label,
                    f.window,
                    f.lost,
                    f.duplicated,
                    f.stray,
                    f.publish_errors,
                    f.sent_mismatch,
                    if f.stalled { ", stalled" } else { "" }
                ));
            }
        }
        for p in d.publish.iter().filter(|p| p.errors != 0) {
            out.push(format!(
                "{}: publish latency, {} in flight: {} errors ({})",
                d.label,
                p.in_flight,
                p.errors,
                p.first_error.as_deref().unwrap_or("")
            ));
        }
        if d.engine == "redis" && d.redis_after.is_none_or(|r| r.used_bytes == 0) {
            out.push(format!("{}: no Redis memory figure", d.label));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_and_pinning_are_read() {
        assert!(super::open_file_limit().is_some_and(|n| n > 0));
        let pin = super::pinning();
        assert!(pin.is_empty() || (pin.starts_with("taskset -c ") && pin.ends_with(' ')), "{pin:?}");
    }
}
