//! Presence in the Redis engine: sockets counted per session and user (`arrived`,
//! `departed`), a user going online and offline (announced to watchers everywhere and to
//! Drupal from the right node), the grace period before an offline, and the pending decisions
//! of `P:due` (offlines and content-token leave notices) that fire after it.

use super::replies::{Departure, Due};
use super::{RedisEngine, now_ms, tokens, unavailable, wire};
use crate::engine::{Event, Member};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::PresenceEvent;
use redis::AsyncCommands;

/// `Engine::arrived`.
pub(super) async fn arrived(
    engine: &RedisEngine,
    member: Member,
    watchers: Vec<Uid>,
) -> Result<(), EngineError> {
    let online = register(engine, &member, &watchers).await?;
    if online {
        let json = serde_json::to_string(&watchers).unwrap_or_default();
        announce(engine, member.uid, true, &json, engine.node_id()).await;
    }
    Ok(())
}

/// The keys a socket's arrival and departure both count it in, as those scripts' first KEYS:
/// the user's presence, this node's users, the session, this node's sessions, who is online,
/// the session count.
fn socket_keys<'a, 'b>(
    engine: &RedisEngine,
    invocation: &'b mut redis::ScriptInvocation<'a>,
    node: &str,
    member: &Member,
) -> &'b mut redis::ScriptInvocation<'a> {
    let keys = engine.keys();
    invocation
        .key(keys.user(member.uid))
        .key(keys.node_users(node))
        .key(keys.session(&member.token))
        .key(keys.node_sessions(node))
        .key(keys.online())
        .key(keys.session_count())
}

/// Counts a socket in its session and presence; true when the user just came online.
pub(super) async fn register(
    engine: &RedisEngine,
    member: &Member,
    watchers: &[Uid],
) -> Result<bool, EngineError> {
    let (uid, node, keys) = (member.uid, engine.node_id(), engine.keys());
    let became: i64 = socket_keys(engine, &mut engine.scripts().arrived.prepare_invoke(), node, member)
        .arg(keys.prefix())
        .arg(node)
        .arg(uid.0)
        .arg(serde_json::to_string(watchers).unwrap_or_default())
        .arg(&*member.token)
        .arg(u8::from(uid.is_anonymous()))
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(became == 1)
}

/// Sockets of `member` on `node` left (`count` 0: all of a dead node's).
pub(super) async fn departed(engine: &RedisEngine, node: &str, member: &Member, forced: bool, count: u64) {
    let (uid, keys) = (member.uid, engine.keys());
    let due = now_ms() + engine.inner.settings.presence_grace.as_millis() as u64;
    let reply: Result<Vec<String>, _> =
        socket_keys(engine, &mut engine.scripts().departed.prepare_invoke(), node, member)
            .key(keys.due())
            .arg(keys.prefix())
            .arg(node)
            .arg(uid.0)
            .arg(&*member.token)
            .arg(u8::from(uid.is_anonymous()))
            .arg(u8::from(forced))
            .arg(count)
            .arg(due)
            .arg(Due::offline_head(uid))
            .invoke_async(&mut engine.conn())
            .await;
    match reply {
        Ok(reply) => on_departure(engine, uid, Departure::decode(reply)).await,
        Err(e) => tracing::warn!(error = %e, %uid, "presence departure failed"),
    }
}

/// Runs what a departure or the end of its grace period decided.
async fn on_departure(engine: &RedisEngine, uid: Uid, departure: Departure) {
    match departure {
        Departure::Offline { watchers, owner } => announce(engine, uid, false, &watchers, &owner).await,
        Departure::Grace { generation } => schedule(engine, Due::Offline { uid, generation }),
        Departure::Stay => {}
    }
}

/// A presence transition decided here: the watchers' sockets everywhere, and Drupal, from the
/// node whose notice queue holds the user's previous notice (`owner`).
async fn announce(engine: &RedisEngine, uid: Uid, online: bool, watchers: &str, owner: &str) {
    let watchers: Vec<Uid> = serde_json::from_str(watchers).unwrap_or_default();
    let message =
        if online { BackendMessage::UserOnline { uid } } else { BackendMessage::UserOffline { uid } };
    let me = engine.node_id();
    let mut told = owner.is_empty() || owner == me;
    if !told {
        let alive: bool = engine.conn().exists(engine.keys().node(owner)).await.unwrap_or(false);
        told = !alive;
        if alive {
            let text = wire::Command::notify(me, owner, uid, online).encode();
            let sent: Result<i64, _> = engine.conn().publish(engine.keys().commands(), text).await;
            told = sent.is_err();
        }
    }
    if told {
        engine.node().notify_backend(message);
    }
    let event = if online { PresenceEvent::Online } else { PresenceEvent::Offline };
    if let Err(e) = engine.command(Event::Presence { uid, event, watchers: watchers.into() }).await {
        tracing::warn!(error = %e, %uid, "could not announce a presence change to the other nodes");
    }
}

/// Fires a pending decision of `P:due` after the grace period, here (any node fires it when
/// overdue, see `heartbeat`).
pub(super) fn schedule(engine: &RedisEngine, due: Due) {
    let (engine, grace) = (engine.clone(), engine.inner.settings.presence_grace);
    tokio::spawn(async move {
        tokio::time::sleep(grace).await;
        fire(&engine, due.encode()).await;
    });
}

/// Runs a pending decision (an entry of `P:due`) unless another node already took it.
pub(super) async fn fire(engine: &RedisEngine, entry: String) {
    let taken: Result<i64, _> = engine.conn().zrem(engine.keys().due(), &entry).await;
    if !matches!(taken, Ok(1)) {
        return;
    }
    match Due::decode(&entry) {
        Some(Due::Offline { uid, generation }) => {
            let keys = engine.keys();
            let reply: Result<Vec<String>, _> = engine
                .scripts()
                .grace_over
                .key(keys.user(uid))
                .key(keys.online())
                .arg(keys.prefix())
                .arg(uid.0)
                .arg(generation)
                .invoke_async(&mut engine.conn())
                .await;
            match reply {
                Ok(reply) => on_departure(engine, uid, Departure::decode(reply)).await,
                Err(e) => tracing::warn!(error = %e, %uid, "offline decision failed"),
            }
        }
        Some(Due::TokenLeave { channel, member, uid, generation }) => {
            tokens::grace_over(engine, &channel, &member, uid, &generation).await;
        }
        None => tracing::warn!(due = entry, "unknown pending decision"),
    }
}

/// `Engine::online_watched`.
pub(super) async fn online_watched(engine: &RedisEngine, watcher: Uid) -> Result<Vec<Uid>, EngineError> {
    let members: Vec<String> =
        engine.conn().smembers(engine.keys().watched(watcher)).await.map_err(unavailable)?;
    let mut uids: Vec<Uid> = members.iter().filter_map(|m| Uid::parse(m)).collect();
    uids.sort_unstable();
    Ok(uids)
}

/// `Engine::set_presence_list`: live, and in the user's cached records.
pub(super) async fn set_list(engine: &RedisEngine, uid: Uid, watchers: Vec<Uid>) -> Result<(), EngineError> {
    let keys = engine.keys();
    let _: i64 = engine
        .scripts()
        .presence_list
        .key(keys.user(uid))
        .key(keys.user_tokens(uid))
        .arg(keys.prefix())
        .arg(uid.0)
        .arg(serde_json::to_string(&watchers).unwrap_or_default())
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(())
}
