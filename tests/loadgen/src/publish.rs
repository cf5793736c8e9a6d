//! Publish latency: the round trip of `POST /nodejs/publish` alone, with a fixed number of
//! requests in flight (closed loop: the next starts when one is answered), on a channel that no
//! client is in, so that no fan-out runs meanwhile. On the Redis engine a publish is one Lua
//! script (history append + PUBLISH) and the node answering it waits until its own copy has come
//! back through Redis's pub/sub; on the memory engine it is a local call. The figure is what
//! Drupal waits per message.

use crate::metrics::{CpuPair, Histogram, wall_ns};
use crate::results::PublishResult;
use crate::target::Servers;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::time::Instant;

/// The channel publish latency is measured on (nobody subscribes to it).
pub const CHANNEL: &str = "bench-publish";

/// Publishes before the measured ones (connections to the server, Redis script cache).
const WARM_UP: u32 = 20;

/// `count` publishes of about `body_bytes` each through node 0, `in_flight` at a time.
pub async fn latency(servers: &Servers, count: u32, in_flight: u32, body_bytes: usize) -> PublishResult {
    let warm = Histogram::default();
    run(servers, WARM_UP, in_flight, body_bytes, &warm).await;
    let rtt = Histogram::default();
    let cpu = CpuPair::of(&servers.pids(), &[std::process::id()], servers.redis_pid());
    let started = Instant::now();
    let (errors, first_error) = run(servers, count, in_flight, body_bytes, &rtt).await;
    let secs = started.elapsed().as_secs_f64();
    let (server_cpu, loadgen_cpu) = cpu.read();
    let (p50_ms, p99_ms, max_ms) = rtt.summary_ms();
    PublishResult {
        in_flight,
        publishes: count,
        body_bytes,
        errors,
        first_error,
        secs,
        per_sec: if secs > 0.0 { f64::from(count) / secs } else { 0.0 },
        p50_ms,
        p99_ms,
        max_ms,
        server_cpu,
        loadgen_cpu,
        redis_cpu: cpu.redis(),
    }
}

/// Publishes `count` messages, `in_flight` at a time, recording each round trip; the number of
/// errors and the first one.
async fn run(
    servers: &Servers,
    count: u32,
    in_flight: u32,
    body_bytes: usize,
    rtt: &Histogram,
) -> (u64, Option<String>) {
    let mut pending = FuturesUnordered::new();
    let (mut next, mut errors, mut first) = (0u32, 0u64, None);
    loop {
        while next < count && pending.len() < in_flight.max(1) as usize {
            let body = servers.body_on(CHANNEL, 0, next, wall_ns(), body_bytes);
            pending.push(async move {
                let t0 = Instant::now();
                (servers.publish(body).await, t0.elapsed())
            });
            next += 1;
        }
        let Some((result, took)) = pending.next().await else { break };
        rtt.record(took.as_micros() as u64);
        if let Err(e) = result {
            errors += 1;
            first.get_or_insert_with(|| format!("{e:#}"));
        }
    }
    (errors, first)
}
