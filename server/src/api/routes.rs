//! The handlers of the backend routes, one per route of spec 1.2, in its order. Each answers
//! `Ok(json)` or an [`ApiError`], which owns the original's error strings.

use super::as_text;
use super::body::JsonBody;
use super::error::{ApiError, MAX_CONTENT_TOKEN_LEN};
use crate::App;
use crate::config::COMPAT_VERSION;
use crate::engine::{Stream, Who};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use drupal_push_protocol::backend::is_truthy;
use drupal_push_protocol::frames::is_reserved_stream_key;
use drupal_push_protocol::{ChannelName, Uid};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type AppState = State<Arc<App>>;
type Answer = Result<Json<Value>, ApiError>;

fn success() -> Answer {
    Ok(Json(json!({"status": "success"})))
}

/// The two members of a publish body the server looks at; the rest travels untouched.
#[derive(Default, Deserialize)]
struct PublishHead {
    #[serde(default)]
    channel: Option<Value>,
    #[serde(default)]
    broadcast: Option<Value>,
}

impl PublishHead {
    /// `channel` as the original read it: truthy, and a string or a number.
    fn channel(&self) -> Option<String> {
        self.channel.as_ref().filter(|c| is_truthy(c)).and_then(as_text)
    }
}

fn uid(text: &str) -> Result<Uid, ApiError> {
    Uid::parse(text).ok_or(ApiError::InvalidUid)
}

fn channel_name(channel: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(channel).map_err(|_| ApiError::InvalidChannelName)
}

/// Route 1: `POST publish`: the body verbatim to a channel's sockets, or to all authenticated
/// sockets when `broadcast` is truthy. `sent` counts this node's sockets it reached. A channel
/// may be any text, as in the original, but the key of another stream (`*`, `token:…`):
/// that is `Invalid channel name.` (issue 24 finding 8).
pub async fn publish(State(app): AppState, body: JsonBody) -> Answer {
    let head: PublishHead = body.head();
    let broadcast = head.broadcast.as_ref().is_some_and(is_truthy);
    let stream = match (broadcast, head.channel()) {
        (true, _) => Stream::Broadcast,
        (false, Some(c)) if is_reserved_stream_key(&c) => return Err(ApiError::InvalidChannelName),
        (false, Some(c)) => Stream::Channel(Arc::from(c)),
        (false, None) => return Err(ApiError::MissingParameters),
    };
    let sent = app.engine.publish(stream, Arc::from(body.raw)).await?;
    tracing::debug!(sent, broadcast, "published");
    Ok(Json(json!({"status": "success", "sent": sent})))
}

/// Route 2: `user/kick/:uid`: closes every socket of the user (close 4002) and forgets its auth.
pub async fn kick(State(app): AppState, Path(text): Path<String>) -> Answer {
    let uid = uid(&text)?;
    app.engine.kick(uid).await?;
    tracing::info!(%uid, "user kicked");
    success()
}

/// Route 3: `user/logout/:authtoken`: closes the session's sockets (close 4003) and forgets its auth.
pub async fn logout(State(app): AppState, Path(token): Path<String>) -> Answer {
    app.engine.logout(&token).await?;
    tracing::info!(token = %crate::ids::redact(&token), "session logged out");
    success()
}

/// Routes 4 and 5: `user/channel/add|remove/:channel/:uid`.
async fn user_channel(app: &App, channel: &str, text: &str, join: bool) -> Answer {
    let uid = uid(text)?;
    let channel = channel_name(channel)?;
    app.engine.set_membership(Who::User(uid), channel.as_str(), join).await?;
    success()
}

/// Route 4: `user/channel/add/:channel/:uid`.
pub async fn user_channel_add(State(app): AppState, Path((channel, uid)): Path<(String, String)>) -> Answer {
    user_channel(&app, &channel, &uid, true).await
}

/// Route 5: `user/channel/remove/:channel/:uid`.
pub async fn user_channel_remove(
    State(app): AppState,
    Path((channel, uid)): Path<(String, String)>,
) -> Answer {
    user_channel(&app, &channel, &uid, false).await
}

/// Route 10: `user/presence-list/:uid/:uidList`: who may see the user's presence (broken in the
/// original: spec 7.1).
pub async fn presence_list(State(app): AppState, Path((text, list)): Path<(String, String)>) -> Answer {
    let uid = uid(&text)?;
    let watchers: Option<Vec<Uid>> =
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Uid::parse).collect();
    let watchers = watchers.ok_or(ApiError::InvalidUid)?;
    app.engine.set_presence_list(uid, watchers).await?;
    success()
}

