//! A fleet: N simulated browsers connected in one wave, and the shared counters their tasks
//! update without locks: who is ready, who failed, connect latency, and per fan-out round the
//! deliveries of every message (unique, duplicated, stray) and their latency.
//!
//! A client is *ready* when it is authenticated and subscribed: for drupal-push (and the ceiling)
//! when the `authenticated` frame arrives; for Sockudo when `subscription_succeeded` arrives; for
//! laravel-echo-server, which never acknowledges a subscription, when the fake backend answers
//! its private-channel auth request.

use crate::client;
use crate::metrics::{Histogram, wall_ns};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The protocol the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// drupal-push's JSON frames (also spoken by the ceiling broadcaster).
    Ours,
    /// socket.io 2 over engine.io v3 WebSocket framing (laravel-echo-server).
    SocketIo,
    /// Pusher protocol 7 (Sockudo).
    Pusher,
}

/// One server's WebSocket endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Full WebSocket URL (path and query included).
    pub url: String,
}

/// Where and how the fleet connects.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub proto: Proto,
    /// The nodes of the deployment: client `idx` connects to `endpoints[idx % len]`.
    pub endpoints: Vec<Endpoint>,
    /// Source addresses used round-robin; empty: let the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Token generation: clients of fleets with the same generation share auth tokens.
    pub token_gen: u32,
    pub channel: String,
    /// Pusher private channels: where the client gets its subscription signed (the fake
    /// backend's `/pusher/auth`, as a page asks its own site).
    pub auth_url: Option<String>,
}

static NEXT_FLEET: AtomicU32 = AtomicU32::new(1);

pub struct Fleet {
    pub id: u32,
    pub spec: FleetSpec,
    epoch: Instant,
    starts: Box<[AtomicU64]>,
    settled: Box<[AtomicBool]>,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    /// Ready clients whose connection ended before the fleet closed it.
    pub dropped: AtomicUsize,
    pub connect_latency: Histogram,
    gate: Semaphore,
    round: Mutex<Option<Arc<Round>>>,
    /// Deliveries of a round that was not (or no longer) current.
    pub stray: AtomicU64,
    clients: Mutex<Vec<(CancellationToken, JoinHandle<()>)>>,
    errors: Mutex<BTreeMap<String, usize>>,
    /// For Pusher private-channel auth requests.
    http: reqwest::Client,
}

/// Result of a connect wave.
#[derive(Debug, Clone, Copy)]
pub struct Wave {
    pub secs: f64,
    pub ready: usize,
    pub failed: usize,
}

impl Fleet {
    /// A fleet of at most `n` clients, at most `concurrency` of them connecting at once.
    pub fn new(spec: FleetSpec, n: usize, concurrency: usize) -> Arc<Fleet> {
        Arc::new(Fleet {
            id: NEXT_FLEET.fetch_add(1, Relaxed),
            spec,
            epoch: Instant::now(),
            starts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            settled: (0..n).map(|_| AtomicBool::new(false)).collect(),
            ready: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            connect_latency: Histogram::default(),
            gate: Semaphore::new(concurrency.max(1)),
            round: Mutex::new(None),
            stray: AtomicU64::new(0),
            clients: Mutex::new(Vec::with_capacity(n)),
            errors: Mutex::new(BTreeMap::new()),
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(concurrency.max(1))
                .build()
                .unwrap_or_default(),
        })
    }

    /// The endpoint client `idx` connects to.
    pub fn endpoint(&self, idx: usize) -> &Endpoint {
        &self.spec.endpoints[idx % self.spec.endpoints.len().max(1)]
    }

