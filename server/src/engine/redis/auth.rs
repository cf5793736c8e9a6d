//! Cached auth records in the Redis engine (`P:a:<token>`, indexed by expiry in `P:aexp` and
//! per user in `P:at:<uid>`), and what drops them: kicking a user, logging a session out.

use super::{RedisEngine, now_ms, unavailable, wire};
use crate::engine::{AuthRecord, Event};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use redis::AsyncCommands;
use std::sync::Arc;

/// `Engine::cached_auth`.
pub(super) async fn cached(
    engine: &RedisEngine,
    token: &str,
) -> Result<Option<Arc<AuthRecord>>, EngineError> {
    let text: Option<String> = engine.conn().get(engine.keys().auth(token)).await.map_err(unavailable)?;
    Ok(text.as_deref().and_then(wire::decode_record).map(Arc::new))
}

/// `Engine::cache_auth`.
pub(super) async fn cache(
    engine: &RedisEngine,
    token: Arc<str>,
    record: Arc<AuthRecord>,
) -> Result<(), EngineError> {
    let (keys, uid) = (engine.keys(), record.uid);
    let ttl = engine.inner.settings.auth_cache_ttl.as_secs().max(1);
    let user = if uid.is_anonymous() { String::new() } else { keys.user_tokens(uid) };
    let _: i64 = engine
        .scripts()
        .cache_auth
        .key(keys.auth(&token))
        .key(keys.auth_expiry())
        .key(user)
        .arg(wire::encode_record(&record))
        .arg(ttl)
        .arg(&*token)
        .arg(now_ms())
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// Drops cached records.
async fn uncache(engine: &RedisEngine, tokens: &[String]) -> Result<(), EngineError> {
    if tokens.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for t in tokens {
        pipe.del(engine.keys().auth(t)).ignore();
        pipe.zrem(engine.keys().auth_expiry(), t).ignore();
    }
    pipe.query_async::<()>(&mut engine.conn()).await.map_err(unavailable)
}

/// `Engine::kick`: every record of the user goes, then its sockets everywhere.
pub(super) async fn kick(engine: &RedisEngine, uid: Uid) -> Result<(), EngineError> {
    let tokens: Vec<String> =
        engine.conn().zrange(engine.keys().user_tokens(uid), 0, -1).await.map_err(unavailable)?;
    uncache(engine, &tokens).await?;
    engine.command(Event::Kick(uid)).await
}

/// `Engine::logout`.
pub(super) async fn logout(engine: &RedisEngine, token: &str) -> Result<(), EngineError> {
    uncache(engine, &[token.to_owned()]).await?;
    engine.command(Event::Logout(Arc::from(token))).await
}
