//! One fan-out round: M stamped messages published with at most `window` of them not yet
//! delivered to every subscriber, what arrives measured by the subscribers (an [`Audience`]: a
//! fleet in this process, or a group of fleet processes); optionally a REST call timed over and
//! over while the round runs (does the server keep answering during a big fan-out?).

use crate::fleet::{Fleet, Round};
use crate::metrics::{CpuPair, Histogram, wall_ns};
use crate::results::{FanoutResult, ProbeResult};
use crate::scenario::Ctx;
use crate::target::Servers;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What to run.
pub struct RoundSpec {
    pub id: u32,
    pub subscribers: usize,
    pub msgs: u32,
    pub body_bytes: usize,
    pub window: u32,
    /// Time a REST call every this long while the round runs.
    pub probe_every: Option<Duration>,
    /// What a publish's `sent` should say (`None`: `subscribers`; on the Redis engine it counts
    /// the deliveries of the node that was asked).
    pub expect_sent: Option<u64>,
}

impl RoundSpec {
    pub fn new(id: u32, subscribers: usize, msgs: u32, body_bytes: usize, window: u32) -> RoundSpec {
        RoundSpec { id, subscribers, msgs, body_bytes, window, probe_every: None, expect_sent: None }
    }
}

/// The subscribers of a round and where their counts come from.
pub trait Audience {
    /// Starts round `id` of `msgs` messages to `subscribers` clients; the publisher watches the
    /// returned round's `complete` and `unique` while it runs.
    async fn start_round(&self, id: u32, msgs: u32, subscribers: u32) -> anyhow::Result<Arc<Round>>;
    /// Ends the round: after this its counts and latencies are final.
    async fn end_round(&self, round: &Round) -> anyhow::Result<()>;
    /// Deliveries so far that belonged to no current round (final after `end_round`).
    fn stray(&self) -> u64;
    fn note_error(&self, why: String);
    /// The load generator's processes, for CPU figures.
    fn pids(&self) -> Vec<u32>;
}

/// A fleet of this process: its clients count into the round directly.
impl Audience for Fleet {
    async fn start_round(&self, id: u32, msgs: u32, subscribers: u32) -> anyhow::Result<Arc<Round>> {
        Ok(Fleet::start_round(self, id, msgs, subscribers))
    }

    async fn end_round(&self, _: &Round) -> anyhow::Result<()> {
        Ok(())
    }

    fn stray(&self) -> u64 {
        self.stray.load(Relaxed)
    }

    fn note_error(&self, why: String) {
        Fleet::note_error(self, why);
    }

    fn pids(&self) -> Vec<u32> {
        vec![std::process::id()]
    }
}

/// Runs one round and measures it.
pub async fn run(
    ctx: &Ctx,
    servers: &Servers,
    fleet: &impl Audience,
    spec: &RoundSpec,
) -> anyhow::Result<FanoutResult> {
    let stray_before = fleet.stray();
    let round = fleet.start_round(spec.id, spec.msgs, spec.subscribers as u32).await?;
    let done = AtomicBool::new(false);
    let probe = Probe::default();
    let cpu = CpuPair::of(&servers.pids(), &fleet.pids(), servers.redis_pid());
    let started_ns = wall_ns();
    let (extra, ()) = tokio::join!(
        async {
            let extra = publish_all(ctx, servers, fleet, &round, spec, &cpu).await;
            done.store(true, Relaxed);
            extra
        },
        async {
            if let Some(every) = spec.probe_every {
                probe.run(servers, every, &done).await;
            }
        }
    );
    fleet.end_round(&round).await?;
    let mut result = summarize(&round, spec, started_ns, fleet.stray().saturating_sub(stray_before), extra);
    if let Some(every) = spec.probe_every {
        result.probe = Some(probe.result(every));
    }
    Ok(result)
}

