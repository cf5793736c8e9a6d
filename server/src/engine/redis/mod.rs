//! The engine of several nodes: shared state in one Redis (`engine = "redis"`).
//!
//! Every node keeps its own sockets (the hub) and shares everything else through Redis: each
//! operation that must be atomic is one Lua script ([`scripts`], which documents the keys),
//! publications go through `P:pub` and commands through `P:ctl` ([`wire`]). Each node reads
//! both on one pub/sub connection ([`tasks`]), so it delivers a stream's publications in the
//! order Redis ran their scripts, which is offset order: a publication is appended to its
//! stream's history and published in the same script. A node heartbeats; the others take a
//! dead node's sockets out of presence, sessions, channels and content tokens, and pending
//! offline decisions (`P:due`) are fired by whichever node finds them overdue.
//!
//! Key names are built in one place ([`keys`]); script replies and records stored as strings
//! are decoded in [`replies`]. The operations live by concern: [`streams`] (publishing,
//! history), [`presence`] (sockets, sessions, online/offline, pending decisions), [`tokens`]
//! (content tokens), [`channels`], [`auth`] (cached auth records, kick, logout); the
//! background work in [`tasks`] (pub/sub reader), [`heartbeat`] and [`stats`].
//!
//! Client: the `redis` crate (redis-rs) with its tokio `ConnectionManager` (why: see
//! ARCHITECTURE.md, Decisions).
//!
//! While Redis is unreachable every operation fails at once ([`EngineError::Unavailable`],
//! within the response timeout), sockets stay connected, and the node reconnects with a backoff
//! capped at [`RECONNECT_MAX`]; if Redis came back without its data, the node registers its
//! sockets, presence and channels again (without telling Drupal or watchers anything twice).

mod auth;
mod channels;
mod heartbeat;
mod keys;
mod presence;
mod replies;
mod scripts;
mod stats;
mod streams;
mod tasks;
mod tokens;
mod wire;

use super::{
    AuthRecord, Changes, Engine, EngineStats, Event, Fut, HistorySettings, Member, Node, Position, Recovery,
    Stream, TokenChannelDetail, TokenChannelUsers, Who,
};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// A stream's epoch and top stay in Redis this long after their last use.
const META_TTL_SECS: u64 = 86_400;
/// How long a publisher waits for its own publication to come back and be delivered here.
const LOCAL_DELIVERY_WAIT: Duration = Duration::from_secs(5);
/// Longest wait between two attempts to reach Redis again.
pub const RECONNECT_MAX: Duration = Duration::from_secs(2);
/// A Redis request that gets no answer in this time fails (so REST answers stay within ~2 s).
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);

/// The Redis engine's settings, taken from the config.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]` or `rediss://…`.
    pub url: String,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    pub prefix: String,
    pub history: HistorySettings,
    pub presence_grace: Duration,
    pub auth_cache_ttl: Duration,
    pub content_token_ttl: Duration,
    /// A node that has not refreshed its heartbeat for this long is dead.
    pub node_ttl: Duration,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    scripts: scripts::Scripts,
    keys: keys::Keys,
    settings: RedisSettings,
    node_id: String,
    node: Arc<dyn Node>,
    next_pid: AtomicU64,
    /// Own publications and barriers waiting to come back through `P:pub`.
    waiting: Mutex<FxHashMap<u64, oneshot::Sender<usize>>>,
    /// The pub/sub connection is up and subscribed.
    subscribed: AtomicBool,
    /// The last heartbeat reached Redis.
    heartbeat_ok: AtomicBool,
}

/// The several-node engine; a cheap-clone handle.
#[derive(Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

