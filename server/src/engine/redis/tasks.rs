//! The Redis engine's background work: the pub/sub reader (publications and commands, in
//! Redis's order), and the heartbeat (this node alive, Redis's data still there, dead nodes
//! reaped, overdue decisions fired), plus the cluster-wide figures.

use super::wire::{self, Command, Incoming, Order};
use super::{RECONNECT_MAX, RedisEngine, now_ms, unavailable};
use crate::engine::{BATCH_MESSAGES, BatchSize, EngineStats, Member, Publication, TokenChannelDetail};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use futures_util::{FutureExt, StreamExt};
use redis::AsyncCommands;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Starts the reader and the heartbeat; both stop when the engine is dropped.
pub(super) fn spawn(engine: RedisEngine) {
    let weak = Arc::downgrade(&engine.inner);
    tokio::spawn(read_loop(weak.clone()));
    tokio::spawn(heartbeat_loop(weak));
}

fn upgrade(weak: &std::sync::Weak<super::Inner>) -> Option<RedisEngine> {
    weak.upgrade().map(|inner| RedisEngine { inner })
}

/// Reads `P:pub` and `P:ctl` on one connection, reconnecting with a capped backoff.
async fn read_loop(weak: std::sync::Weak<super::Inner>) {
    let mut delay = Duration::from_millis(100);
    let mut logged_down = false;
    loop {
        let Some(engine) = upgrade(&weak) else { return };
        match subscribe(&engine).await {
            Ok(mut pubsub) => {
                engine.inner.subscribed.store(true, Ordering::Relaxed);
                if logged_down {
                    tracing::info!("redis: subscribed again");
                }
                delay = Duration::from_millis(100);
                let (pub_channel, ctl_channel) = (engine.key("pub"), engine.key("ctl"));
                drop(engine);
                let mut messages = pubsub.on_message();
                let mut ended = false;
                while let Some(first) = messages.next().await {
                    // What else has arrived meanwhile is handled with it, so that publications
                    // of one stream that queued up go out as one batch (see `Deliveries`).
                    let mut arrived = vec![first];
                    while arrived.len() < BATCH_MESSAGES {
                        match messages.next().now_or_never() {
                            Some(Some(msg)) => arrived.push(msg),
                            Some(None) => {
                                ended = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    let Some(engine) = upgrade(&weak) else { return };
                    let mut deliveries = Deliveries::default();
                    for msg in &arrived {
                        let channel = msg.get_channel_name();
                        if channel == pub_channel {
                            deliveries.add(&engine, msg.get_payload_bytes()).await;
                        } else if channel == ctl_channel {
                            deliveries.flush(&engine).await;
                            on_command(&engine, msg.get_payload_bytes()).await;
                        }
                    }
                    deliveries.flush(&engine).await;
                    if ended {
                        break;
                    }
                }
                let Some(engine) = upgrade(&weak) else { return };
                engine.inner.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("redis: the subscription connection was lost; reconnecting");
                logged_down = true;
            }
            Err(e) => {
                if !logged_down {
                    tracing::warn!(error = %e, url = %crate::ids::redact_url(&engine.inner.settings.url), "redis: cannot subscribe; retrying");
                    logged_down = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

async fn subscribe(engine: &RedisEngine) -> Result<redis::aio::PubSub, redis::RedisError> {
    let connect = engine.inner.client.get_async_pubsub();
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting")))??;
    pubsub.subscribe(engine.key("pub")).await?;
    pubsub.subscribe(engine.key("ctl")).await?;
    Ok(pubsub)
}

/// Publications read together from `P:pub`, delivered in Redis's order: consecutive ones of
/// the same stream and sender as one batch within the engine's [`BatchSize`] limits (the node
/// writes a batch to each socket with one system call); anything else ends the batch.
#[derive(Default)]
struct Deliveries {
    batch: Vec<Publication>,
    size: BatchSize,
    /// This node's publications in the batch, whose publishers wait for the count.
    mine: Vec<u64>,
}

impl Deliveries {
    async fn add(&mut self, engine: &RedisEngine, payload: &[u8]) {
        match wire::parse_publication(payload) {
            Some(Incoming::Publication { origin, pid, publication }) => {
                if !self.size.admit(self.batch.first(), &publication) {
                    self.flush(engine).await;
                    self.size.admit(None, &publication);
                }
                if origin == engine.inner.node_id {
                    self.mine.push(pid);
                }
                self.batch.push(publication);
            }
            Some(Incoming::Barrier { origin, pid }) => {
                self.flush(engine).await;
                if origin == engine.inner.node_id {
                    if let Some(tx) = engine.waiting().remove(&pid) {
                        let _ = tx.send(0);
                    }
                }
            }
            None => tracing::warn!("redis: unreadable publication ignored"),
        }
    }

    async fn flush(&mut self, engine: &RedisEngine) {
        if self.batch.is_empty() {
            return;
        }
        let sent = engine.node().deliver(&self.batch).await;
        for pid in self.mine.drain(..) {
            if let Some(tx) = engine.waiting().remove(&pid) {
                let _ = tx.send(sent);
            }
        }
        self.batch.clear();
        self.size = BatchSize::default();
    }
}

async fn on_command(engine: &RedisEngine, payload: &[u8]) {
    let Some(command) = Command::decode(payload) else {
        tracing::warn!("redis: unreadable command ignored");
        return;
    };
    if command.from == engine.inner.node_id {
        return;
    }
    match command.order() {
        Some(Order::Apply(event)) => {
            let changes = engine.node().apply(&event);
            engine.apply_changes(changes).await;
        }
        Some(Order::Notify { to, uid, online }) if to == engine.inner.node_id => {
            let m =
                if online { BackendMessage::UserOnline { uid } } else { BackendMessage::UserOffline { uid } };
            engine.node().notify_backend(m);
        }
        Some(Order::Notify { .. }) => {}
        None => {}
    }
}

/// Every third of `node_ttl`: refresh this node's heartbeat, notice a Redis that lost its
/// data, reap dead nodes, fire overdue decisions.
async fn heartbeat_loop(weak: std::sync::Weak<super::Inner>) {
    let mut boot: Option<String> = None;
    let mut was_ok = true;
    loop {
        let Some(engine) = upgrade(&weak) else { return };
        let every = (engine.inner.settings.node_ttl / 3).max(Duration::from_millis(200));
        let result = beat(&engine, &mut boot).await;
        let ok = result.is_ok();
        engine.inner.heartbeat_ok.store(ok, Ordering::Relaxed);
        match result {
            Err(e) if was_ok => tracing::warn!(error = %e, "redis: heartbeat failed (Redis unreachable?)"),
            Ok(()) if !was_ok => tracing::info!("redis: reachable again"),
            _ => {}
        }
        was_ok = ok;
        drop(engine);
        tokio::time::sleep(every).await;
    }
}

async fn beat(engine: &RedisEngine, boot: &mut Option<String>) -> Result<(), EngineError> {
    let me = engine.inner.node_id.clone();
    let ttl_ms = engine.inner.settings.node_ttl.as_millis() as u64;
    let local = engine.node().local_sockets();
    let figures = serde_json::json!({"sockets": local.len()}).to_string();
    let mut conn = engine.conn();
    let (current,): (Option<String>,) = redis::pipe()
        .cmd("SET")
        .arg(engine.key(&format!("node:{me}")))
        .arg(figures)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .sadd(engine.key("nodes"), &me)
        .ignore()
        .set_nx(engine.key("boot"), crate::ids::random_id(12))
        .ignore()
        .get(engine.key("boot"))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let lost = matches!((&*boot, &current), (Some(old), Some(new)) if old != new);
    *boot = current;
    if lost {
        tracing::warn!("redis: it came back without its data; registering this node's sockets again");
        reregister(engine, &local).await?;
    }
    reap_dead_nodes(engine).await?;
    sweep_token_channels(engine).await?;
    prune_indexes(engine).await?;
    fire_overdue(engine).await
}

/// How many expired members one beat takes out of `P:aexp` (writes take some too).
const PRUNE_BATCH: u64 = 1000;

/// Takes expired members out of the indexes that writes prune only a few at a time: `P:aexp`
/// (cached auth records) and the history count's `P:hl`/`P:hx` (lists that expired), so they
/// stay bounded by what is alive even when nobody reads the stats.
async fn prune_indexes(engine: &RedisEngine) -> Result<(), EngineError> {
    let mut conn = engine.conn();
    let _: i64 = engine
        .inner
        .scripts
        .prune_auth
        .key(engine.key("aexp"))
        .arg(now_ms())
        .arg(PRUNE_BATCH)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let _: i64 = engine
        .inner
        .scripts
        .history_count
        .key(engine.key("hn"))
        .key(engine.key("hl"))
        .key(engine.key("hx"))
        .arg(now_ms())
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// How many content-token channels one beat sweeps (a random sample: with few channels every
/// one is swept each beat, with many each is in time; using a channel expires its tokens too).
const SWEEP_SAMPLE: isize = 64;
/// Expired tokens one sweep script call takes out, and calls per channel per beat.
const SWEEP_BATCH: u64 = 1000;
const SWEEP_CALLS: usize = 4;

/// Expires unused content tokens: the ones writes and joins leave (they take at most 64 each)
/// and those of channels nobody touches.
async fn sweep_token_channels(engine: &RedisEngine) -> Result<(), EngineError> {
    let mut conn = engine.conn();
    let channels: Vec<String> =
        conn.srandmember_multiple(engine.key("tcs"), SWEEP_SAMPLE).await.map_err(unavailable)?;
    for channel in channels {
        for _ in 0..SWEEP_CALLS {
            let seen: u64 = engine
                .inner
                .scripts
                .sweep_tokens
                .arg(&engine.inner.settings.prefix)
                .arg(&channel)
                .arg(now_ms())
                .arg(SWEEP_BATCH)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if seen < SWEEP_BATCH {
                break;
            }
        }
    }
    Ok(())
}

/// After Redis lost its data: count this node's sockets, presence and channels again, without
/// telling Drupal or watchers (they saw nothing change). Content tokens are gone with the data.
async fn reregister(engine: &RedisEngine, local: &[crate::engine::LocalSocket]) -> Result<(), EngineError> {
    for s in local {
        engine.register(&s.member, &s.watchers).await?;
    }
    let me = engine.inner.node_id.clone();
    for channel in engine.node().local_channels() {
        engine.channel_open(&me, &channel, true).await;
    }
    Ok(())
}

/// Takes the sockets of nodes whose heartbeat expired out of the shared state (one node does
/// it, under a lock): their users leave presence (offline after the grace period unless they
/// reconnected elsewhere), their sessions, channels and content-token channels.
async fn reap_dead_nodes(engine: &RedisEngine) -> Result<(), EngineError> {
    let mut conn = engine.conn();
    let nodes: Vec<String> = conn.smembers(engine.key("nodes")).await.map_err(unavailable)?;
    for node in nodes.into_iter().filter(|n| *n != engine.inner.node_id) {
        let alive: bool = conn.exists(engine.key(&format!("node:{node}"))).await.map_err(unavailable)?;
        if alive {
            continue;
        }
        let lock: bool = redis::cmd("SET")
            .arg(engine.key(&format!("reap:{node}")))
            .arg(&engine.inner.node_id)
            .arg("NX")
            .arg("EX")
            .arg(60)
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(unavailable)?
            .is_some();
        if lock {
            tracing::warn!(%node, "redis: a node stopped heartbeating; taking its sockets out");
            reap(engine, &node).await?;
        }
    }
    Ok(())
}

async fn reap(engine: &RedisEngine, node: &str) -> Result<(), EngineError> {
    let mut conn = engine.conn();
    let uids: Vec<String> = conn.smembers(engine.key(&format!("nu:{node}"))).await.map_err(unavailable)?;
    for uid in uids.iter().filter_map(|u| Uid::parse(u)) {
        engine.departed(node, &Member { uid, token: Arc::from("") }, false, 0).await;
    }
    let tokens: Vec<String> = conn.smembers(engine.key(&format!("ns:{node}"))).await.map_err(unavailable)?;
    for token in &tokens {
        let anonymous = Member { uid: Uid::ANONYMOUS, token: Arc::from(token.as_str()) };
        engine.departed(node, &anonymous, false, 0).await;
    }
    let joined: Vec<(String, u64)> =
        conn.hgetall(engine.key(&format!("nt:{node}"))).await.map_err(unavailable)?;
    for (entry, count) in joined {
        let parts: Vec<&str> = entry.split('\t').collect();
        if let [channel, token, mk, uid] = parts.as_slice() {
            let uid = Uid::parse(uid).unwrap_or(Uid::ANONYMOUS);
            engine.leave_token_as(node, channel, token, mk, uid, false, count).await;
        }
    }
    let channels: Vec<String> =
        conn.smembers(engine.key(&format!("nc:{node}"))).await.map_err(unavailable)?;
    for channel in channels {
        engine.channel_open(node, &channel, false).await;
    }
    let keys = ["nu", "ns", "nt", "nc"].map(|k| engine.key(&format!("{k}:{node}")));
    redis::pipe()
        .del(&keys)
        .ignore()
        .srem(engine.key("nodes"), node)
        .ignore()
        .query_async::<()>(&mut conn)
        .await
        .map_err(unavailable)
}

/// Fires decisions overdue by more than a beat: their node died before firing them.
async fn fire_overdue(engine: &RedisEngine) -> Result<(), EngineError> {
    let late = now_ms().saturating_sub(engine.inner.settings.node_ttl.as_millis() as u64 / 3);
    let due: Vec<String> =
        engine.conn().zrangebyscore_limit(engine.key("due"), 0, late, 0, 100).await.map_err(unavailable)?;
    for d in due {
        engine.fire(d).await;
    }
    Ok(())
}

/// online, channels, token channels, cached auth, waiting tokens, sessions, node ids.
type StatsReply = (Option<i64>, Option<i64>, usize, usize, Option<i64>, Option<i64>, Vec<String>);

/// Cluster-wide counters: each is one Redis value (nodes' socket counts come with their
/// heartbeats; the history count is kept by the publish script, see `scripts::HISTORY_COUNT`).
pub(super) async fn stats(engine: &RedisEngine) -> Result<EngineStats, EngineError> {
    let mut conn = engine.conn();
    let now = now_ms();
    let (online, channels, token_channels, cached, waiting, sessions, nodes): StatsReply = redis::pipe()
        .get(engine.key("online"))
        .get(engine.key("chn"))
        .scard(engine.key("tcs"))
        .zcount(engine.key("aexp"), now, "+inf")
        .get(engine.key("twait"))
        .get(engine.key("sessions"))
        .smembers(engine.key("nodes"))
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let keys: Vec<String> = nodes.iter().map(|n| engine.key(&format!("node:{n}"))).collect();
    let figures: Vec<Option<String>> =
        if keys.is_empty() { Vec::new() } else { conn.mget(&keys).await.map_err(unavailable)? };
    let alive: Vec<serde_json::Value> =
        figures.into_iter().flatten().filter_map(|f| serde_json::from_str(&f).ok()).collect();
    let history: i64 = engine
        .inner
        .scripts
        .history_count
        .key(engine.key("hn"))
        .key(engine.key("hl"))
        .key(engine.key("hx"))
        .arg(now)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let count = |v: Option<i64>| v.unwrap_or(0).max(0) as usize;
    Ok(EngineStats {
        online_users: count(online),
        channels: count(channels),
        token_channels,
        cached_auth_tokens: cached,
        waiting_content_tokens: count(waiting),
        sessions: count(sessions),
        history_messages: count(Some(history)),
        history_bytes: 0,
        nodes: alive.len(),
        cluster_sockets: alive.iter().map(|f| f["sockets"].as_u64().unwrap_or(0) as usize).sum(),
    })
}

/// Per content-token channel: unused tokens and joined sockets (scans; behind the key).
pub(super) async fn token_channel_details(
    engine: &RedisEngine,
) -> Result<Vec<TokenChannelDetail>, EngineError> {
    let mut conn = engine.conn();
    let channels: Vec<String> = conn.smembers(engine.key("tcs")).await.map_err(unavailable)?;
    let mut out = Vec::new();
    for channel in channels.into_iter().take(1000) {
        let entries: Vec<String> =
            conn.hvals(engine.key(&format!("t:{channel}"))).await.map_err(unavailable)?;
        let (mut waiting, mut sockets) = (0, 0);
        for e in entries {
            let users =
                serde_json::from_str::<serde_json::Value>(&e).ok().and_then(|v| v["u"].as_u64()).unwrap_or(0);
            if users == 0 {
                waiting += 1;
            }
            sockets += users as usize;
        }
        out.push(TokenChannelDetail { channel, waiting, sockets });
    }
    Ok(out)
}
