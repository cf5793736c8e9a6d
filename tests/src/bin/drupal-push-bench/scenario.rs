//! The scenarios, each against a freshly started server:
//!
//! * [`connect`]: N clients connect and authenticate (`cold`: new tokens, one backend call
//!   each), all close, then the same N reconnect with the same tokens (`cached`).
//! * [`hold_and_fanout`]: N clients connect and stay idle (server RSS before/after); then the
//!   fleet shrinks through the fan-out sizes, largest first, and at each size M stamped messages
//!   are published with 1 and with `window` messages in flight.

use crate::backend::Backend;
use crate::fleet::{Fleet, Round};
use crate::metrics::{CpuPair, Histogram, rss_kib, wall_ns};
use crate::results::{ConnectResult, FanoutResult, HoldResult};
use crate::target::{Kind, Opts, Target};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Shared by all scenarios of a run.
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

static NEXT_GEN: AtomicU32 = AtomicU32::new(1);

/// Fan-out parameters.
#[derive(Debug, Clone)]
pub struct FanoutPlan {
    pub sizes: Vec<usize>,
    pub messages: u32,
    pub body_bytes: usize,
    pub windows: Vec<u32>,
}

pub async fn connect(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<ConnectResult>> {
    let target = Target::start(ctx.kind, &ctx.opts, ctx.backend.addr).await?;
    let token_gen = NEXT_GEN.fetch_add(1, Relaxed);
    let mut out = Vec::new();
    for round in ["cold", "cached"] {
        let fleet = Fleet::new(target.fleet_spec(ctx.sources.clone(), token_gen), n, ctx.concurrency);
        ctx.backend.set_fleet(Some(fleet.clone()));
        let calls = ctx.backend.auth_calls();
        let cpu = CpuPair::start(target.pid);
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
    target.stop().await;
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
    let target = Target::start(ctx.kind, &ctx.opts, ctx.backend.addr).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = target.rss_kib();
    let loadgen_before = rss_kib(std::process::id()).unwrap_or(0);
    let token_gen = NEXT_GEN.fetch_add(1, Relaxed);
    let fleet = Fleet::new(target.fleet_spec(ctx.sources.clone(), token_gen), n, ctx.concurrency);
    ctx.backend.set_fleet(Some(fleet.clone()));
    let wave = fleet.connect_all(ctx.connect_limit).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_kib = target.rss_kib();
    let loadgen_after = rss_kib(std::process::id()).unwrap_or(0);
    let per_conn = |before: u64, after: u64| after.saturating_sub(before) as f64 / wave.ready.max(1) as f64;
    let hold = HoldResult {
        clients: n,
        ready: wave.ready,
        failed: wave.failed,
        connect_secs: wave.secs,
        rss_before_kib,
        rss_after_kib,
        kib_per_conn: per_conn(rss_before_kib, rss_after_kib),
        loadgen_kib_per_conn: per_conn(loadgen_before, loadgen_after),
        dropped: fleet.dropped.load(Relaxed),
    };
    eprintln!("  hold: {hold:?}");
    report_errors(ctx, &fleet, "hold");
    let mut fanouts = Vec::new();
    let mut notes = Vec::new();
    let mut sizes = plan.sizes.clone();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut round_id = 0;
    for size in sizes.into_iter().filter(|s| *s <= n) {
        fleet.shrink(size).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut warm = false;
        for _ in 0..3 {
            round_id += 1;
            let r = run_round(ctx, &target, &fleet, round_id, size, 1, plan.body_bytes, 1).await;
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
            round_id += 1;
            let r =
                run_round(ctx, &target, &fleet, round_id, size, plan.messages, plan.body_bytes, window).await;
            eprintln!("  fanout: {r:?}");
            fanouts.push(r);
        }
    }
    report_errors(ctx, &fleet, "fan-out");
    fleet.shrink(0).await;
    ctx.backend.set_fleet(None);
    target.stop().await;
    Ok((hold, fanouts, notes))
}

/// Publishes `msgs` stamped messages with at most `window` of them not yet delivered to every
/// subscriber, and measures what arrives.
#[allow(clippy::too_many_arguments)]
async fn run_round(
    ctx: &Ctx,
    target: &Target,
    fleet: &Fleet,
    id: u32,
    subscribers: usize,
    msgs: u32,
    body_bytes: usize,
    window: u32,
) -> FanoutResult {
    let round = fleet.start_round(id, msgs, subscribers as u32);
    let stray_before = fleet.stray.load(Relaxed);
    let publish_rtt = Histogram::default();
    let (mut errors, mut mismatch) = (0u64, 0u64);
    let mut inflight = FuturesUnordered::new();
    let cpu = CpuPair::start(target.pid);
    let started_ns = wall_ns();
    let mut next = 0u32;
    let mut last = (0u64, Instant::now());
    let mut stalled = false;
    loop {
        let complete = round.complete.load(Relaxed);
        if next == msgs && complete >= msgs {
            break;
        }
        if next < msgs && next - complete.min(next) < window {
            let body = target.body(id, next, wall_ns(), body_bytes);
            inflight.push(async move {
                let t0 = Instant::now();
                (target.publish(body).await, t0.elapsed())
            });
            next += 1;
            continue;
        }
        tokio::select! {
            Some((result, rtt)) = inflight.next(), if !inflight.is_empty() => {
                publish_rtt.record(rtt.as_micros() as u64);
                match result {
                    Ok(Some(sent)) if sent != subscribers as u64 => mismatch += 1,
                    Ok(_) => {}
                    Err(e) => {
                        errors += 1;
                        fleet.note_error(format!("{e:#}"));
                    }
                }
            }
            () = round.progress.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let unique = round.unique.load(Relaxed);
        if unique != last.0 {
            last = (unique, Instant::now());
        } else if last.1.elapsed() > ctx.stall {
            stalled = true;
            break;
        }
    }
    let (server_cpu, loadgen_cpu) = cpu.read();
    while let Ok(Some((result, rtt))) = tokio::time::timeout(Duration::from_secs(5), inflight.next()).await {
        publish_rtt.record(rtt.as_micros() as u64);
        if result.is_err() {
            errors += 1;
        }
    }
    summarize(
        &round,
        subscribers,
        body_bytes,
        window,
        started_ns,
        fleet.stray.load(Relaxed) - stray_before,
        FanoutExtra {
            publish_p50_ms: publish_rtt.quantile(0.5) as f64 / 1000.0,
            errors,
            mismatch,
            stalled,
            server_cpu,
            loadgen_cpu,
        },
    )
}

struct FanoutExtra {
    publish_p50_ms: f64,
    errors: u64,
    mismatch: u64,
    stalled: bool,
    server_cpu: f64,
    loadgen_cpu: f64,
}

fn summarize(
    round: &Round,
    subscribers: usize,
    body_bytes: usize,
    window: u32,
    started_ns: u64,
    stray: u64,
    x: FanoutExtra,
) -> FanoutResult {
    let expected = subscribers as u64 * u64::from(round.msgs);
    let delivered = round.unique.load(Relaxed);
    let secs = round.last_ns.load(Relaxed).saturating_sub(started_ns) as f64 / 1e9;
    let (p50_ms, p99_ms, max_ms) = round.latency.summary_ms();
    FanoutResult {
        subscribers,
        messages: round.msgs,
        body_bytes,
        window,
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        duplicated: round.dup.load(Relaxed),
        stray,
        secs,
        per_sec: if secs > 0.0 { delivered as f64 / secs } else { 0.0 },
        p50_ms,
        p99_ms,
        max_ms,
        publish_p50_ms: x.publish_p50_ms,
        publish_errors: x.errors,
        sent_mismatch: x.mismatch,
        stalled: x.stalled,
        server_cpu: x.server_cpu,
        loadgen_cpu: x.loadgen_cpu,
    }
}