async fn publish_all(
    ctx: &Ctx,
    servers: &Servers,
    fleet: &impl Audience,
    round: &Round,
    spec: &RoundSpec,
    cpu: &CpuPair,
) -> Extra {
    let (msgs, window) = (spec.msgs, spec.window);
    let publish_rtt = Histogram::default();
    let (mut errors, mut mismatch) = (0u64, 0u64);
    let mut inflight = FuturesUnordered::new();
    let mut next = 0u32;
    let mut last = (0u64, Instant::now());
    let mut stalled = false;
    loop {
        let complete = round.complete.load(Relaxed);
        if next == msgs && complete >= msgs {
            break;
        }
        if next < msgs && next - complete.min(next) < window {
            let body = servers.body(spec.id, next, wall_ns(), spec.body_bytes);
            inflight.push(async move {
                let t0 = Instant::now();
                (servers.publish(body).await, t0.elapsed())
            });
            next += 1;
            continue;
        }
        tokio::select! {
            Some((result, rtt)) = inflight.next(), if !inflight.is_empty() => {
                publish_rtt.record(rtt.as_micros() as u64);
                match result {
                    Ok(Some(sent)) if sent != spec.expect_sent.unwrap_or(spec.subscribers as u64) => {
                        mismatch += 1
                    }
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
    let redis_cpu = cpu.redis();
    while let Ok(Some((result, rtt))) = tokio::time::timeout(Duration::from_secs(5), inflight.next()).await {
        publish_rtt.record(rtt.as_micros() as u64);
        if result.is_err() {
            errors += 1;
        }
    }
    Extra {
        publish_p50_ms: publish_rtt.quantile(0.5) as f64 / 1000.0,
        publish_p99_ms: publish_rtt.quantile(0.99) as f64 / 1000.0,
        errors,
        mismatch,
        stalled,
        server_cpu,
        loadgen_cpu,
        redis_cpu,
    }
}

/// The REST calls timed during a round.
#[derive(Default)]
struct Probe {
    latency: Histogram,
    errors: AtomicU64,
}

impl Probe {
    /// Calls the server's probe route every `every` (one call at a time) until `done`.
    async fn run(&self, servers: &Servers, every: Duration, done: &AtomicBool) {
        while !done.load(Relaxed) {
            let Some(request) = servers.probe_request() else { return };
            let t0 = Instant::now();
            let ok = match request.timeout(Duration::from_secs(10)).send().await {
                Ok(resp) => resp.status().is_success() && resp.bytes().await.is_ok(),
                Err(_) => false,
            };
            self.latency.record(t0.elapsed().as_micros() as u64);
            if !ok {
                self.errors.fetch_add(1, Relaxed);
            }
            tokio::time::sleep(every.saturating_sub(t0.elapsed())).await;
        }
    }

    fn result(&self, every: Duration) -> ProbeResult {
        let (p50_ms, p99_ms, max_ms) = self.latency.summary_ms();
        ProbeResult {
            every_ms: every.as_millis() as u64,
            calls: self.latency.count(),
            errors: self.errors.load(Relaxed),
            p50_ms,
            p99_ms,
            max_ms,
        }
    }
}

struct Extra {
    publish_p50_ms: f64,
    publish_p99_ms: f64,
    errors: u64,
    mismatch: u64,
    stalled: bool,
    server_cpu: f64,
    loadgen_cpu: f64,
    redis_cpu: Option<f64>,
}

fn summarize(round: &Round, spec: &RoundSpec, started_ns: u64, stray: u64, x: Extra) -> FanoutResult {
    let expected = spec.subscribers as u64 * u64::from(round.msgs);
    let delivered = round.unique.load(Relaxed);
    let secs = round.last_ns.load(Relaxed).saturating_sub(started_ns) as f64 / 1e9;
    let (p50_ms, p99_ms, max_ms) = round.latency.summary_ms();
    FanoutResult {
        subscribers: spec.subscribers,
        messages: round.msgs,
        body_bytes: spec.body_bytes,
        window: spec.window,
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
        publish_p99_ms: x.publish_p99_ms,
        publish_errors: x.errors,
        sent_mismatch: x.mismatch,
        stalled: x.stalled,
        server_cpu: x.server_cpu,
        loadgen_cpu: x.loadgen_cpu,
        redis_cpu: x.redis_cpu,
        probe: None,
    }
}
