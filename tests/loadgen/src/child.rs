//! `drupal-push-bench fleet`: one fleet in a process of its own, driven by a coordinator
//! (`group.rs`) over its stdin and stdout, one JSON object per line. One process may open at
//! most 20,000 files on this machine, so 76,000 clients take several such processes.
//!
//! The coordinator sends [`Command`]s one at a time and reads the answer to each; while a round
//! runs the process also reports, unasked, [`Event::Complete`] as soon as all its clients have a
//! message (the coordinator's window counts on it) and [`Event::Progress`] (its deliveries so
//! far, for stall detection) at most every 100 ms. End of stdin: it closes its clients and exits.
//!
//! Its clients speak drupal-push's protocol (the ceiling speaks it too). The other protocols stay
//! in-process: laravel-echo-server clients are marked ready by the coordinator's backend, and
//! Pusher private channels are signed there.

use crate::fleet::{Endpoint, Fleet, FleetSpec, Proto, Round};
use crate::metrics::Buckets;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;

/// What the coordinator asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Connect every client, waiting at most `limit_secs`; answered by [`Event::Wave`].
    Connect { limit_secs: u64 },
    /// Start counting round `id` (`msgs` messages, `subscribers` of this process's clients
    /// each); answered by [`Event::Started`] before anything is published.
    Round { id: u32, msgs: u32, subscribers: u32 },
    /// Stop reporting round `id`; answered by [`Event::Ended`] with its totals.
    End { id: u32 },
    /// Answered by [`Event::Stats`].
    Stats,
}

/// What the process tells.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    Wave {
        ready: usize,
        failed: usize,
        secs: f64,
        latency: Buckets,
    },
    Started {
        id: u32,
    },
    /// First deliveries of round `id` so far.
    Progress {
        id: u32,
        unique: u64,
    },
    /// Every client of this process has message `seq` of round `id`.
    Complete {
        id: u32,
        seq: u32,
    },
    Ended {
        id: u32,
        unique: u64,
        dup: u64,
        last_ns: u64,
        latency: Buckets,
        stray: u64,
    },
    Stats {
        ready: usize,
        dropped: usize,
        errors: Vec<String>,
    },
}

#[derive(clap::Args, Clone)]
pub struct FleetArgs {
    /// WebSocket URLs (`ws://127.0.0.1:PORT/ws`, repeatable): client i connects to URL i mod n.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Clients of this process.
    #[arg(long)]
    clients: usize,
    /// Token generation: client i authenticates as `bench-<gen>-<i>` (one uid each).
    #[arg(long)]
    token_gen: u32,
    /// The channel the backend puts the clients in (published on by the coordinator).
    #[arg(long, default_value = "bench")]
    channel: String,
    /// Client source addresses 127.0.0.1 .. 127.0.0.N, round-robin (0: the kernel's choice).
    #[arg(long, default_value_t = 0)]
    sources: u8,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    let rest = url.strip_prefix("ws://").with_context(|| format!("{url}: not a ws:// URL"))?;
    let host = &rest[..rest.find('/').unwrap_or(rest.len())];
    let addr = host.parse().with_context(|| format!("{url}: the host must be IP:PORT"))?;
    Ok(Endpoint { addr, url: url.to_owned() })
}

