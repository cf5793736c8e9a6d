//! Streams in the Redis engine: publishing (appended to the history and published on `P:pub`
//! by one script, so offsets and history agree), waiting for one's own publications to come
//! back, recovering what a client missed, and barriers ([`settle`]).

use super::{LOCAL_DELIVERY_WAIT, META_TTL_SECS, RedisEngine, now_ms, unavailable, wire};
use crate::engine::{Position, Publication, Recovery, Stream};
use crate::error::EngineError;
use redis::{AsyncCommands, Value as RedisValue};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

fn wait_for_own(engine: &RedisEngine) -> (u64, oneshot::Receiver<usize>) {
    let pid = engine.inner.next_pid.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    engine.waiting().insert(pid, tx);
    (pid, rx)
}

async fn own_delivery(engine: &RedisEngine, pid: u64, rx: oneshot::Receiver<usize>) -> usize {
    match tokio::time::timeout(LOCAL_DELIVERY_WAIT, rx).await {
        Ok(Ok(sent)) => sent,
        _ => {
            engine.waiting().remove(&pid);
            0
        }
    }
}

/// `Engine::publish_from`: a content-token channel must exist.
pub(super) async fn publish_from(
    engine: &RedisEngine,
    stream: Stream,
    message: Arc<RawValue>,
    sender: Option<Arc<str>>,
) -> Result<usize, EngineError> {
    if let Stream::Token(channel) = &stream {
        if !super::tokens::live(engine, channel).await? {
            return Err(EngineError::NoSuchTokenChannel);
        }
    }
    publish(engine, stream, message, sender.as_deref()).await
}

/// Appends and publishes (from the browser socket `sender`, if one published it); resolves once
/// this node delivered it.
pub(super) async fn publish(
    engine: &RedisEngine,
    stream: Stream,
    message: Arc<RawValue>,
    sender: Option<&str>,
) -> Result<usize, EngineError> {
    let key = stream.key();
    let h = engine.inner.settings.history;
    let keys = engine.keys();
    let [hn, hl, hx] = keys.history_count();
    let (pid, rx) = wait_for_own(engine);
    let published: Result<RedisValue, _> = engine
        .scripts()
        .publish
        .key(keys.stream_meta(&key))
        .key(keys.history(&key))
        .key(keys.publications())
        .key(hn)
        .key(hl)
        .key(hx)
        .arg(h.size)
        .arg(h.ttl.as_secs().max(1))
        .arg(now_ms())
        .arg(crate::ids::random_id(8))
        .arg(wire::header(engine.node_id(), pid, sender, &key))
        .arg(message.get())
        .arg(META_TTL_SECS.max(h.ttl.as_secs()))
        .invoke_async(&mut engine.conn())
        .await;
    if let Err(e) = published {
        engine.waiting().remove(&pid);
        return Err(unavailable(e));
    }
    Ok(own_delivery(engine, pid, rx).await)
}

/// `Engine::recover`.
pub(super) async fn recover(
    engine: &RedisEngine,
    stream: &Stream,
    since: Option<&Position>,
) -> Result<Recovery, EngineError> {
    let h = engine.inner.settings.history;
    if h.size == 0 {
        return Ok(Recovery::default());
    }
    let key = stream.key();
    let reply: Vec<RedisValue> = engine
        .scripts()
        .recover
        .key(engine.keys().stream_meta(&key))
        .key(engine.keys().history(&key))
        .arg(h.ttl.as_secs().max(1))
        .arg(now_ms())
        .arg(crate::ids::random_id(8))
        .arg(since.map_or(-1, |p| p.offset as i64))
        .arg(since.map_or("", |p| &*p.epoch))
        .arg(META_TTL_SECS.max(h.ttl.as_secs()))
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    recovery_of(stream, since, reply)
        .ok_or_else(|| EngineError::Unavailable("unexpected answer to a recovery".into()))
}

/// Reads `recover`'s reply: {top, epoch, recovered, messages...}.
fn recovery_of(stream: &Stream, since: Option<&Position>, reply: Vec<RedisValue>) -> Option<Recovery> {
    let text = |v: &RedisValue| -> Option<String> {
        match v {
            RedisValue::BulkString(b) => String::from_utf8(b.clone()).ok(),
            RedisValue::SimpleString(s) => Some(s.clone()),
            RedisValue::Int(i) => Some(i.to_string()),
            _ => None,
        }
    };
    let top: u64 = text(reply.first()?)?.parse().ok()?;
    let epoch: Arc<str> = Arc::from(text(reply.get(1)?)?);
    let recovered = text(reply.get(2)?)? == "1";
    let first = since.map_or(0, |p| p.offset);
    let replay = if recovered {
        reply[3..]
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let message = Arc::from(RawValue::from_string(text(v)?).ok()?);
                let position = Some(Position { offset: first + 1 + i as u64, epoch: epoch.clone() });
                Some(Publication { stream: stream.clone(), message, position, sender: None })
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(Recovery { top: Some(Position { offset: top, epoch }), replay, recovered })
}

/// The number of messages in all histories (taking lists that expired out of the count).
pub(super) async fn history_count(engine: &RedisEngine) -> Result<i64, EngineError> {
    let [hn, hl, hx] = engine.keys().history_count();
    engine
        .scripts()
        .history_count
        .key(hn)
        .key(hl)
        .key(hx)
        .arg(now_ms())
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)
}

/// `Engine::settle`: a barrier through `P:pub`; everything published before it was delivered
/// here once it comes back.
pub(super) async fn settle(engine: &RedisEngine) -> Result<(), EngineError> {
    let (pid, rx) = wait_for_own(engine);
    let payload = format!("{}\n0\n\n", wire::header(engine.node_id(), pid, None, ""));
    let sent: Result<i64, _> = engine.conn().publish(engine.keys().publications(), payload).await;
    if let Err(e) = sent {
        engine.waiting().remove(&pid);
        return Err(unavailable(e));
    }
    own_delivery(engine, pid, rx).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> RedisValue {
        RedisValue::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn recovery_replies_decode() {
        let stream = Stream::Channel(Arc::from("c"));
        let since = Position { offset: 3, epoch: Arc::from("ep") };
        let reply = vec![RedisValue::Int(5), bulk("ep"), RedisValue::Int(1), bulk("{\"a\":4}"), bulk("5")];
        let r = recovery_of(&stream, Some(&since), reply).unwrap();
        assert!(r.recovered);
        assert_eq!(r.top, Some(Position { offset: 5, epoch: Arc::from("ep") }));
        let offsets: Vec<u64> =
            r.replay.iter().filter_map(|p| p.position.as_ref().map(|p| p.offset)).collect();
        assert_eq!(offsets, [4, 5]);
        assert_eq!(r.replay[0].message.get(), "{\"a\":4}");
        let gap = vec![RedisValue::Int(9), bulk("ep"), RedisValue::Int(0)];
        let r = recovery_of(&stream, Some(&since), gap).unwrap();
        assert!(!r.recovered && r.replay.is_empty());
        assert!(recovery_of(&stream, None, vec![bulk("x")]).is_none());
    }
}