fn unavailable(e: redis::RedisError) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl RedisEngine {
    /// Connects lazily: a node can start while Redis is down and keeps trying.
    /// The engine of a node sharing one Redis, delivering to `node`; its pub/sub reader and
    /// heartbeat tasks start here (within the runtime).
    pub fn new(settings: RedisSettings, node: Arc<dyn Node>) -> Result<RedisEngine, String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|e| format!("redis.url: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis.url: {e}"))?;
        let engine = RedisEngine {
            inner: Arc::new(Inner {
                client,
                conn,
                scripts: scripts::Scripts::new(),
                keys: keys::Keys::new(&settings.prefix),
                node_id: crate::ids::random_id(12),
                settings,
                node,
                next_pid: AtomicU64::new(1),
                waiting: Mutex::default(),
                subscribed: AtomicBool::new(false),
                heartbeat_ok: AtomicBool::new(false),
            }),
        };
        tasks::spawn(engine.clone());
        Ok(engine)
    }

    fn node(&self) -> &Arc<dyn Node> {
        &self.inner.node
    }

    fn keys(&self) -> &keys::Keys {
        &self.inner.keys
    }

    fn scripts(&self) -> &scripts::Scripts {
        &self.inner.scripts
    }

    fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, FxHashMap<u64, oneshot::Sender<usize>>> {
        self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `event` here at once, and on every other node through `P:ctl`.
    async fn command(&self, event: Event) -> Result<(), EngineError> {
        let changes = self.node().apply(&event);
        self.apply_changes(changes).await;
        let text = wire::Command::event(self.node_id(), &event).encode();
        let _: i64 = self.conn().publish(self.keys().commands(), text).await.map_err(unavailable)?;
        Ok(())
    }

    /// Makes local changes cluster-wide (boxed: a departure can announce an offline, whose
    /// command applies changes again).
    fn apply_changes(&self, changes: Changes) -> Fut<'_, ()> {
        Box::pin(async move {
            let me = self.inner.node_id.clone();
            for name in &changes.opened {
                channels::open(self, &me, name, true).await;
            }
            for name in &changes.closed {
                channels::open(self, &me, name, false).await;
            }
            for d in &changes.departures {
                presence::departed(self, &me, &d.member, d.forced, 1).await;
                for (channel, token) in &d.token_channels {
                    tokens::leave(self, &me, channel, token, &d.member, d.forced).await;
                }
            }
        })
    }
}

impl Engine for RedisEngine {
    fn ready(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed) && self.inner.heartbeat_ok.load(Ordering::Relaxed)
    }

    fn publish_from(
        &self,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<Arc<str>>,
    ) -> Fut<'_, Result<usize, EngineError>> {
        Box::pin(streams::publish_from(self, stream, message, sender))
    }

    fn recover<'a>(
        &'a self,
        stream: &'a Stream,
        since: Option<&'a Position>,
    ) -> Fut<'a, Result<Recovery, EngineError>> {
        Box::pin(streams::recover(self, stream, since))
    }

    fn settle(&self) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(streams::settle(self))
    }

    fn online_watched(&self, watcher: Uid) -> Fut<'_, Result<Vec<Uid>, EngineError>> {
        Box::pin(presence::online_watched(self, watcher))
    }

    fn cached_auth<'a>(&'a self, token: &'a str) -> Fut<'a, Result<Option<Arc<AuthRecord>>, EngineError>> {
        Box::pin(auth::cached(self, token))
    }

    fn cache_auth(&self, token: Arc<str>, record: Arc<AuthRecord>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(auth::cache(self, token, record))
    }

    fn arrived(&self, member: Member, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(presence::arrived(self, member, watchers))
    }

    fn changed(&self, changes: Changes) -> Fut<'_, ()> {
        self.apply_changes(changes)
    }

    fn set_content_token<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        record: Map<String, Value>,
    ) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(tokens::set(self, channel, token, record))
    }

    fn join_token_channel<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        member: &'a Member,
    ) -> Fut<'a, Result<Option<Arc<RawValue>>, EngineError>> {
        Box::pin(tokens::join(self, channel, token, member))
    }

    fn token_channel_users<'a>(
        &'a self,
        channel: &'a str,
    ) -> Fut<'a, Result<TokenChannelUsers, EngineError>> {
        Box::pin(tokens::users(self, channel))
    }

    fn add_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(channels::add(self, channel))
    }

    fn remove_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(channels::remove(self, channel))
    }

    fn channel_exists<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<bool, EngineError>> {
        Box::pin(channels::exists(self, channel))
    }

    fn set_membership<'a>(
        &'a self,
        who: Who,
        channel: &'a str,
        join: bool,
    ) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(channels::set_membership(self, who, channel, join))
    }

    fn kick(&self, uid: Uid) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(auth::kick(self, uid))
    }

    fn logout<'a>(&'a self, token: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(auth::logout(self, token))
    }

    fn set_presence_list(&self, uid: Uid, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(presence::set_list(self, uid, watchers))
    }

    fn stats(&self) -> Fut<'_, Result<EngineStats, EngineError>> {
        Box::pin(stats::stats(self))
    }

    fn token_channel_details(&self) -> Fut<'_, Result<Vec<TokenChannelDetail>, EngineError>> {
        Box::pin(stats::token_channel_details(self))
    }
}