/// Serves the coordinator until its stdin ends.
pub async fn serve(args: &FleetArgs) -> anyhow::Result<()> {
    let spec = FleetSpec {
        proto: Proto::Ours,
        endpoints: args.urls.iter().map(|u| endpoint(u)).collect::<anyhow::Result<_>>()?,
        sources: (1..=args.sources).map(|i| IpAddr::from([127, 0, 0, i])).collect(),
        token_gen: args.token_gen,
        channel: args.channel.clone(),
        auth_url: None,
    };
    let fleet = Fleet::new(spec, args.clients, args.concurrency);
    // Plain threads for the pipes (tokio's stdin/stdout need a feature the workspace leaves off).
    let (tx, mut rx) = unbounded_channel::<Event>();
    let writer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        while let Some(ev) = rx.blocking_recv() {
            let line = serde_json::to_string(&ev).unwrap_or_default();
            if writeln!(out, "{line}").is_err() || out.flush().is_err() {
                break;
            }
        }
    });
    let (line_tx, mut lines) = unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut current: Option<(Arc<Round>, CancellationToken, tokio::task::JoinHandle<()>)> = None;
    while let Some(line) = lines.recv().await {
        let command: Command =
            serde_json::from_str(&line).with_context(|| format!("fleet: bad command {line:?}"))?;
        let event = match command {
            Command::Connect { limit_secs } => {
                let wave = fleet.connect_all(Duration::from_secs(limit_secs)).await;
                let latency = fleet.connect_latency.buckets();
                Event::Wave { ready: wave.ready, failed: wave.failed, secs: wave.secs, latency }
            }
            Command::Round { id, msgs, subscribers } => {
                if let Some((_, cancel, task)) = current.take() {
                    cancel.cancel();
                    let _ = task.await;
                }
                let round = fleet.start_round(id, msgs, subscribers);
                let cancel = CancellationToken::new();
                // Started goes out before the watcher can report anything of this round.
                let _ = tx.send(Event::Started { id });
                let task = tokio::spawn(watch(round.clone(), tx.clone(), cancel.clone()));
                current = Some((round, cancel, task));
                continue;
            }
            Command::End { id } => {
                let (unique, dup, last_ns, latency) = match current.take() {
                    Some((round, cancel, task)) if round.id == id => {
                        cancel.cancel();
                        let _ = task.await;
                        let r = &round;
                        (
                            r.unique.load(Relaxed),
                            r.dup.load(Relaxed),
                            r.last_ns.load(Relaxed),
                            r.latency.buckets(),
                        )
                    }
                    other => {
                        current = other;
                        (0, 0, 0, Buckets::default())
                    }
                };
                Event::Ended { id, unique, dup, last_ns, latency, stray: fleet.stray.load(Relaxed) }
            }
            Command::Stats => Event::Stats {
                ready: fleet.ready.load(Relaxed),
                dropped: fleet.dropped.load(Relaxed),
                errors: fleet.errors(),
            },
        };
        let _ = tx.send(event);
    }
    if let Some((_, cancel, task)) = current.take() {
        cancel.cancel();
        let _ = task.await;
    }
    fleet.shrink(0).await;
    drop(tx);
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    Ok(())
}

/// Reports the round's completed messages as they complete, and its progress.
async fn watch(round: Arc<Round>, tx: UnboundedSender<Event>, cancel: CancellationToken) {
    let mut reported = vec![false; round.msgs as usize];
    let mut unique = 0;
    let mut last_progress = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = round.progress.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        for (seq, done) in reported.iter_mut().enumerate() {
            if !*done && round.is_complete(seq as u32) {
                *done = true;
                let _ = tx.send(Event::Complete { id: round.id, seq: seq as u32 });
            }
        }
        let now = round.unique.load(Relaxed);
        if now != unique && last_progress.elapsed() >= Duration::from_millis(100) {
            unique = now;
            last_progress = tokio::time::Instant::now();
            let _ = tx.send(Event::Progress { id: round.id, unique });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_line_each() {
        let c = serde_json::to_string(&Command::Round { id: 3, msgs: 100, subscribers: 19_000 }).unwrap();
        assert_eq!(c, r#"{"cmd":"round","id":3,"msgs":100,"subscribers":19000}"#);
        let e: Event = serde_json::from_str(r#"{"ev":"complete","id":3,"seq":7}"#).unwrap();
        assert!(matches!(e, Event::Complete { id: 3, seq: 7 }));
        assert!(endpoint("ws://127.0.0.1:8080/ws").is_ok_and(|e| e.addr.port() == 8080));
        assert!(endpoint("http://127.0.0.1:8080/ws").is_err());
    }
}
