//! The engine: everything that must agree across server nodes, behind one trait.
//!
//! A node (this process) owns its sockets: which local socket is in which channel, its
//! outboxes, its timers ([`crate::hub`]). Everything else that a second node would have to see
//! goes through [`Engine`]: publishing (with the stream positions that history and recovery
//! need), presence and the `userOnline`/`userOffline` decisions, the auth cache, content tokens,
//! which channels exist, and the commands that act on sockets wherever they are (kick, logout,
//! channel membership changes). The engine reaches the nodes back through [`Node`]. `memory` is
//! the one-node implementation; a Redis one implements the same contract for several nodes.
//!
//! Where the split comes from: see ARCHITECTURE.md, Decisions.
//!
//! # Contract
//!
//! * **Order.** Publications of one stream reach [`Node::deliver`] in the order of their
//!   offsets, one batch at a time: a node never has two deliveries of the same stream in
//!   flight. Publications that queued up for the stream while a delivery was in flight may be
//!   handed over together as one batch (same stream, same sender, in order), which the node
//!   writes to each socket with one system call. Different streams are not ordered relative
//!   to each other.
//! * **Exactly once per node.** Each publication is delivered once to every live node; a node
//!   delivers it once to each local socket subscribed at that moment, except the socket that
//!   published it ([`Publication::sender`]). Offsets of a stream
//!   increase by one per recorded publication within an epoch; a new epoch means earlier
//!   positions can no longer be recovered.
//! * **Decided once.** `userOnline` on a user's first socket anywhere and `userOffline` when its
//!   last socket anywhere has been gone for the grace period reach [`Node::notify_backend`] on
//!   exactly one node; token-channel join and leave notices are decided once (the engine
//!   publishes leave notices, and hands join notices to the joining socket's node to publish).
//! * **Commands reach every node**, this one included, through [`Node::apply`], which reports
//!   the local changes it made (sockets closed, channels opened or closed here) back to the
//!   engine in a [`Changes`].
//! * **Failure.** Operations return [`EngineError`] when the shared state cannot be reached;
//!   nothing is then half applied in a way a retry would duplicate. The memory engine never
//!   fails.
//! * **Locks.** An engine never calls a [`Node`] method while holding a lock of its own that a
//!   node call could need, and a node never calls the engine while holding the hub lock. Lock
//!   order where locks nest: a stream's delivery order (held across `deliver`) -> the hub lock
//!   -> an outbox lock.

#[cfg(test)]
mod contract;
mod memory;
mod redis;

pub use memory::{HistorySettings, MemoryEngine, MemorySettings};
pub use redis::{RedisEngine, RedisSettings};

use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::{AuthAnswer, BackendMessage};
use drupal_push_protocol::drupal::PresenceEvent;
use drupal_push_protocol::frames::{
    BROADCAST_STREAM, Position as WirePosition, TOKEN_STREAM_PREFIX, is_reserved_stream_key,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so that the engine can be a trait object.
pub type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What Drupal said about an auth token (spec 2.4), kept in the auth cache; the channel list
/// follows later `user/channel/*` and `authtoken/channel/*` calls.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRecord {
    pub uid: Uid,
    pub channels: Vec<String>,
    pub presence_uids: Vec<Uid>,
}

impl From<AuthAnswer> for AuthRecord {
    /// Drupal's channels, without any that is named like another kind of stream
    /// ([`drupal_push_protocol::frames::is_reserved_stream_key`]): such a name is dropped with a
    /// warning rather than joining the socket to the broadcast or a content-token stream.
    fn from(a: AuthAnswer) -> Self {
        let mut channels = a.channels;
        channels.retain(|c| {
            let reserved = is_reserved_stream_key(c);
            if reserved {
                tracing::warn!(channel = %c, uid = %a.uid, "Drupal's channel list names a reserved stream; not joined");
            }
            !reserved
        });
        AuthRecord { uid: a.uid, channels, presence_uids: a.presence_uids }
    }
}

impl AuthRecord {
    /// Adds a channel joined later (`user/channel/add`), so a reconnect rejoins it.
    pub fn add_channel(&mut self, channel: &str) {
        if !self.channels.iter().any(|c| c == channel) {
            self.channels.push(channel.to_owned());
        }
    }

