//! Channels in the Redis engine: `channel/add` and `channel/remove`, which nodes have members
//! of a channel (so a channel exists while any node has one), and joining or leaving a
//! channel for a user or a session (live everywhere, and in their cached auth records).

use super::{RedisEngine, streams, unavailable};
use crate::engine::{Event, Stream, Who};
use crate::error::EngineError;
use redis::AsyncCommands;
use std::sync::Arc;

/// A channel got its first member on `node` (`open`) or lost its last.
pub(super) async fn open(engine: &RedisEngine, node: &str, channel: &str, open: bool) {
    let keys = engine.keys();
    let done: Result<i64, _> = engine
        .scripts()
        .channel_open
        .key(keys.node_channels(node))
        .key(keys.channel_nodes())
        .key(keys.made_channels())
        .key(keys.channel_count())
        .arg(u8::from(open))
        .arg(channel)
        .invoke_async(&mut engine.conn())
        .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, channel, "channel bookkeeping failed");
    }
}

/// `channel/add` (true when made) or `channel/remove` (true when it existed).
async fn admin(engine: &RedisEngine, channel: &str, add: bool) -> Result<bool, EngineError> {
    let keys = engine.keys();
    let done: i64 = engine
        .scripts()
        .channel_admin
        .key(keys.made_channels())
        .key(keys.channel_nodes())
        .key(keys.channel_count())
        .key(keys.nodes())
        .arg(keys.prefix())
        .arg(channel)
        .arg(u8::from(add))
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(done == 1)
}

/// `Engine::add_channel`.
pub(super) async fn add(engine: &RedisEngine, channel: &str) -> Result<(), EngineError> {
    match admin(engine, channel, true).await? {
        true => Ok(()),
        false => Err(EngineError::ChannelExists(channel.to_owned())),
    }
}

/// `Engine::remove_channel`.
pub(super) async fn remove(engine: &RedisEngine, channel: &str) -> Result<(), EngineError> {
    if !admin(engine, channel, false).await? {
        return Err(EngineError::NoSuchChannel);
    }
    engine.command(Event::ChannelRemoved(Arc::from(channel))).await
}

/// `Engine::channel_exists`: made by `channel/add`, or with members on some node.
pub(super) async fn exists(engine: &RedisEngine, channel: &str) -> Result<bool, EngineError> {
    let (explicit, open): (bool, bool) = redis::pipe()
        .sismember(engine.keys().made_channels(), channel)
        .hexists(engine.keys().channel_nodes(), channel)
        .query_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(explicit || open)
}

/// `Engine::set_membership`.
pub(super) async fn set_membership(
    engine: &RedisEngine,
    who: Who,
    channel: &str,
    join: bool,
) -> Result<(), EngineError> {
    let (keys, mut conn) = (engine.keys(), engine.conn());
    match &who {
        Who::User(uid) => {
            if join {
                let sockets: Vec<String> = conn.hkeys(keys.user(*uid)).await.map_err(unavailable)?;
                if !sockets.iter().any(|f| f.starts_with("n:")) {
                    return Err(EngineError::NoActiveSessions);
                }
            } else if !exists(engine, channel).await? {
                return Err(EngineError::NoSuchChannel);
            }
        }
        Who::Session(token) => {
            let sockets: bool = conn.exists(keys.session(token)).await.map_err(unavailable)?;
            let known = sockets || conn.exists::<_, bool>(keys.auth(token)).await.map_err(unavailable)?;
            let ok = if join { sockets } else { known && exists(engine, channel).await? };
            if !ok {
                return Err(EngineError::InvalidParameters);
            }
        }
    }
    let (user_tokens, record) = match &who {
        Who::User(uid) => (keys.user_tokens(*uid), String::new()),
        Who::Session(t) => (String::new(), keys.auth(t)),
    };
    let _: i64 = engine
        .scripts()
        .edit_channels
        .key(user_tokens)
        .key(record)
        .arg(keys.prefix())
        .arg(channel)
        .arg(u8::from(join))
        .invoke_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let channel: Arc<str> = Arc::from(channel);
    let event = if join {
        let position = streams::recover(engine, &Stream::Channel(channel.clone()), None).await?.top;
        Event::JoinChannel { who, channel, position }
    } else {
        Event::LeaveChannel { who, channel }
    };
    engine.command(event).await
}
