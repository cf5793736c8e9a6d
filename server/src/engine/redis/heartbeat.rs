//! The Redis engine's heartbeat: this node alive, Redis's data still there (or this node's
//! sockets registered again), dead nodes reaped, overdue decisions fired, and the indexes that
//! writes prune only a little at a time pruned.

use super::replies::TokenJoin;
use super::tasks::upgrade;
use super::{RedisEngine, channels, now_ms, presence, streams, tokens, unavailable};
use crate::engine::Member;
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use redis::AsyncCommands;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Every third of `node_ttl`: refresh this node's heartbeat, notice a Redis that lost its
/// data, reap dead nodes, fire overdue decisions.
pub(super) async fn run(weak: std::sync::Weak<super::Inner>) {
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
        .arg(engine.keys().node(&me))
        .arg(figures)
        .arg("PX")
        .arg(ttl_ms)
        .ignore()
        .sadd(engine.keys().nodes(), &me)
        .ignore()
        .set_nx(engine.keys().boot(), crate::ids::random_id(12))
        .ignore()
        .get(engine.keys().boot())
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
        .scripts()
        .prune_auth
        .key(engine.keys().auth_expiry())
        .arg(now_ms())
        .arg(PRUNE_BATCH)
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    streams::history_count(engine).await?;
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
        conn.srandmember_multiple(engine.keys().token_channels(), SWEEP_SAMPLE).await.map_err(unavailable)?;
    for channel in channels {
        for _ in 0..SWEEP_CALLS {
            let seen = tokens::sweep(engine, &channel, SWEEP_BATCH).await?;
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
        presence::register(engine, &s.member, &s.watchers).await?;
    }
    let me = engine.inner.node_id.clone();
    for channel in engine.node().local_channels() {
        channels::open(engine, &me, &channel, true).await;
    }
    Ok(())
}

/// Takes the sockets of nodes whose heartbeat expired out of the shared state (one node does
/// it, under a lock): their users leave presence (offline after the grace period unless they
/// reconnected elsewhere), their sessions, channels and content-token channels.
async fn reap_dead_nodes(engine: &RedisEngine) -> Result<(), EngineError> {
    let mut conn = engine.conn();
    let nodes: Vec<String> = conn.smembers(engine.keys().nodes()).await.map_err(unavailable)?;
    for node in nodes.into_iter().filter(|n| *n != engine.inner.node_id) {
        let alive: bool = conn.exists(engine.keys().node(&node)).await.map_err(unavailable)?;
        if alive {
            continue;
        }
        let lock: bool = redis::cmd("SET")
            .arg(engine.keys().reap_lock(&node))
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
    let uids: Vec<String> = conn.smembers(engine.keys().node_users(node)).await.map_err(unavailable)?;
    for uid in uids.iter().filter_map(|u| Uid::parse(u)) {
        presence::departed(engine, node, &Member { uid, token: Arc::from("") }, false, 0).await;
    }
    let tokens: Vec<String> = conn.smembers(engine.keys().node_sessions(node)).await.map_err(unavailable)?;
    for token in &tokens {
        let anonymous = Member { uid: Uid::ANONYMOUS, token: Arc::from(token.as_str()) };
        presence::departed(engine, node, &anonymous, false, 0).await;
    }
    let joined: Vec<(String, u64)> =
        conn.hgetall(engine.keys().node_tokens(node)).await.map_err(unavailable)?;
    for (field, count) in joined {
        if let Some(join) = TokenJoin::decode(&field) {
            tokens::leave_as(engine, node, &join, false, count).await;
        }
    }
    let channels: Vec<String> =
        conn.smembers(engine.keys().node_channels(node)).await.map_err(unavailable)?;
    for channel in channels {
        channels::open(engine, node, &channel, false).await;
    }
    let keys = engine.keys();
    let owned =
        [keys.node_users(node), keys.node_sessions(node), keys.node_tokens(node), keys.node_channels(node)];
    redis::pipe()
        .del(&owned)
        .ignore()
        .srem(keys.nodes(), node)
        .ignore()
        .query_async::<()>(&mut conn)
        .await
        .map_err(unavailable)
}

/// Fires decisions overdue by more than a beat: their node died before firing them.
async fn fire_overdue(engine: &RedisEngine) -> Result<(), EngineError> {
    let late = now_ms().saturating_sub(engine.inner.settings.node_ttl.as_millis() as u64 / 3);
    let due: Vec<String> =
        engine.conn().zrangebyscore_limit(engine.keys().due(), 0, late, 0, 100).await.map_err(unavailable)?;
    for d in due {
        presence::fire(engine, d).await;
    }
    Ok(())
}