    pub fn remove_channel(&mut self, channel: &str) {
        self.channels.retain(|c| c != channel);
    }
}

/// A sequence of messages with its own order and history.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stream {
    /// A channel Drupal publishes to (`publish` with `channel`).
    Channel(Arc<str>),
    /// A content-token channel (`content/token/message`).
    Token(Arc<str>),
    /// Every authenticated socket (`publish` with `broadcast`).
    Broadcast,
}

impl Stream {
    /// The stream's key in positions: the channel name, `token:<channel>`, or `*`.
    pub fn key(&self) -> String {
        match self {
            Stream::Channel(c) => c.to_string(),
            Stream::Token(c) => format!("{TOKEN_STREAM_PREFIX}{c}"),
            Stream::Broadcast => BROADCAST_STREAM.to_string(),
        }
    }

    /// The key an envelope carries as `stream`: none when it is the channel name.
    pub fn envelope_key(&self) -> Option<String> {
        match self {
            Stream::Channel(_) => None,
            other => Some(other.key()),
        }
    }

    /// The channel name the message envelope carries, if any.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Stream::Channel(c) | Stream::Token(c) => Some(c),
            Stream::Broadcast => None,
        }
    }
}

/// Who a socket belongs to: its user and its session (auth token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    pub uid: Uid,
    pub token: Arc<str>,
}

/// A socket that left this node: what the engine must take it out of.
#[derive(Debug, Clone)]
pub struct Departure {
    pub member: Member,
    /// Content-token channels it was in, each with the content token it joined with.
    pub token_channels: Vec<(Arc<str>, Arc<str>)>,
    /// Closed by kick or logout: no grace period.
    pub forced: bool,
}

/// What a node changed locally; the engine makes it cluster-wide.
#[derive(Debug, Default)]
pub struct Changes {
    /// Channels that got their first local socket.
    pub opened: Vec<Arc<str>>,
    /// Channels whose last local socket left.
    pub closed: Vec<Arc<str>>,
    pub departures: Vec<Departure>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.closed.is_empty() && self.departures.is_empty()
    }
}

/// Whose sockets a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User(Uid),
    Session(Arc<str>),
}

/// A command every node applies to its own sockets.
#[derive(Debug, Clone)]
pub enum Event {
    /// `user/kick`: close the user's sockets (4002).
    Kick(Uid),
    /// `user/logout`: close the session's sockets (4003).
    Logout(Arc<str>),
    /// Add the sockets of a user or session to a channel (at `position`, sent to them).
    JoinChannel { who: Who, channel: Arc<str>, position: Option<Position> },
    /// Take the sockets of a user or session out of a channel.
    LeaveChannel { who: Who, channel: Arc<str> },
    /// `channel/remove`: the channel loses every member.
    ChannelRemoved(Arc<str>),
    /// A user came online or went offline: tell the sockets of its watchers.
    Presence { uid: Uid, event: PresenceEvent, watchers: Arc<[Uid]> },
}

/// A place in a stream's history (see [`drupal_push_protocol::frames::Position`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: Arc<str>,
}

impl From<Position> for WirePosition {
    fn from(p: Position) -> Self {
        WirePosition { offset: p.offset, epoch: p.epoch.to_string() }
    }
}

impl From<&WirePosition> for Position {
    fn from(p: &WirePosition) -> Self {
        Position { offset: p.offset, epoch: Arc::from(p.epoch.as_str()) }
    }
}

/// One message of a stream, as the engine hands it to the nodes; recorded streams give its
/// position in the stream's history.
#[derive(Debug, Clone)]
pub struct Publication {
    pub stream: Stream,
    pub message: Arc<RawValue>,
    pub position: Option<Position>,
    /// The socket id of the browser that published it, whichever node it is on: no node
    /// delivers it to that socket (socket ids are random, so unique across the cluster). Not
    /// part of the history: a replay goes to a new socket.
    pub sender: Option<Arc<str>>,
}

/// Most publications in one batch handed to [`Node::deliver`].
pub const BATCH_MESSAGES: usize = 32;
/// Most message bytes in one batch (a larger message goes alone).
pub const BATCH_BYTES: usize = 64 * 1024;

