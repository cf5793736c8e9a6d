//! The handlers of the backend routes, one per route of spec 1.2, in its order.

use super::body::JsonBody;
use super::{as_text, error, failed, success};
use crate::App;
use crate::config::COMPAT_VERSION;
use crate::hub::Target;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use drupal_push_protocol::backend::is_truthy;
use drupal_push_protocol::{ChannelName, Uid};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type AppState = State<Arc<App>>;

const MISSING: &str = "Required parameters are missing.";

/// The two members of a publish body the server looks at; the rest travels untouched.
#[derive(Default, Deserialize)]
struct PublishHead {
    #[serde(default)]
    channel: Option<Value>,
    #[serde(default)]
    broadcast: Option<Value>,
}

/// Route 1: `POST publish`: the body verbatim to a channel's sockets, or to all authenticated
/// sockets when `broadcast` is truthy. `sent` counts sockets it was queued for.
pub async fn publish(State(app): AppState, body: JsonBody) -> Response {
    let head: PublishHead = body.head();
    let broadcast = head.broadcast.as_ref().is_some_and(is_truthy);
    let channel = head.channel.as_ref().filter(|c| is_truthy(c)).and_then(as_text);
    let sent = match (broadcast, channel) {
        (true, _) => app.hub.publish(&body.raw, Target::Broadcast),
        (false, Some(c)) => app.hub.publish(&body.raw, Target::Channel(&c)),
        (false, None) => return error(MISSING),
    };
    tracing::debug!(sent, broadcast, "published");
    Json(json!({"status": "success", "sent": sent})).into_response()
}

/// Route 2: `user/kick/:uid`: closes every socket of the user (close 4002) and forgets its auth.
pub async fn kick(State(app): AppState, Path(uid): Path<String>) -> Response {
    let Some(uid) = Uid::parse(&uid) else { return failed("Invalid uid.") };
    app.hub.kick_user(uid);
    tracing::info!(%uid, "user kicked");
    success()
}

/// Route 3: `user/logout/:authtoken`: closes the session's sockets (close 4003) and forgets its auth.
pub async fn logout(State(app): AppState, Path(token): Path<String>) -> Response {
    app.hub.logout(&token);
    tracing::info!(token = %crate::conn::redact(&token), "session logged out");
    success()
}

/// `{"status":"success"}`, or the original's failure shape with the error string.
fn reply<E: AsRef<str>>(result: Result<(), E>) -> Response {
    match result {
        Ok(()) => success(),
        Err(e) => failed(e.as_ref()),
    }
}

fn uid_and_channel(uid: &str, channel: &str) -> Result<(Uid, ChannelName), &'static str> {
    let uid = Uid::parse(uid).ok_or("Invalid uid.")?;
    Ok((uid, channel_name(channel)?))
}

/// Route 4: `user/channel/add/:channel/:uid`.
pub async fn user_channel_add(
    State(app): AppState,
    Path((channel, uid)): Path<(String, String)>,
) -> Response {
    reply(uid_and_channel(&uid, &channel).and_then(|(uid, ch)| app.hub.add_user_to_channel(ch.as_str(), uid)))
}

/// Route 5: `user/channel/remove/:channel/:uid`.
pub async fn user_channel_remove(
    State(app): AppState,
    Path((channel, uid)): Path<(String, String)>,
) -> Response {
    reply(
        uid_and_channel(&uid, &channel)
            .and_then(|(uid, ch)| app.hub.remove_user_from_channel(ch.as_str(), uid)),
    )
}

/// Route 10: `user/presence-list/:uid/:uidList`: who may see the user's presence (broken in the
/// original: spec 7.1).
pub async fn presence_list(State(app): AppState, Path((uid, list)): Path<(String, String)>) -> Response {
    let Some(uid) = Uid::parse(&uid) else { return failed("Invalid uid.") };
    let watchers: Option<Vec<Uid>> =
        list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Uid::parse).collect();
    let Some(watchers) = watchers else { return failed("Invalid uid.") };
    app.hub.set_presence_list(uid, watchers);
    success()
}

fn channel_name(channel: &str) -> Result<ChannelName, &'static str> {
    ChannelName::parse(channel).map_err(|_| "Invalid channel name.")
}

