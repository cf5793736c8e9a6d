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
//! Client: the `redis` crate (redis-rs) with its tokio `ConnectionManager` (why: see
//! ARCHITECTURE.md, Decisions).
//!
//! While Redis is unreachable every operation fails at once ([`EngineError::Unavailable`],
//! within the response timeout), sockets stay connected, and the node reconnects with a backoff
//! capped at [`RECONNECT_MAX`]; if Redis came back without its data, the node registers its
//! sockets, presence and channels again (without telling Drupal or watchers anything twice).

mod scripts;
mod tasks;
mod wire;

use super::{
    AuthRecord, Changes, Engine, EngineStats, Event, Fut, HistorySettings, Member, Node, Position,
    Publication, Recovery, Stream, TokenChannelDetail, TokenChannelUsers, Who,
};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::{BackendMessage, is_truthy};
use drupal_push_protocol::drupal::{self, PresenceEvent};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Value as RedisValue};
use rustc_hash::FxHashMap;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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
    settings: RedisSettings,
    node_id: String,
    node: OnceLock<Arc<dyn Node>>,
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

/// The key of a member in a content-token channel: its user, or its session when anonymous.
fn member_key(member: &Member) -> String {
    if member.uid.is_anonymous() { format!("s:{}", member.token) } else { format!("u:{}", member.uid) }
}

impl RedisEngine {
    /// Connects lazily: a node can start while Redis is down and keeps trying.
    pub fn new(settings: RedisSettings) -> Result<RedisEngine, String> {
        let client = redis::Client::open(settings.url.as_str()).map_err(|e| format!("redis.url: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis.url: {e}"))?;
        Ok(RedisEngine {
            inner: Arc::new(Inner {
                client,
                conn,
                scripts: scripts::Scripts::new(),
                node_id: crate::ids::random_id(12),
                settings,
                node: OnceLock::new(),
                next_pid: AtomicU64::new(1),
                waiting: Mutex::default(),
                subscribed: AtomicBool::new(false),
                heartbeat_ok: AtomicBool::new(false),
            }),
        })
    }

    fn node(&self) -> &Arc<dyn Node> {
        self.inner.node.get().expect("Engine::start is called when the server is built")
    }

    fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.inner.settings.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, FxHashMap<u64, oneshot::Sender<usize>>> {
        self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_for_own(&self) -> (u64, oneshot::Receiver<usize>) {
        let pid = self.inner.next_pid.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting().insert(pid, tx);
        (pid, rx)
    }

    async fn own_delivery(&self, pid: u64, rx: oneshot::Receiver<usize>) -> usize {
        match tokio::time::timeout(LOCAL_DELIVERY_WAIT, rx).await {
            Ok(Ok(sent)) => sent,
            _ => {
                self.waiting().remove(&pid);
                0
            }
        }
    }

    /// Runs `event` here at once, and on every other node through `P:ctl`.
    async fn command(&self, event: Event) -> Result<(), EngineError> {
        let changes = self.node().apply(&event);
        self.apply_changes(changes).await;
        let text = wire::Command::event(&self.inner.node_id, &event).encode();
        let _: i64 = self.conn().publish(self.key("ctl"), text).await.map_err(unavailable)?;
        Ok(())
    }

    /// A presence transition decided here: the watchers' sockets everywhere, and Drupal, from
    /// the node whose notice queue holds the user's previous notice (`owner`).
    async fn announce(&self, uid: Uid, online: bool, watchers: &str, owner: &str) {
        let watchers: Vec<Uid> = serde_json::from_str(watchers).unwrap_or_default();
        let message =
            if online { BackendMessage::UserOnline { uid } } else { BackendMessage::UserOffline { uid } };
        let me = &self.inner.node_id;
        let mut told = owner.is_empty() || owner == me;
        if !told {
            let alive: bool = self.conn().exists(self.key(&format!("node:{owner}"))).await.unwrap_or(false);
            told = !alive;
            if alive {
                let text = wire::Command::notify(me, owner, uid, online).encode();
                let sent: Result<i64, _> = self.conn().publish(self.key("ctl"), text).await;
                told = sent.is_err();
            }
        }
        if told {
            self.node().notify_backend(message);
        }
        let event = if online { PresenceEvent::Online } else { PresenceEvent::Offline };
        if let Err(e) = self.command(Event::Presence { uid, event, watchers: watchers.into() }).await {
            tracing::warn!(error = %e, %uid, "could not announce a presence change to the other nodes");
        }
    }

    /// Runs a DEPARTED/GRACE_OVER outcome: an offline to announce, or a grace timer here.
    async fn presence_outcome(&self, uid: Uid, outcome: Vec<String>) {
        match outcome.first().map(String::as_str) {
            Some("offline") => {
                let (w, owner) = (
                    outcome.get(1).cloned().unwrap_or_default(),
                    outcome.get(2).cloned().unwrap_or_default(),
                );
                self.announce(uid, false, &w, &owner).await;
            }
            Some("grace") => {
                let generation = outcome.get(1).cloned().unwrap_or_default();
                self.schedule(format!("u\t{uid}\t{generation}"));
            }
            _ => {}
        }
    }

    /// Fires a pending decision of `P:due` after the grace period, here (any node fires it
    /// when overdue, see `tasks`).
    fn schedule(&self, due: String) {
        let (engine, grace) = (self.clone(), self.inner.settings.presence_grace);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            engine.fire(due).await;
        });
    }

    /// Runs a pending decision unless another node already took it.
    async fn fire(&self, due: String) {
        let taken: Result<i64, _> = self.conn().zrem(self.key("due"), &due).await;
        if !matches!(taken, Ok(1)) {
            return;
        }
        let parts: Vec<&str> = due.split('\t').collect();
        match parts.as_slice() {
            ["u", uid, generation] => {
                let Some(uid) = Uid::parse(uid) else { return };
                let outcome: Result<Vec<String>, _> = self
                    .inner
                    .scripts
                    .grace_over
                    .key(self.key(&format!("u:{uid}")))
                    .arg(&self.inner.settings.prefix)
                    .arg(uid.0)
                    .arg(generation)
                    .invoke_async(&mut self.conn())
                    .await;
                match outcome {
                    Ok(o) => self.presence_outcome(uid, o).await,
                    Err(e) => tracing::warn!(error = %e, %uid, "offline decision failed"),
                }
            }
            ["t", channel, member, uid, generation] => {
                let notify: Result<i64, _> = self
                    .inner
                    .scripts
                    .token_grace_over
                    .arg(&self.inner.settings.prefix)
                    .arg(*channel)
                    .arg(*member)
                    .arg(*generation)
                    .invoke_async(&mut self.conn())
                    .await;
                if matches!(notify, Ok(1)) {
                    self.leave_notice(channel, Uid::parse(uid).unwrap_or(Uid::ANONYMOUS)).await;
                }
            }
            _ => tracing::warn!(due, "unknown pending decision"),
        }
    }

    async fn leave_notice(&self, channel: &str, uid: Uid) {
        let notice = drupal::content_channel_disconnect(channel, uid);
        if let Err(e) = self.publish_on(Stream::Token(Arc::from(channel)), Arc::from(notice), None).await {
            tracing::warn!(error = %e, channel, "could not publish a leave notice");
        }
    }

    /// One socket of `member` left a content-token channel (or `count` of a dead node's).
    async fn leave_token(
        &self,
        node: &str,
        channel: &str,
        token: &str,
        member: &Member,
        forced: bool,
        count: u64,
    ) {
        self.leave_token_as(node, channel, token, &member_key(member), member.uid, forced, count).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn leave_token_as(
        &self,
        node: &str,
        channel: &str,
        token: &str,
        mk: &str,
        uid: Uid,
        forced: bool,
        count: u64,
    ) {
        let now = now_ms();
        let due = now + self.inner.settings.presence_grace.as_millis() as u64;
        let outcome: Result<Vec<String>, _> = self
            .inner
            .scripts
            .leave_token
            .arg(&self.inner.settings.prefix)
            .arg(channel)
            .arg(token)
            .arg(mk)
            .arg(node)
            .arg(uid.0)
            .arg(u8::from(forced))
            .arg(count)
            .arg(now)
            .arg(due)
            .arg(self.inner.settings.content_token_ttl.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await;
        match outcome.as_deref().map(|o| o.first().map(String::as_str)) {
            Ok(Some("notify")) => self.leave_notice(channel, uid).await,
            Ok(Some("grace")) => {
                let generation = outcome.as_ref().ok().and_then(|o| o.get(1).cloned()).unwrap_or_default();
                self.schedule(format!("t\t{channel}\t{mk}\t{}\t{generation}", uid.0));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, channel, "content-token leave failed"),
        }
    }

    /// Sockets of `member` on `node` left (`count` 0: all of a dead node's).
    async fn departed(&self, node: &str, member: &Member, forced: bool, count: u64) {
        let uid = member.uid;
        let due = now_ms() + self.inner.settings.presence_grace.as_millis() as u64;
        let outcome: Result<Vec<String>, _> = self
            .inner
            .scripts
            .departed
            .key(self.key(&format!("u:{uid}")))
            .key(self.key(&format!("nu:{node}")))
            .key(self.key(&format!("as:{}", member.token)))
            .key(self.key(&format!("ns:{node}")))
            .arg(&self.inner.settings.prefix)
            .arg(node)
            .arg(uid.0)
            .arg(&*member.token)
            .arg(u8::from(uid.is_anonymous()))
            .arg(u8::from(forced))
            .arg(count)
            .arg(due)
            .invoke_async(&mut self.conn())
            .await;
        match outcome {
            Ok(o) => self.presence_outcome(uid, o).await,
            Err(e) => tracing::warn!(error = %e, %uid, "presence departure failed"),
        }
    }

    async fn channel_open(&self, node: &str, channel: &str, open: bool) {
        let done: Result<i64, _> = self
            .inner
            .scripts
            .channel_open
            .arg(&self.inner.settings.prefix)
            .arg(node)
            .arg(u8::from(open))
            .arg(channel)
            .invoke_async(&mut self.conn())
            .await;
        if let Err(e) = done {
            tracing::warn!(error = %e, channel, "channel bookkeeping failed");
        }
    }

    /// Makes local changes cluster-wide (boxed: a departure can announce an offline, whose
    /// command applies changes again).
    fn apply_changes(&self, changes: Changes) -> Fut<'_, ()> {
        Box::pin(async move {
            let me = self.inner.node_id.clone();
            for name in &changes.opened {
                self.channel_open(&me, name, true).await;
            }
            for name in &changes.closed {
                self.channel_open(&me, name, false).await;
            }
            for d in &changes.departures {
                self.departed(&me, &d.member, d.forced, 1).await;
                for (channel, token) in &d.token_channels {
                    self.leave_token(&me, channel, token, &d.member, d.forced, 1).await;
                }
            }
        })
    }

    /// Appends and publishes (from the browser socket `sender`, if one published it); resolves
    /// once this node delivered it.
    async fn publish_on(
        &self,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<&str>,
    ) -> Result<usize, EngineError> {
        let key = stream.key();
        let h = self.inner.settings.history;
        let (pid, rx) = self.wait_for_own();
        let published: Result<RedisValue, _> = self
            .inner
            .scripts
            .publish
            .key(self.key(&format!("s:{key}")))
            .key(self.key(&format!("h:{key}")))
            .key(self.key("pub"))
            .key(self.key("hn"))
            .key(self.key("hl"))
            .key(self.key("hx"))
            .arg(h.size)
            .arg(h.ttl.as_secs().max(1))
            .arg(now_ms())
            .arg(crate::ids::random_id(8))
            .arg(wire::header(&self.inner.node_id, pid, sender, &key))
            .arg(message.get())
            .arg(META_TTL_SECS.max(h.ttl.as_secs()))
            .invoke_async(&mut self.conn())
            .await;
        if let Err(e) = published {
            self.waiting().remove(&pid);
            return Err(unavailable(e));
        }
        Ok(self.own_delivery(pid, rx).await)
    }

    /// Calls a script that answers with integers or status strings, mapping errors.
    async fn strings(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
    ) -> Result<Vec<String>, EngineError> {
        invocation.invoke_async(&mut self.conn()).await.map_err(unavailable)
    }
}

