//! The scenarios, each against a freshly started deployment ([`Servers`]):
//!
//! * [`connect`]: N clients connect and authenticate (`cold`: new tokens, one backend call
//!   each), all close, then the same N reconnect with the same tokens (`cached`).
//! * [`hold_and_fanout`]: N clients connect and stay idle (server RSS before/after); then the
//!   fleet shrinks through the fan-out sizes, largest first, and at each size M stamped messages
//!   are published with 1 and with `window` messages in flight (rounds: [`crate::round`]); at the
//!   sizes of `probe_sizes` one more sequential round runs while a REST call is timed.
//! * `interleave` (its own module) repeats hold + one fan-out size for two server variants,
//!   alternating, and compares them.
//! * `cluster` (its own module, issue 9) holds and fans out over several nodes on one Redis,
//!   one fleet process per node, and over one node on the memory engine for comparison.
//!
//! A new scenario is a function here taking a [`Ctx`] and returning its own result type: it
//! starts [`Servers`], connects a [`Fleet`], drives it, stops the servers; `SuiteResult` gets
//! an optional field (`#[serde(default)]`, so older JSON still loads), `suite` in `main.rs` a
//! flag that runs it, and the report a table. What a client sends and checks belongs in
//! `client.rs` (a protocol step like Pusher's `Authorize`), its counters in `fleet.rs`; clients
//! in processes of their own are driven through `group.rs`.

use crate::backend::Backend;
use crate::fleet::Fleet;
use crate::metrics::{CpuPair, rss_kib};
use crate::results::{ConnectResult, FanoutResult, HoldResult};
use crate::round::{self, Audience, RoundSpec};
use crate::target::{Kind, Opts, Purpose, Servers};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

/// Shared by all scenarios of a run against one kind of server.
pub struct Ctx {
    pub kind: Kind,
    pub opts: Opts,
    pub backend: Arc<Backend>,
    pub sources: Vec<IpAddr>,
    pub concurrency: usize,
    /// Longest a connect wave may take.
    pub connect_limit: Duration,
    /// A round is abandoned when no delivery arrived for this long.
    pub stall: Duration,
    /// Client errors seen by any fleet, for the report.
    pub errors: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    pub async fn start_servers(&self) -> anyhow::Result<Servers> {
        Servers::start(self.kind, &self.opts, self.backend.addr).await
    }
}

static NEXT_GEN: AtomicU32 = AtomicU32::new(1);

/// A new token generation: clients of different generations have different tokens and uids.
pub fn token_gen() -> u32 {
    NEXT_GEN.fetch_add(1, Relaxed)
}

/// Fan-out parameters.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    pub sizes: Vec<usize>,
    pub messages: u32,
    pub body_bytes: usize,
    pub windows: Vec<u32>,
    /// Sizes at which a REST call is timed during one more sequential round.
    pub probe_sizes: Vec<usize>,
    pub probe_every: Duration,
    /// What each publish's `sent` should say (`None`: the subscriber count).
    pub expect_sent: Option<u64>,
}