/// Route 6: `channel/add/:channel`.
pub async fn channel_add(State(app): AppState, Path(channel): Path<String>) -> Response {
    reply(channel_name(&channel).map_err(String::from).and_then(|ch| app.hub.add_channel(ch.as_str())))
}

/// Route 9: `channel/remove/:channel`.
pub async fn channel_remove(State(app): AppState, Path(channel): Path<String>) -> Response {
    reply(channel_name(&channel).and_then(|ch| app.hub.remove_channel(ch.as_str())))
}

/// Route 8: `channel/check/:channel`.
pub async fn channel_check(State(app): AppState, Path(channel): Path<String>) -> Response {
    let channel = match channel_name(&channel) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    Json(json!({"status": "success", "result": app.hub.channel_exists(channel.as_str())})).into_response()
}

/// Route 7: `health/check`: counters, `status` and the compatible `version` Drupal 8+ requires.
pub async fn health_check(State(app): AppState) -> Response {
    let mut v = serde_json::to_value(app.hub.stats()).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), json!("success"));
        m.insert("version".into(), json!(COMPAT_VERSION));
        m.insert("server".into(), json!(concat!("drupal-push ", env!("CARGO_PKG_VERSION"))));
    }
    Json(v).into_response()
}

/// Route 11: `debug/toggle`: `{"debug": …}` switches verbose logging on or off (the original could
/// not switch it off: spec 7.7).
pub async fn debug_toggle(State(app): AppState, body: JsonBody) -> Response {
    let members = body.members();
    let Some(value) = members.get("debug") else { return error(MISSING) };
    app.set_debug(is_truthy(value));
    Json(json!({"status": "success", "debug": value})).into_response()
}

/// Route 13: `content/token`: stores the token record Drupal sends for a content-token channel.
/// The `status` of the answer follows `contentTokenStatus`; with `auto`, a request without a
/// `Content-Type` header (Drupal 7) gets `ok`, any other `success`.
pub async fn content_token(State(app): AppState, headers: HeaderMap, body: JsonBody) -> Response {
    let record = body.members();
    let channel = record.get("channel").filter(|v| is_truthy(v)).and_then(as_text);
    let token = record.get("token").filter(|v| is_truthy(v)).and_then(as_text);
    let (Some(channel), Some(token)) = (channel, token) else { return error(MISSING) };
    if channel.len() > drupal_push_protocol::names::MAX_CHANNEL_NAME_LEN || token.len() > 1024 {
        return error(MISSING);
    }
    app.hub.set_content_token(&channel, &token, record);
    let status = app.config.content_token_status.answer(headers.contains_key(header::CONTENT_TYPE));
    Json(json!({"status": status})).into_response()
}

/// Route 12: `content/token/users`.
pub async fn content_token_users(State(app): AppState, body: JsonBody) -> Response {
    let members = body.members();
    let Some(channel) = members.get("channel").filter(|v| is_truthy(v)).and_then(as_text) else {
        return error(MISSING);
    };
    let (uids, tokens) = app.hub.content_token_users(&channel);
    Json(json!({"users": {"uids": uids, "authTokens": tokens}})).into_response()
}

/// Route 14: `content/token/message`: the body verbatim to every socket in the token channel.
pub async fn content_token_message(State(app): AppState, body: JsonBody) -> Response {
    let head: PublishHead = body.head();
    let sent = head
        .channel
        .as_ref()
        .filter(|c| is_truthy(c))
        .and_then(as_text)
        .and_then(|c| app.hub.publish_to_token_channel(&c, &body.raw));
    match sent {
        Some(sent) => Json(json!({"status": "success", "sent": sent})).into_response(),
        None => error("Invalid message"),
    }
}

/// Route 15: `authtoken/channel/add/:channel/:authToken`.
pub async fn token_channel_add(
    State(app): AppState,
    Path((channel, token)): Path<(String, String)>,
) -> Response {
    reply(channel_name(&channel).and_then(|ch| app.hub.add_token_to_channel(ch.as_str(), &token)))
}

/// Route 16: `authtoken/channel/remove/:channel/:authToken`.
pub async fn token_channel_remove(
    State(app): AppState,
    Path((channel, token)): Path<(String, String)>,
) -> Response {
    reply(channel_name(&channel).and_then(|ch| app.hub.remove_token_from_channel(ch.as_str(), &token)))
}
