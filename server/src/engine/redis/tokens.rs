//! Content tokens in the Redis engine: `content/token`, joins and leaves of content-token
//! channels (with the grace period before a leave notice) and who is in one.

use super::replies::{Due, JoinOutcome, MemberKey, TokenJoin, TokenLeave, member_key, parse_member_key};
use super::{RedisEngine, now_ms, presence, streams, unavailable};
use crate::engine::{Member, Stream, TokenChannelUsers};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::is_truthy;
use drupal_push_protocol::drupal;
use redis::AsyncCommands;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Adds a content-token channel's own keys, in the order the token scripts take them:
/// `t:<ch>`, `tx:<ch>`, `tm:<ch>`, `tl:<ch>`.
fn channel_keys<'a, 'b>(
    engine: &RedisEngine,
    invocation: &'b mut redis::ScriptInvocation<'a>,
    channel: &str,
) -> &'b mut redis::ScriptInvocation<'a> {
    let keys = engine.keys();
    invocation
        .key(keys.tokens(channel))
        .key(keys.token_expiry(channel))
        .key(keys.token_members(channel))
        .key(keys.token_leaves(channel))
}

/// `Engine::set_content_token`.
pub(super) async fn set(
    engine: &RedisEngine,
    channel: &str,
    token: &str,
    record: Map<String, Value>,
) -> Result<(), EngineError> {
    let notify = record.get("notifyOnDisconnect").is_some_and(is_truthy);
    let record = serde_json::to_string(&record).unwrap_or_default();
    let keys = engine.keys();
    let _: i64 = engine
        .scripts()
        .set_token
        .key(keys.tokens(channel))
        .key(keys.token_expiry(channel))
        .key(keys.waiting_tokens())
        .key(keys.token_channels())
        .arg(channel)
        .arg(token)
        .arg(record)
        .arg(u8::from(notify))
        .arg(now_ms())
        .arg(engine.inner.settings.content_token_ttl.as_millis() as u64)
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// `Engine::join_token_channel`: the notice to publish when the member is new.
pub(super) async fn join(
    engine: &RedisEngine,
    channel: &str,
    token: &str,
    member: &Member,
) -> Result<Option<Arc<RawValue>>, EngineError> {
    let keys = engine.keys();
    let mk = member_key(member);
    let join = TokenJoin {
        channel: channel.to_owned(),
        token: token.to_owned(),
        member: mk.clone(),
        uid: member.uid,
    };
    let reply: Vec<String> = channel_keys(engine, &mut engine.scripts().join_token.prepare_invoke(), channel)
        .key(keys.waiting_tokens())
        .key(keys.node_tokens(engine.node_id()))
        .key(keys.token_channels())
        .arg(token)
        .arg(&mk)
        .arg(&*member.token)
        .arg(now_ms())
        .arg(join.encode())
        .arg(channel)
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    match JoinOutcome::decode(reply) {
        JoinOutcome::Unknown => Err(EngineError::UnknownContentToken),
        JoinOutcome::OtherSession => Err(EngineError::OtherSession),
        JoinOutcome::Notice(record) => Ok(Some(Arc::from(drupal::client_joined_token_channel(&record)))),
        JoinOutcome::Joined => Ok(None),
    }
}

/// `Engine::token_channel_users`.
pub(super) async fn users(engine: &RedisEngine, channel: &str) -> Result<TokenChannelUsers, EngineError> {
    let members: Vec<String> =
        engine.conn().hkeys(engine.keys().token_members(channel)).await.map_err(unavailable)?;
    let mut users = TokenChannelUsers::default();
    for m in &members {
        match parse_member_key(m) {
            Some(MemberKey::User(uid)) => users.uids.push(uid),
            Some(MemberKey::Session(token)) => users.auth_tokens.push(token.to_owned()),
            None => {}
        }
    }
    users.uids.sort_unstable();
    users.auth_tokens.sort_unstable();
    Ok(users)
}

/// One socket of `member` on `node` left a content-token channel.
pub(super) async fn leave(
    engine: &RedisEngine,
    node: &str,
    channel: &str,
    token: &str,
    member: &Member,
    forced: bool,
) {
    let join = TokenJoin {
        channel: channel.to_owned(),
        token: token.to_owned(),
        member: member_key(member),
        uid: member.uid,
    };
    leave_as(engine, node, &join, forced, 1).await;
}

/// `count` sockets of a node's join left (all of a dead node's, or one).
pub(super) async fn leave_as(engine: &RedisEngine, node: &str, join: &TokenJoin, forced: bool, count: u64) {
    let (keys, channel) = (engine.keys(), join.channel.as_str());
    let now = now_ms();
    let due = now + engine.inner.settings.presence_grace.as_millis() as u64;
    let reply: Result<Vec<String>, _> =
        channel_keys(engine, &mut engine.scripts().leave_token.prepare_invoke(), channel)
            .key(keys.waiting_tokens())
            .key(keys.node_tokens(node))
            .key(keys.leave_generation())
            .key(keys.due())
            .arg(&join.token)
            .arg(&join.member)
            .arg(join.encode())
            .arg(u8::from(forced))
            .arg(count)
            .arg(now)
            .arg(due)
            .arg(engine.inner.settings.content_token_ttl.as_millis() as u64)
            .arg(Due::token_leave_head(channel, &join.member, join.uid))
            .invoke_async(&mut engine.conn())
            .await;
    match reply.map(TokenLeave::decode) {
        Ok(TokenLeave::Notify) => leave_notice(engine, channel, join.uid).await,
        Ok(TokenLeave::Grace { generation }) => presence::schedule(
            engine,
            Due::TokenLeave {
                channel: channel.to_owned(),
                member: join.member.clone(),
                uid: join.uid,
                generation,
            },
        ),
        Ok(TokenLeave::Nothing) => {}
        Err(e) => tracing::warn!(error = %e, channel, "content-token leave failed"),
    }
}

/// A member's leave grace ran out (a decision of `P:due`): the notice, unless it came back.
pub(super) async fn grace_over(
    engine: &RedisEngine,
    channel: &str,
    member: &str,
    uid: Uid,
    generation: &str,
) {
    let notify: Result<i64, _> =
        channel_keys(engine, &mut engine.scripts().token_grace_over.prepare_invoke(), channel)
            .key(engine.keys().token_channels())
            .arg(channel)
            .arg(member)
            .arg(generation)
            .invoke_async(&mut engine.conn())
            .await;
    if matches!(notify, Ok(1)) {
        leave_notice(engine, channel, uid).await;
    }
}

async fn leave_notice(engine: &RedisEngine, channel: &str, uid: Uid) {
    let notice = drupal::content_channel_disconnect(channel, uid);
    if let Err(e) = streams::publish(engine, Stream::Token(Arc::from(channel)), Arc::from(notice), None).await
    {
        tracing::warn!(error = %e, channel, "could not publish a leave notice");
    }
}

/// Sweeps one content-token channel (see `sweep_tokens.lua`); how many tokens it looked at.
pub(super) async fn sweep(engine: &RedisEngine, channel: &str, limit: u64) -> Result<u64, EngineError> {
    let keys = engine.keys();
    channel_keys(engine, &mut engine.scripts().sweep_tokens.prepare_invoke(), channel)
        .key(keys.waiting_tokens())
        .key(keys.token_channels())
        .arg(channel)
        .arg(now_ms())
        .arg(limit)
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)
}

/// Whether a content-token channel exists, its expired tokens taken out first (see
/// `token_channel_live.lua`).
pub(super) async fn live(engine: &RedisEngine, channel: &str) -> Result<bool, EngineError> {
    let keys = engine.keys();
    let known: i64 = channel_keys(engine, &mut engine.scripts().token_channel_live.prepare_invoke(), channel)
        .key(keys.waiting_tokens())
        .key(keys.token_channels())
        .arg(channel)
        .arg(now_ms())
        .invoke_async(&mut engine.conn())
        .await
        .map_err(unavailable)?;
    Ok(known == 1)
}