/// The size of a batch being built for [`Node::deliver`]: publications of one stream and one
/// sender, in order, within [`BATCH_MESSAGES`] and [`BATCH_BYTES`]. Both engines build their
/// batches with it.
#[derive(Debug, Default)]
pub struct BatchSize {
    count: usize,
    bytes: usize,
}

impl BatchSize {
    /// Whether `next` may join a batch that starts with `first` (none: `next` starts it);
    /// counts it when it may.
    pub fn admit(&mut self, first: Option<&Publication>, next: &Publication) -> bool {
        let bytes = next.message.get().len();
        let fits = first.is_none_or(|f| {
            f.stream == next.stream
                && f.sender == next.sender
                && self.count < BATCH_MESSAGES
                && self.bytes + bytes <= BATCH_BYTES
        });
        if fits {
            self.count += 1;
            self.bytes += bytes;
        }
        fits
    }
}

/// What a socket (re)joining a stream gets.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Where the stream is now; none when history is off.
    pub top: Option<Position>,
    /// The messages after the position asked for, in order, when it could be recovered.
    pub replay: Vec<Publication>,
    /// Every missed message is in `replay` (false when no position was asked for).
    pub recovered: bool,
}

/// `content/token/users`: distinct uids of members, and auth tokens of anonymous ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenChannelUsers {
    pub uids: Vec<Uid>,
    pub auth_tokens: Vec<String>,
}

/// One content-token channel in `health/check`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenChannelDetail {
    pub channel: String,
    /// Tokens registered and not used by any socket.
    pub waiting: usize,
    /// Sockets joined.
    pub sockets: usize,
}

/// Cluster-wide counters, each kept up to date as state changes (reading them costs O(1)).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineStats {
    pub online_users: usize,
    pub channels: usize,
    pub token_channels: usize,
    /// Auth tokens whose Drupal answer is cached.
    pub cached_auth_tokens: usize,
    /// Content tokens registered and not joined by any socket.
    pub waiting_content_tokens: usize,
    /// Distinct sessions with at least one socket.
    pub sessions: usize,
    /// Messages held in history, on all nodes (Redis keeps a count beside the lists: whole
    /// lists expire there `historyTtlSecs` after their last message, single entries here).
    pub history_messages: usize,
    /// Bytes of message history held (memory engine; Redis reports its own memory).
    pub history_bytes: usize,
    /// Nodes alive (1 with the memory engine).
    pub nodes: usize,
    /// Authenticated sockets on all nodes.
    pub cluster_sockets: usize,
}

/// One authenticated socket of this node, as registered again after the shared state was lost.
#[derive(Debug, Clone)]
pub struct LocalSocket {
    pub member: Member,
    pub watchers: Arc<[Uid]>,
}