pub async fn connect(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<ConnectResult>> {
    let servers = ctx.start_servers().await?;
    let token_gen = token_gen();
    let mut out = Vec::new();
    for round in ["cold", "cached"] {
        let spec = servers.fleet_spec(ctx.sources.clone(), token_gen, Purpose::Connect);
        let fleet = Fleet::new(spec, n, ctx.concurrency);
        ctx.backend.set_fleet(Some(fleet.clone()));
        let calls = ctx.backend.auth_calls();
        let cpu = CpuPair::start(&servers.pids());
        let wave = fleet.connect_all(ctx.connect_limit).await;
        let (server_cpu, loadgen_cpu) = cpu.read();
        let (p50_ms, p99_ms, max_ms) = fleet.connect_latency.summary_ms();
        let result = ConnectResult {
            round: round.into(),
            clients: n,
            ready: wave.ready,
            failed: wave.failed,
            secs: wave.secs,
            per_sec: wave.ready as f64 / wave.secs,
            p50_ms,
            p99_ms,
            max_ms,
            backend_auth_calls: ctx.backend.auth_calls() - calls,
            server_cpu,
            loadgen_cpu,
        };
        report_errors(ctx, &fleet, &format!("connect {round}"));
        eprintln!("  connect {round}: {result:?}");
        out.push(result);
        fleet.shrink(0).await;
        ctx.backend.set_fleet(None);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    servers.stop().await;
    Ok(out)
}

/// The rounds at one fan-out size, the subscribers connected: a warm-up message (up to three
/// tries until every subscriber got it), then one round per window, then one with a REST probe
/// when `plan.probe_sizes` has the size. Round ids come from `ids`.
pub async fn fanout_at(
    ctx: &Ctx,
    servers: &Servers,
    audience: &impl Audience,
    size: usize,
    plan: &FanoutPlan,
    ids: &mut std::ops::RangeFrom<u32>,
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<FanoutResult>> {
    let mut next_id = || ids.next().unwrap_or(u32::MAX);
    let spec = |id, msgs, window| RoundSpec {
        expect_sent: plan.expect_sent,
        ..RoundSpec::new(id, size, msgs, plan.body_bytes, window)
    };
    let mut out = Vec::new();
    let mut warm = false;
    for _ in 0..3 {
        let r = round::run(ctx, servers, audience, &spec(next_id(), 1, 1)).await?;
        if r.lost == 0 {
            warm = true;
            break;
        }
        notes.push(format!("{size} subscribers: warm-up message reached {} of {size}", r.delivered));
    }
    if !warm {
        notes.push(format!("{size} subscribers: not every subscriber got a warm-up message"));
    }
    for &window in &plan.windows {
        let r = round::run(ctx, servers, audience, &spec(next_id(), plan.messages, window)).await?;
        eprintln!("  fanout: {r:?}");
        out.push(r);
    }
    if plan.probe_sizes.contains(&size) && servers.probe_request().is_some() {
        let spec = RoundSpec { probe_every: Some(plan.probe_every), ..spec(next_id(), plan.messages, 1) };
        let r = round::run(ctx, servers, audience, &spec).await?;
        eprintln!("  fanout with REST probe: {r:?}");
        out.push(r);
    }
    Ok(out)
}

fn report_errors(ctx: &Ctx, fleet: &Fleet, phase: &str) {
    for e in fleet.errors() {
        eprintln!("    client error ({phase}): {e}");
        ctx.errors.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{phase}: {e}"));
    }
}

pub async fn hold_and_fanout(
    ctx: &Ctx,
    n: usize,
    plan: &FanoutPlan,
) -> anyhow::Result<(HoldResult, Vec<FanoutResult>, Vec<String>)> {
    let servers = ctx.start_servers().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = servers.rss_kib();
    let loadgen_before = rss_kib(std::process::id()).unwrap_or(0);
    let token_gen = token_gen();
    let fleet =
        Fleet::new(servers.fleet_spec(ctx.sources.clone(), token_gen, Purpose::Fanout), n, ctx.concurrency);
    ctx.backend.set_fleet(Some(fleet.clone()));
    let wave = fleet.connect_all(ctx.connect_limit).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_kib = servers.rss_kib();
    let loadgen_after = rss_kib(std::process::id()).unwrap_or(0);
    let hold = HoldResult {
        dropped: fleet.dropped.load(Relaxed),
        ..HoldResult::measured(n, &wave, (rss_before_kib, rss_after_kib), (loadgen_before, loadgen_after))
    };
    eprintln!("  hold: {hold:?}");
    report_errors(ctx, &fleet, "hold");
    let mut fanouts = Vec::new();
    let mut notes = Vec::new();
    let mut sizes = plan.sizes.clone();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut ids = 1..;
    for size in sizes.into_iter().filter(|s| (1..=n).contains(s)) {
        fleet.shrink(size).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        fanouts.extend(fanout_at(ctx, &servers, &*fleet, size, plan, &mut ids, &mut notes).await?);
    }
    report_errors(ctx, &fleet, "fan-out");
    fleet.shrink(0).await;
    ctx.backend.set_fleet(None);
    servers.stop().await;
    Ok((hold, fanouts, notes))
}