    /// Asks the backend to sign client `socket_id`'s subscription to the fleet's private
    /// channel (Pusher), as a page asks its site: returns the `auth` string.
    pub async fn pusher_auth(&self, socket_id: &str) -> Result<String, String> {
        let url = self.spec.auth_url.as_deref().ok_or("no auth URL")?;
        let form = [("socket_id", socket_id), ("channel_name", self.spec.channel.as_str())];
        let resp = self.http.post(url).form(&form).send().await.map_err(|e| format!("auth request: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("auth answer: {e}"))?;
        match body["auth"].as_str() {
            Some(auth) if status.is_success() => Ok(auth.to_owned()),
            _ => Err(format!("auth answer: HTTP {status}: {body}")),
        }
    }

    pub fn size(&self) -> usize {
        self.starts.len()
    }

    fn since_epoch_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The auth token of client `idx`.
    pub fn token(&self, idx: usize) -> String {
        format!("bench-{}-{idx}", self.spec.token_gen)
    }

    /// Connects every client, `concurrency` at a time, and waits until each is ready or failed
    /// (or `limit` passes).
    pub async fn connect_all(self: &Arc<Self>, limit: Duration) -> Wave {
        let started = Instant::now();
        let deadline = started + limit;
        for idx in 0..self.size() {
            match tokio::time::timeout_at(deadline.into(), self.gate.acquire()).await {
                Ok(Ok(permit)) => permit.forget(),
                _ => break,
            }
            self.starts[idx].store(self.since_epoch_ns().max(1), Relaxed);
            let cancel = CancellationToken::new();
            let task = tokio::spawn(client::run(self.clone(), idx, cancel.clone()));
            self.lock_clients().push((cancel, task));
        }
        while self.settled_count() < self.size() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Wave {
            secs: started.elapsed().as_secs_f64(),
            ready: self.ready.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }

    fn settled_count(&self) -> usize {
        self.ready.load(Relaxed) + self.failed.load(Relaxed)
    }

    fn lock_clients(&self) -> std::sync::MutexGuard<'_, Vec<(CancellationToken, JoinHandle<()>)>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Client `idx` is authenticated and subscribed.
    pub fn mark_ready(&self, idx: usize) {
        if idx < self.size() && !self.settled[idx].swap(true, Relaxed) {
            let waited = self.since_epoch_ns().saturating_sub(self.starts[idx].load(Relaxed));
            self.connect_latency.record(waited / 1000);
            self.ready.fetch_add(1, Relaxed);
            self.gate.add_permits(1);
        }
    }

    /// Client `idx` could not get ready; false when it was ready (or failed) already.
    pub fn mark_failed(&self, idx: usize, why: String) -> bool {
        self.note_error(why);
        if self.settled[idx].swap(true, Relaxed) {
            return false;
        }
        self.failed.fetch_add(1, Relaxed);
        self.gate.add_permits(1);
        true
    }

    pub fn note_error(&self, why: String) {
        *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(why).or_default() += 1;
    }

    /// The distinct errors seen since the last call, with counts, most frequent first.
    pub fn errors(&self) -> Vec<String> {
        let errors = std::mem::take(&mut *self.errors.lock().unwrap_or_else(|p| p.into_inner()));
        let mut list: Vec<_> = errors.iter().collect();
        list.sort_by(|a, b| b.1.cmp(a.1));
        list.into_iter().take(5).map(|(e, n)| format!("{n} x {e}")).collect()
    }

    /// Closes clients `to..` and waits for their tasks to end.
    pub async fn shrink(&self, to: usize) {
        let tail: Vec<_> = {
            let mut clients = self.lock_clients();
            let at = to.min(clients.len());
            clients.drain(at..).collect()
        };
        for (cancel, _) in &tail {
            cancel.cancel();
        }
        for (_, task) in tail {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Starts fan-out round `id` of `msgs` messages to `subscribers` clients.
    pub fn start_round(&self, id: u32, msgs: u32, subscribers: u32) -> Arc<Round> {
        let round = Arc::new(Round::new(id, msgs, subscribers));
        *self.round.lock().unwrap_or_else(|p| p.into_inner()) = Some(round.clone());
        round
    }

    /// Records a delivery seen by one client (`local` is that client's own state).
    pub fn deliver(&self, local: &mut Local, d: Delivery) {
        let now = wall_ns();
        if local.round.as_ref().is_none_or(|r| r.id != d.round) {
            let current = self.round.lock().unwrap_or_else(|p| p.into_inner()).clone();
            match current {
                Some(r) if r.id == d.round => {
                    local.seen = vec![0; (r.msgs as usize).div_ceil(64)];
                    local.round = Some(r);
                }
                _ => {
                    self.stray.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        let Some(r) = local.round.as_ref() else { return };
        if d.seq >= r.msgs {
            self.stray.fetch_add(1, Relaxed);
            return;
        }
        let (word, bit) = ((d.seq / 64) as usize, 1u64 << (d.seq % 64));
        if local.seen[word] & bit != 0 {
            r.dup.fetch_add(1, Relaxed);
            return;
        }
        local.seen[word] |= bit;
        r.unique.fetch_add(1, Relaxed);
        r.latency.record(now.saturating_sub(d.sent_ns) / 1000);
        r.last_ns.fetch_max(now, Relaxed);
        r.count(d.seq);
    }
}

/// One client's view of the current round (a bitset of the messages it has seen).
#[derive(Default)]
pub struct Local {
    round: Option<Arc<Round>>,
    seen: Vec<u64>,
}

/// The bench stamp found in a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub round: u32,
    pub seq: u32,
    pub sent_ns: u64,
}

/// The key of the stamp inside the message data: `"bench_seq":[round,seq,sent_ns]`.
pub const STAMP_KEY: &str = "bench_seq";

/// Finds the stamp in a frame's text without parsing the whole JSON; the data may be an object
/// (`"bench_seq":[`) or, as Pusher carries it, a JSON string (`\"bench_seq\":[`).
pub fn find_stamp(text: &str) -> Option<Delivery> {
    let after = &text[text.find(STAMP_KEY)? + STAMP_KEY.len()..];
    let after = after.strip_prefix("\\\"").or_else(|| after.strip_prefix('"'))?;
    let body = after.strip_prefix(":[")?;
    let end = body.find(']')?;
    let mut nums = body[..end].split(',').map(|n| n.trim().parse::<u64>());
    let round = nums.next()?.ok()?;
    let seq = nums.next()?.ok()?;
    let sent_ns = nums.next()?.ok()?;
    Some(Delivery { round: u32::try_from(round).ok()?, seq: u32::try_from(seq).ok()?, sent_ns })
}

/// One fan-out round: `msgs` messages, each expected by `subscribers` clients (for the round a
/// coordinator keeps over several fleet processes: by that many processes, each reporting when
/// all its clients have a message; see `group.rs`).
pub struct Round {
    pub id: u32,
    pub msgs: u32,
    pub subscribers: u32,
    per_msg: Box<[AtomicU32]>,
    pub unique: AtomicU64,
    pub dup: AtomicU64,
    pub last_ns: AtomicU64,
    pub latency: Histogram,
    /// Messages every subscriber has received.
    pub complete: AtomicU32,
    pub progress: Notify,
}

impl Round {
    pub fn new(id: u32, msgs: u32, subscribers: u32) -> Round {
        Round {
            id,
            msgs,
            subscribers,
            per_msg: (0..msgs).map(|_| AtomicU32::new(0)).collect(),
            unique: AtomicU64::new(0),
            dup: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            latency: Histogram::default(),
            complete: AtomicU32::new(0),
            progress: Notify::new(),
        }
    }

    /// Counts one first delivery of message `seq`; the message is complete when every
    /// subscriber has it.
    pub fn count(&self, seq: u32) {
        let Some(n) = self.per_msg.get(seq as usize) else { return };
        if n.fetch_add(1, Relaxed) + 1 == self.subscribers {
            self.complete.fetch_add(1, Relaxed);
            self.progress.notify_one();
        }
    }

    /// Whether every subscriber has message `seq`.
    pub fn is_complete(&self, seq: u32) -> bool {
        self.per_msg.get(seq as usize).is_some_and(|n| n.load(Relaxed) >= self.subscribers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_both_framings() {
        let ours = r#"{"type":"message","channel":"bench","message":{"data":{"bench_seq":[3,7,1700000000123456789],"pad":"x"}}}"#;
        assert_eq!(find_stamp(ours), Some(Delivery { round: 3, seq: 7, sent_ns: 1_700_000_000_123_456_789 }));
        let sio = r#"42["bench","private-bench",{"bench_seq":[1,0,5],"pad":"xx"}]"#;
        assert_eq!(find_stamp(sio), Some(Delivery { round: 1, seq: 0, sent_ns: 5 }));
        let pusher = r#"{"event":"bench","channel":"bench","data":"{\"bench_seq\":[2,9,77],\"pad\":\"x\"}"}"#;
        assert_eq!(find_stamp(pusher), Some(Delivery { round: 2, seq: 9, sent_ns: 77 }));
        assert_eq!(find_stamp(r#"{"type":"message","message":{}}"#), None);
    }
}