/// The cluster-wide half of the server. Every method may wait (a shared store is remote);
/// the memory engine answers at once.
pub trait Engine: Send + Sync + 'static {
    /// Whether the shared state is reachable (`/readyz`).
    fn ready(&self) -> bool;

    /// Waits until every publication recorded before this call has been delivered on this node
    /// (a socket that just read a stream's position then gets nothing older live).
    fn settle(&self) -> Fut<'_, Result<(), EngineError>>;

    /// Publishes a Drupal message on `stream` to every node; resolves once this node has
    /// delivered it, with the number of local sockets it reached. A `Stream::Token` channel
    /// that does not exist is [`EngineError::NoSuchTokenChannel`].
    fn publish(&self, stream: Stream, message: Arc<RawValue>) -> Fut<'_, Result<usize, EngineError>> {
        self.publish_from(stream, message, None)
    }
    /// [`Engine::publish`] of a message a browser published (a client-writable channel): every
    /// node skips the socket `sender` ([`Publication::sender`]); recorded like any other.
    fn publish_from(
        &self,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<Arc<str>>,
    ) -> Fut<'_, Result<usize, EngineError>>;

    /// Where `stream` is and what a socket that last saw `since` missed there (see
    /// [`Recovery`]); makes the stream exist (with its epoch) when it does not yet.
    fn recover<'a>(
        &'a self,
        stream: &'a Stream,
        since: Option<&'a Position>,
    ) -> Fut<'a, Result<Recovery, EngineError>>;
    /// The users watched by `watcher` (it is in their presence list) who are online now.
    fn online_watched(&self, watcher: Uid) -> Fut<'_, Result<Vec<Uid>, EngineError>>;

    /// Drupal's cached answer for an auth token, if it is still fresh.
    fn cached_auth<'a>(&'a self, token: &'a str) -> Fut<'a, Result<Option<Arc<AuthRecord>>, EngineError>>;
    /// Caches Drupal's answer for an auth token.
    fn cache_auth(&self, token: Arc<str>, record: Arc<AuthRecord>) -> Fut<'_, Result<(), EngineError>>;

    /// A socket authenticated on this node: counts it for presence (announcing the user online
    /// on its first socket anywhere) and for its session.
    fn arrived(&self, member: Member, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>>;
    /// Applies what a node changed locally: channels opened or closed here, sockets gone
    /// (presence grace, token-channel leave notices).
    fn changed(&self, changes: Changes) -> Fut<'_, ()>;

    /// `content/token`: registers a token Drupal handed to a page.
    fn set_content_token<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        record: Map<String, Value>,
    ) -> Fut<'a, Result<(), EngineError>>;
    /// A socket of `member` joins a content-token channel with `token`. When the member is new
    /// to the channel, returns the `clientJoinedTokenChannel` notice, which the caller publishes
    /// on the channel once the socket's start position there is set (so the joiner gets it too).
    /// The caller adds the socket to the channel locally only after this accepted the token.
    fn join_token_channel<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        member: &'a Member,
    ) -> Fut<'a, Result<Option<Arc<RawValue>>, EngineError>>;
    /// `content/token/users`: distinct uids of members, and auth tokens of anonymous ones.
    fn token_channel_users<'a>(&'a self, channel: &'a str)
    -> Fut<'a, Result<TokenChannelUsers, EngineError>>;

    /// `channel/add`.
    fn add_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>>;
    /// `channel/remove`: the channel and every membership, on every node.
    fn remove_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>>;
    /// `channel/check`: made by `channel/add`, or has a member on some node.
    fn channel_exists<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<bool, EngineError>>;

    /// `user/channel/add|remove`, `authtoken/channel/add|remove`: changes the membership of a
    /// user's or session's sockets on every node and in their cached auth records.
    fn set_membership<'a>(
        &'a self,
        who: Who,
        channel: &'a str,
        join: bool,
    ) -> Fut<'a, Result<(), EngineError>>;
    /// `user/kick`: closes the user's sockets everywhere and forgets its cached auth.
    fn kick(&self, uid: Uid) -> Fut<'_, Result<(), EngineError>>;
    /// `user/logout`: closes the session's sockets everywhere and forgets its cached auth.
    fn logout<'a>(&'a self, token: &'a str) -> Fut<'a, Result<(), EngineError>>;
    /// `user/presence-list`: who may see `uid`'s presence, now and after its next reconnect.
    fn set_presence_list(&self, uid: Uid, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>>;

    /// Cluster-wide counters (O(1)).
    fn stats(&self) -> Fut<'_, Result<EngineStats, EngineError>>;
    /// Per content-token channel: waiting tokens and joined sockets (scans; behind the key).
    fn token_channel_details(&self) -> Fut<'_, Result<Vec<TokenChannelDetail>, EngineError>>;
}

/// What the engine needs from a node.
pub trait Node: Send + Sync + 'static {
    /// Delivers a batch of publications of one stream, in order and all with the same sender,
    /// to this node's sockets in that stream; returns how many sockets it reached. See the
    /// contract above for order.
    fn deliver<'a>(&'a self, batch: &'a [Publication]) -> Fut<'a, usize>;
    /// Applies a command to this node's sockets.
    fn apply(&self, event: &Event) -> Changes;
    /// Tells Drupal (`userOnline`, `userOffline`); the engine decided this once for the cluster.
    fn notify_backend(&self, message: BackendMessage);
    /// This node's authenticated sockets.
    fn local_sockets(&self) -> Vec<LocalSocket>;
    /// The channels with a member on this node.
    fn local_channels(&self) -> Vec<Arc<str>>;
}