/// Reads `RECOVER`'s reply: {top, epoch, recovered, messages...}.
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

impl Engine for RedisEngine {
    fn start(&self, node: Arc<dyn Node>) {
        if self.inner.node.set(node).is_ok() {
            tasks::spawn(self.clone());
        }
    }

    fn ready(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed) && self.inner.heartbeat_ok.load(Ordering::Relaxed)
    }

    fn publish_from(
        &self,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<Arc<str>>,
    ) -> Fut<'_, Result<usize, EngineError>> {
        Box::pin(async move {
            if let Stream::Token(channel) = &stream {
                let known: i64 = self
                    .inner
                    .scripts
                    .token_channel_live
                    .arg(&self.inner.settings.prefix)
                    .arg(&**channel)
                    .arg(now_ms())
                    .invoke_async(&mut self.conn())
                    .await
                    .map_err(unavailable)?;
                if known != 1 {
                    return Err(EngineError::NoSuchTokenChannel);
                }
            }
            self.publish_on(stream, message, sender.as_deref()).await
        })
    }

    fn recover<'a>(
        &'a self,
        stream: &'a Stream,
        since: Option<&'a Position>,
    ) -> Fut<'a, Result<Recovery, EngineError>> {
        Box::pin(async move {
            let h = self.inner.settings.history;
            if h.size == 0 {
                return Ok(Recovery::default());
            }
            let key = stream.key();
            let reply: Vec<RedisValue> = self
                .inner
                .scripts
                .recover
                .key(self.key(&format!("s:{key}")))
                .key(self.key(&format!("h:{key}")))
                .arg(h.ttl.as_secs().max(1))
                .arg(now_ms())
                .arg(crate::ids::random_id(8))
                .arg(since.map_or(-1, |p| p.offset as i64))
                .arg(since.map_or("", |p| &*p.epoch))
                .arg(META_TTL_SECS.max(h.ttl.as_secs()))
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            recovery_of(stream, since, reply)
                .ok_or_else(|| EngineError::Unavailable("unexpected answer to a recovery".into()))
        })
    }

    fn settle(&self) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let (pid, rx) = self.wait_for_own();
            let payload = format!("{}\n0\n\n", wire::header(&self.inner.node_id, pid, None, ""));
            let sent: Result<i64, _> = self.conn().publish(self.key("pub"), payload).await;
            if let Err(e) = sent {
                self.waiting().remove(&pid);
                return Err(unavailable(e));
            }
            self.own_delivery(pid, rx).await;
            Ok(())
        })
    }

    fn online_watched(&self, watcher: Uid) -> Fut<'_, Result<Vec<Uid>, EngineError>> {
        Box::pin(async move {
            let members: Vec<String> =
                self.conn().smembers(self.key(&format!("watch:{watcher}"))).await.map_err(unavailable)?;
            let mut uids: Vec<Uid> = members.iter().filter_map(|m| Uid::parse(m)).collect();
            uids.sort_unstable();
            Ok(uids)
        })
    }

    fn cached_auth<'a>(&'a self, token: &'a str) -> Fut<'a, Result<Option<Arc<AuthRecord>>, EngineError>> {
        Box::pin(async move {
            let text: Option<String> =
                self.conn().get(self.key(&format!("a:{token}"))).await.map_err(unavailable)?;
            Ok(text.as_deref().and_then(wire::decode_record).map(Arc::new))
        })
    }

    fn cache_auth(&self, token: Arc<str>, record: Arc<AuthRecord>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let ttl = self.inner.settings.auth_cache_ttl.as_secs().max(1);
            let uid = record.uid;
            let user = if uid.is_anonymous() { String::new() } else { self.key(&format!("at:{uid}")) };
            let _: i64 = self
                .inner
                .scripts
                .cache_auth
                .key(self.key(&format!("a:{token}")))
                .key(self.key("aexp"))
                .key(user)
                .arg(wire::encode_record(&record))
                .arg(ttl)
                .arg(&*token)
                .arg(now_ms())
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn arrived(&self, member: Member, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let online = self.register(&member, &watchers).await?;
            if online {
                let json = serde_json::to_string(&watchers).unwrap_or_default();
                self.announce(member.uid, true, &json, &self.inner.node_id.clone()).await;
            }
            Ok(())
        })
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
        Box::pin(async move {
            let notify = record.get("notifyOnDisconnect").is_some_and(is_truthy);
            let record = serde_json::to_string(&record).unwrap_or_default();
            let _: i64 = self
                .inner
                .scripts
                .set_token
                .arg(&self.inner.settings.prefix)
                .arg(channel)
                .arg(token)
                .arg(record)
                .arg(u8::from(notify))
                .arg(now_ms())
                .arg(self.inner.settings.content_token_ttl.as_millis() as u64)
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn join_token_channel<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        member: &'a Member,
    ) -> Fut<'a, Result<Option<Arc<RawValue>>, EngineError>> {
        Box::pin(async move {
            let outcome = self
                .strings(
                    self.inner
                        .scripts
                        .join_token
                        .arg(&self.inner.settings.prefix)
                        .arg(channel)
                        .arg(token)
                        .arg(member_key(member))
                        .arg(&*member.token)
                        .arg(&self.inner.node_id)
                        .arg(member.uid.0)
                        .arg(now_ms()),
                )
                .await?;
            match outcome.first().map(String::as_str) {
                Some("unknown") => Err(EngineError::UnknownContentToken),
                Some("other") => Err(EngineError::OtherSession),
                Some("notice") => {
                    let record: Map<String, Value> =
                        outcome.get(1).and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
                    Ok(Some(Arc::from(drupal::client_joined_token_channel(&record))))
                }
                _ => Ok(None),
            }
        })
    }

    fn token_channel_users<'a>(
        &'a self,
        channel: &'a str,
    ) -> Fut<'a, Result<TokenChannelUsers, EngineError>> {
        Box::pin(async move {
            let members: Vec<String> =
                self.conn().hkeys(self.key(&format!("tm:{channel}"))).await.map_err(unavailable)?;
            let mut users = TokenChannelUsers::default();
            for m in members {
                if let Some(uid) = m.strip_prefix("u:").and_then(Uid::parse) {
                    users.uids.push(uid);
                } else if let Some(token) = m.strip_prefix("s:") {
                    users.auth_tokens.push(token.to_owned());
                }
            }
            users.uids.sort_unstable();
            users.auth_tokens.sort_unstable();
            Ok(users)
        })
    }

    fn add_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            match self.channel_admin(channel, true).await? {
                true => Ok(()),
                false => Err(EngineError::ChannelExists(channel.to_owned())),
            }
        })
    }

    fn remove_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            if !self.channel_admin(channel, false).await? {
                return Err(EngineError::NoSuchChannel);
            }
            self.command(Event::ChannelRemoved(Arc::from(channel))).await
        })
    }

    fn channel_exists<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<bool, EngineError>> {
        Box::pin(async move {
            let (explicit, open): (bool, bool) = redis::pipe()
                .sismember(self.key("cx"), channel)
                .hexists(self.key("cn"), channel)
                .query_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            Ok(explicit || open)
        })
    }

    fn set_membership<'a>(
        &'a self,
        who: Who,
        channel: &'a str,
        join: bool,
    ) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn();
            match &who {
                Who::User(uid) => {
                    if join {
                        let sockets: Vec<String> =
                            conn.hkeys(self.key(&format!("u:{uid}"))).await.map_err(unavailable)?;
                        if !sockets.iter().any(|f| f.starts_with("n:")) {
                            return Err(EngineError::NoActiveSessions);
                        }
                    } else if !self.channel_exists(channel).await? {
                        return Err(EngineError::NoSuchChannel);
                    }
                }
                Who::Session(token) => {
                    let sockets: bool =
                        conn.exists(self.key(&format!("as:{token}"))).await.map_err(unavailable)?;
                    let known = sockets
                        || conn
                            .exists::<_, bool>(self.key(&format!("a:{token}")))
                            .await
                            .map_err(unavailable)?;
                    let ok = if join { sockets } else { known && self.channel_exists(channel).await? };
                    if !ok {
                        return Err(EngineError::InvalidParameters);
                    }
                }
            }
            let (records, token) = match &who {
                Who::User(uid) => (self.key(&format!("at:{uid}")), String::new()),
                Who::Session(t) => (String::new(), t.to_string()),
            };
            let _: i64 = self
                .inner
                .scripts
                .edit_channels
                .key(records)
                .arg(&self.inner.settings.prefix)
                .arg(channel)
                .arg(u8::from(join))
                .arg(token)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let channel: Arc<str> = Arc::from(channel);
            let event = if join {
                let position = self.recover(&Stream::Channel(channel.clone()), None).await?.top;
                Event::JoinChannel { who, channel, position }
            } else {
                Event::LeaveChannel { who, channel }
            };
            self.command(event).await
        })
    }

    fn kick(&self, uid: Uid) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let tokens: Vec<String> =
                self.conn().zrange(self.key(&format!("at:{uid}")), 0, -1).await.map_err(unavailable)?;
            self.uncache(&tokens).await?;
            self.command(Event::Kick(uid)).await
        })
    }

    fn logout<'a>(&'a self, token: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.uncache(&[token.to_owned()]).await?;
            self.command(Event::Logout(Arc::from(token))).await
        })
    }

    fn set_presence_list(&self, uid: Uid, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            let _: i64 = self
                .inner
                .scripts
                .presence_list
                .key(self.key(&format!("u:{uid}")))
                .key(self.key(&format!("at:{uid}")))
                .arg(&self.inner.settings.prefix)
                .arg(uid.0)
                .arg(serde_json::to_string(&watchers).unwrap_or_default())
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }

    fn stats(&self) -> Fut<'_, Result<EngineStats, EngineError>> {
        Box::pin(tasks::stats(self))
    }

    fn token_channel_details(&self) -> Fut<'_, Result<Vec<TokenChannelDetail>, EngineError>> {
        Box::pin(tasks::token_channel_details(self))
    }
}

