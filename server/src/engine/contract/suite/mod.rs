//! The behaviours of the engine contract, each written once against `&dyn Engine` and a
//! [`Recorder`] (the contract's `mod.rs` runs every one on both engines), by area: [`streams`]
//! (publishing, order, recovery, history counts), [`presence`] (with the auth cache),
//! [`tokens`] (content tokens), [`commands`] (channels, memberships, kick and logout); the
//! helpers they share are here.

mod commands;
mod presence;
mod streams;
mod tokens;

pub(crate) use commands::*;
pub(crate) use presence::*;
pub(crate) use streams::*;
pub(crate) use tokens::*;

use super::recorder::member;
use super::{AUTH_TTL, GRACE, HISTORY, LIMIT, Recorder, SHORT_TOKEN_TTL, eventually};
use crate::engine::{
    AuthRecord, Changes, Departure, Engine, EngineStats, Event, Member, Position, Publication, Stream,
    TokenChannelDetail, Who,
};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::PresenceEvent;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

fn msg(text: &str) -> Arc<RawValue> {
    Arc::from(RawValue::from_string(text.to_owned()).expect("JSON"))
}

fn channel(name: &str) -> Stream {
    Stream::Channel(Arc::from(name))
}

fn token_stream(name: &str) -> Stream {
    Stream::Token(Arc::from(name))
}

fn record(uid: u64, channels: &[&str], watchers: &[u64]) -> Arc<AuthRecord> {
    Arc::new(AuthRecord {
        uid: Uid(uid),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        presence_uids: watchers.iter().map(|w| Uid(*w)).collect(),
    })
}

fn token_record(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

/// The counters both engines keep alike (history bytes and cluster sockets are each engine's
/// own: see [`EngineStats`]).
#[derive(Debug, PartialEq, Default)]
struct Counts {
    online_users: usize,
    channels: usize,
    token_channels: usize,
    cached_auth_tokens: usize,
    waiting_content_tokens: usize,
    sessions: usize,
    history_messages: usize,
    nodes: usize,
}

async fn counts(e: &dyn Engine) -> Counts {
    let s: EngineStats = e.stats().await.expect("stats");
    Counts {
        online_users: s.online_users,
        channels: s.channels,
        token_channels: s.token_channels,
        cached_auth_tokens: s.cached_auth_tokens,
        waiting_content_tokens: s.waiting_content_tokens,
        sessions: s.sessions,
        history_messages: s.history_messages,
        nodes: s.nodes,
    }
}

fn offsets(publications: &[Publication]) -> Vec<u64> {
    publications.iter().map(|p| p.position.as_ref().map_or(0, |p| p.offset)).collect()
}

fn texts(publications: &[Publication]) -> Vec<String> {
    publications.iter().map(|p| p.message.get().to_owned()).collect()
}

/// The last command applied, which must be a membership change.
fn last_membership(node: &Recorder) -> Event {
    node.applied()
        .into_iter()
        .rev()
        .find(|ev| matches!(ev, Event::JoinChannel { .. } | Event::LeaveChannel { .. }))
        .expect("a membership command")
}