/// Route 6: `channel/add/:channel`.
pub async fn channel_add(State(app): AppState, Path(channel): Path<String>) -> Answer {
    app.engine.add_channel(channel_name(&channel)?.as_str()).await?;
    success()
}

/// Route 9: `channel/remove/:channel`.
pub async fn channel_remove(State(app): AppState, Path(channel): Path<String>) -> Answer {
    app.engine.remove_channel(channel_name(&channel)?.as_str()).await?;
    success()
}

/// Route 8: `channel/check/:channel`.
pub async fn channel_check(State(app): AppState, Path(channel): Path<String>) -> Answer {
    let result = app.engine.channel_exists(channel_name(&channel)?.as_str()).await?;
    Ok(Json(json!({"status": "success", "result": result})))
}

/// Route 7: `health/check`: counters, `status` and the compatible `version` Drupal 8+ requires.
pub async fn health_check(State(app): AppState) -> Answer {
    let mut v = crate::ops::status::health(&app).await;
    v["status"] = json!("success");
    v["version"] = json!(COMPAT_VERSION);
    v["server"] = json!(concat!("drupal-push ", env!("CARGO_PKG_VERSION")));
    Ok(Json(v))
}

/// Route 11: `debug/toggle`: `{"debug": …}` switches verbose logging on or off (the original could
/// not switch it off: spec 7.7).
pub async fn debug_toggle(State(app): AppState, body: JsonBody) -> Answer {
    let members = body.members();
    let value = members.get("debug").ok_or(ApiError::MissingParameters)?;
    app.set_debug(is_truthy(value));
    Ok(Json(json!({"status": "success", "debug": value})))
}

/// Route 13: `content/token`: stores the token record Drupal sends for a content-token channel.
/// The `status` of the answer follows `contentTokenStatus`; with `auto`, a request without a
/// `Content-Type` header (Drupal 7) gets `ok`, any other `success`.
pub async fn content_token(State(app): AppState, headers: HeaderMap, body: JsonBody) -> Answer {
    let record = body.members();
    let channel = record.get("channel").filter(|v| is_truthy(v)).and_then(as_text);
    let token = record.get("token").filter(|v| is_truthy(v)).and_then(as_text);
    let (Some(channel), Some(token)) = (channel, token) else { return Err(ApiError::MissingParameters) };
    if channel.len() > drupal_push_protocol::names::MAX_CHANNEL_NAME_LEN {
        return Err(ApiError::InvalidChannelName);
    }
    if token.len() > MAX_CONTENT_TOKEN_LEN {
        return Err(ApiError::ContentTokenTooLong);
    }
    app.engine.set_content_token(&channel, &token, record).await?;
    let status = app.settings.api.content_token_status.answer(headers.contains_key(header::CONTENT_TYPE));
    Ok(Json(json!({"status": status})))
}

/// Route 12: `content/token/users`.
pub async fn content_token_users(State(app): AppState, body: JsonBody) -> Answer {
    let members = body.members();
    let channel = members
        .get("channel")
        .filter(|v| is_truthy(v))
        .and_then(as_text)
        .ok_or(ApiError::MissingParameters)?;
    let users = app.engine.token_channel_users(&channel).await?;
    Ok(Json(json!({"users": {"uids": users.uids, "authTokens": users.auth_tokens}})))
}

/// Route 14: `content/token/message`: the body verbatim to every socket in the token channel.
pub async fn content_token_message(State(app): AppState, body: JsonBody) -> Answer {
    let head: PublishHead = body.head();
    let channel = head.channel().ok_or(ApiError::InvalidMessage)?;
    let sent = app.engine.publish(Stream::Token(Arc::from(channel)), Arc::from(body.raw)).await?;
    Ok(Json(json!({"status": "success", "sent": sent})))
}

/// Routes 15 and 16: `authtoken/channel/add|remove/:channel/:authToken`.
async fn token_channel(app: &App, channel: &str, token: String, join: bool) -> Answer {
    let channel = channel_name(channel)?;
    app.engine.set_membership(Who::Session(Arc::from(token)), channel.as_str(), join).await?;
    success()
}

/// Route 15: `authtoken/channel/add/:channel/:authToken`.
pub async fn token_channel_add(
    State(app): AppState,
    Path((channel, token)): Path<(String, String)>,
) -> Answer {
    token_channel(&app, &channel, token, true).await
}

/// Route 16: `authtoken/channel/remove/:channel/:authToken` (the original answered 500 for
/// unknown tokens: spec 7.4).
pub async fn token_channel_remove(
    State(app): AppState,
    Path((channel, token)): Path<(String, String)>,
) -> Answer {
    token_channel(&app, &channel, token, false).await
}