impl RedisEngine {
    /// Counts a socket in its session and presence; true when the user just came online.
    async fn register(&self, member: &Member, watchers: &[Uid]) -> Result<bool, EngineError> {
        let (uid, node) = (member.uid, &self.inner.node_id);
        let became: i64 = self
            .inner
            .scripts
            .arrived
            .key(self.key(&format!("u:{uid}")))
            .key(self.key(&format!("nu:{node}")))
            .key(self.key(&format!("as:{}", member.token)))
            .key(self.key(&format!("ns:{node}")))
            .key(self.key("online"))
            .arg(&self.inner.settings.prefix)
            .arg(node)
            .arg(uid.0)
            .arg(serde_json::to_string(watchers).unwrap_or_default())
            .arg(&*member.token)
            .arg(u8::from(uid.is_anonymous()))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(became == 1)
    }

    async fn uncache(&self, tokens: &[String]) -> Result<(), EngineError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for t in tokens {
            pipe.del(self.key(&format!("a:{t}"))).ignore();
            pipe.zrem(self.key("aexp"), t).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await.map_err(unavailable)
    }

    /// `channel/add` (true when made) or `channel/remove` (true when it existed).
    async fn channel_admin(&self, channel: &str, add: bool) -> Result<bool, EngineError> {
        let done: i64 = self
            .inner
            .scripts
            .channel_admin
            .arg(&self.inner.settings.prefix)
            .arg(channel)
            .arg(u8::from(add))
            .invoke_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(done == 1)
    }
}
