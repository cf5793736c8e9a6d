//! The engine of a single node: all shared state in this process.
//!
//! One `std::sync::Mutex` guards the parts ([`sessions`], [`presence`], [`tokens`],
//! [`channels`]), each owning its data and counters behind its own methods. Operations run
//! synchronously under the lock and collect [`Effect`]s (commands for the node, notices for
//! Drupal, notices to publish, grace timers), which run after the lock is released, so no node
//! call ever happens under it. Publications take their stream's turn ([`streams`]) and hold it
//! while the node delivers.

mod channels;
mod presence;
mod sessions;
mod streams;
#[cfg(test)]
mod tests;
mod tokens;

use super::{
    AuthRecord, Changes, Engine, EngineStats, Event, Fut, Member, Node, Position, Publication, Recovery,
    Stream, TokenChannelDetail, TokenChannelUsers, Who,
};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::{self, PresenceEvent};
use presence::{Announce, Left};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokens::{Leave, MemberKey};

pub use streams::HistorySettings;
use tokio::time::Instant;

/// Most content-token channels `health/check` lists (it is behind the service key, but stays
/// bounded all the same).
const MAX_LISTED_TOKEN_CHANNELS: usize = 1000;

/// The memory engine's settings, taken from the config.
#[derive(Debug, Clone)]
pub struct MemorySettings {
    pub history: HistorySettings,
    pub presence_grace: Duration,
    pub auth_cache_ttl: Duration,
    pub auth_cache_max: usize,
    pub content_token_ttl: Duration,
}

struct State {
    sessions: sessions::Sessions,
    presence: presence::Presence,
    tokens: tokens::ContentTokens,
    channels: channels::Channels,
}

/// Something to do once the state lock is released.
enum Effect {
    Apply(Event),
    Backend(BackendMessage),
    Notice(Stream, Box<RawValue>),
    PresenceTimer { uid: Uid, timer: u64 },
    LeaveTimer { channel: Arc<str>, key: MemberKey, uid: Uid, timer: u64 },
}

struct Inner {
    state: Mutex<State>,
    streams: streams::Streams,
    streams_ttl: Duration,
    node: Arc<dyn Node>,
    grace: Duration,
}

/// The single-node engine; a cheap-clone handle.
#[derive(Clone)]
pub struct MemoryEngine {
    inner: Arc<Inner>,
}

impl MemoryEngine {
    /// The engine of this one node, delivering to `node`; its sweeper task starts here (within
    /// the runtime).
    pub fn new(settings: MemorySettings, node: Arc<dyn Node>) -> MemoryEngine {
        let state = State {
            sessions: sessions::Sessions::new(settings.auth_cache_ttl, settings.auth_cache_max),
            presence: presence::Presence::default(),
            tokens: tokens::ContentTokens::new(settings.content_token_ttl),
            channels: channels::Channels::default(),
        };
        let engine = MemoryEngine {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                streams: streams::Streams::new(settings.history),
                streams_ttl: settings.history.ttl,
                node,
                grace: settings.presence_grace,
            }),
        };
        engine.spawn_sweeper();
        engine
    }

    fn node(&self) -> &Arc<dyn Node> {
        &self.inner.node
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` under the lock; returns its result and the effects it asked for. Drupal notices
    /// are handed to the node before the lock is released, so they reach it in the order they
    /// were decided (an `userOffline` never before its `userOnline`); handing over only queues.
    fn with<R>(&self, f: impl FnOnce(&mut State, &mut Vec<Effect>) -> R) -> (R, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut state = self.lock();
        let r = f(&mut state, &mut effects);
        effects.retain(|e| match e {
            Effect::Backend(message) => {
                self.node().notify_backend(message.clone());
                false
            }
            _ => true,
        });
        drop(state);
        (r, effects)
    }

    /// Runs effects, in order, after the lock is released. Timers are due from now (computed
    /// before spawning, so a paused test clock advanced right after still fires them).
    fn run(&self, effects: Vec<Effect>) -> Fut<'_, ()> {
        Box::pin(async move {
            for effect in effects {
                match effect {
                    Effect::Apply(event) => {
                        let changes = self.node().apply(&event);
                        if !changes.is_empty() {
                            self.apply_changes(changes).await;
                        }
                    }
                    Effect::Backend(_) => {}
                    Effect::Notice(stream, message) => {
                        self.deliver(stream, Arc::from(message), None).await;
                    }
                    Effect::PresenceTimer { uid, timer } => {
                        let (engine, due) = (self.clone(), Instant::now() + self.inner.grace);
                        tokio::spawn(async move {
                            tokio::time::sleep_until(due).await;
                            let (_, fx) = engine.with(|st, fx| {
                                if let Some(a) = st.presence.grace_over(uid, timer) {
                                    announce(fx, a);
                                }
                            });
                            engine.run(fx).await;
                        });
                    }
                    Effect::LeaveTimer { channel, key, uid, timer } => {
                        let (engine, due) = (self.clone(), Instant::now() + self.inner.grace);
                        tokio::spawn(async move {
                            tokio::time::sleep_until(due).await;
                            let (notify, fx) =
                                engine.with(|st, _| st.tokens.grace_over(&channel, &key, timer));
                            engine.run(fx).await;
                            if notify {
                                let notice = drupal::content_channel_disconnect(&channel, uid);
                                engine.deliver(Stream::Token(channel), Arc::from(notice), None).await;
                            }
                        });
                    }
                }
            }
        })
    }

    /// Records the message, queues it on its stream and waits until the node has delivered it
    /// (to every socket of the stream but `sender`'s); returns to how many. The delivery runs
    /// in its own task, so a publisher that stops waiting (its HTTP client went away) neither
    /// loses the message nor stalls the stream.
    async fn deliver(&self, stream: Stream, message: Arc<RawValue>, sender: Option<Arc<str>>) -> usize {
        let streams = &self.inner.streams;
        let slot = streams.slot(&stream);
        let (counted, start) = streams.enqueue(&slot, stream.clone(), message, sender);
        if start {
            let engine = self.clone();
            tokio::spawn(async move { engine.run_deliveries(stream, slot).await });
        } else {
            // Not held while waiting: without history a slot is forgotten only when the map
            // and the running delivery are its last holders (`Streams::release`).
            drop(slot);
        }
        counted.await.unwrap_or(0)
    }

    /// Delivers the stream's queue batch by batch until it is empty (see `streams`).
    async fn run_deliveries(&self, stream: Stream, slot: Arc<streams::Slot>) {
        let streams = &self.inner.streams;
        while let Some(batch) = streams.next_batch(&slot) {
            let (publications, waiting): (Vec<_>, Vec<_>) =
                batch.into_iter().map(|w| (w.publication, w.done)).unzip();
            let sent = self.node().deliver(&publications).await;
            for done in waiting {
                let _ = done.send(sent);
            }
        }
        streams.release(&stream, slot);
    }

    /// Forgets idle streams now and then (see `streams`); stops with the engine.
    fn spawn_sweeper(&self) {
        if !self.inner.streams.recording() {
            return;
        }
        let every = (self.inner.streams_ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
                inner.streams.sweep(|s| match s {
                    Stream::Channel(c) => state.channels.exists(c),
                    Stream::Token(c) => state.tokens.exists(c),
                    Stream::Broadcast => true,
                });
            }
        });
    }

    async fn apply_changes(&self, changes: Changes) {
        let (_, fx) = self.with(|st, fx| {
            for name in &changes.opened {
                st.channels.opened(name);
            }
            for name in &changes.closed {
                st.channels.closed(name);
                self.inner.streams.touch(&Stream::Channel(name.clone()));
            }
            for d in &changes.departures {
                st.sessions.socket_removed(&d.member);
                if !d.member.uid.is_anonymous() {
                    match st.presence.departed(d.member.uid, d.forced) {
                        Left::Stays | Left::Offline(None) => {}
                        Left::Grace(timer) => fx.push(Effect::PresenceTimer { uid: d.member.uid, timer }),
                        Left::Offline(Some(a)) => announce(fx, a),
                    }
                }
                for (channel, token) in &d.token_channels {
                    match st.tokens.leave(channel, token, &d.member, d.forced) {
                        Leave::Nothing => {}
                        Leave::Notify(uid) => fx.push(Effect::Notice(
                            Stream::Token(channel.clone()),
                            drupal::content_channel_disconnect(channel, uid),
                        )),
                        Leave::Grace { key, uid, timer } => {
                            fx.push(Effect::LeaveTimer { channel: channel.clone(), key, uid, timer })
                        }
                    }
                }
            }
        });
        self.run(fx).await;
    }

    /// Runs `f` under the lock, then its effects; for operations that cannot fail.
    async fn act<R>(&self, f: impl FnOnce(&mut State, &mut Vec<Effect>) -> R) -> R {
        let (r, fx) = self.with(f);
        self.run(fx).await;
        r
    }
}

/// A presence transition: the watchers' sockets (on every node) and Drupal hear of it.
fn announce(fx: &mut Vec<Effect>, a: Announce) {
    fx.push(Effect::Backend(match a.event {
        PresenceEvent::Online => BackendMessage::UserOnline { uid: a.uid },
        PresenceEvent::Offline => BackendMessage::UserOffline { uid: a.uid },
    }));
    fx.push(Effect::Apply(Event::Presence { uid: a.uid, event: a.event, watchers: a.watchers }));
}

impl Engine for MemoryEngine {
    fn ready(&self) -> bool {
        true
    }

    fn settle(&self) -> Fut<'_, Result<(), EngineError>> {
        // Publications are delivered inside `publish` here: nothing is ever in flight.
        Box::pin(async { Ok(()) })
    }

    fn recover<'a>(
        &'a self,
        stream: &'a Stream,
        since: Option<&'a Position>,
    ) -> Fut<'a, Result<Recovery, EngineError>> {
        Box::pin(async move {
            let r = self.inner.streams.recover(stream, since);
            let replay = r
                .replay
                .into_iter()
                .map(|(offset, message)| Publication {
                    stream: stream.clone(),
                    message,
                    position: r.top.as_ref().map(|t| Position { offset, epoch: t.epoch.clone() }),
                    sender: None,
                })
                .collect();
            Ok(Recovery { top: r.top, replay, recovered: r.recovered })
        })
    }

    fn online_watched(&self, watcher: Uid) -> Fut<'_, Result<Vec<Uid>, EngineError>> {
        Box::pin(async move { Ok(self.with(|st, _| st.presence.watched_online(watcher)).0) })
    }

    fn publish_from(
        &self,
        stream: Stream,
        message: Arc<RawValue>,
        sender: Option<Arc<str>>,
    ) -> Fut<'_, Result<usize, EngineError>> {
        Box::pin(async move {
            if let Stream::Token(channel) = &stream {
                let known = self.with(|st, _| {
                    st.tokens.expire();
                    st.tokens.exists(channel)
                });
                if !known.0 {
                    return Err(EngineError::NoSuchTokenChannel);
                }
            }
            Ok(self.deliver(stream, message, sender).await)
        })
    }

    fn cached_auth<'a>(&'a self, token: &'a str) -> Fut<'a, Result<Option<Arc<AuthRecord>>, EngineError>> {
        Box::pin(async move { Ok(self.with(|st, _| st.sessions.cached(token)).0) })
    }

    fn cache_auth(&self, token: Arc<str>, record: Arc<AuthRecord>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.with(|st, _| st.sessions.cache(token, record));
            Ok(())
        })
    }

    fn arrived(&self, member: Member, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.act(|st, fx| {
                st.sessions.socket_added(&member);
                if !member.uid.is_anonymous() {
                    if let Some(a) = st.presence.arrived(member.uid, watchers) {
                        announce(fx, a);
                    }
                }
            })
            .await;
            Ok(())
        })
    }

    fn changed(&self, changes: Changes) -> Fut<'_, ()> {
        Box::pin(self.apply_changes(changes))
    }

    fn set_content_token<'a>(
        &'a self,
        channel: &'a str,
        token: &'a str,
        record: Map<String, Value>,
    ) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.with(|st, _| st.tokens.set(channel, token, record));
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
            let (joined, _) = self.with(|st, _| st.tokens.join(channel, token, member));
            Ok(joined?.map(|record| Arc::from(drupal::client_joined_token_channel(&record))))
        })
    }

    fn token_channel_users<'a>(
        &'a self,
        channel: &'a str,
    ) -> Fut<'a, Result<TokenChannelUsers, EngineError>> {
        Box::pin(async move { Ok(self.with(|st, _| st.tokens.users(channel)).0) })
    }

    fn add_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move { self.with(|st, _| st.channels.add(channel)).0 })
    }

    fn remove_channel<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.act(|st, fx| {
                st.channels.remove(channel)?;
                fx.push(Effect::Apply(Event::ChannelRemoved(Arc::from(channel))));
                Ok(())
            })
            .await
        })
    }

    fn channel_exists<'a>(&'a self, channel: &'a str) -> Fut<'a, Result<bool, EngineError>> {
        Box::pin(async move { Ok(self.with(|st, _| st.channels.exists(channel)).0) })
    }

    fn set_membership<'a>(
        &'a self,
        who: Who,
        channel: &'a str,
        join: bool,
    ) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.act(|st, fx| {
                let edit = |r: &mut AuthRecord| {
                    if join { r.add_channel(channel) } else { r.remove_channel(channel) }
                };
                match &who {
                    Who::User(uid) => {
                        if join && !st.presence.has_sockets(*uid) {
                            return Err(EngineError::NoActiveSessions);
                        }
                        if !join && !st.channels.exists(channel) {
                            return Err(EngineError::NoSuchChannel);
                        }
                        st.sessions.edit_user_records(*uid, edit);
                    }
                    Who::Session(token) => {
                        let known = if join {
                            st.sessions.has_sockets(token)
                        } else {
                            st.sessions.key(token).is_some()
                        };
                        if !known || (!join && !st.channels.exists(channel)) {
                            return Err(EngineError::InvalidParameters);
                        }
                        st.sessions.edit_session_record(token, edit);
                    }
                }
                let channel: Arc<str> = Arc::from(channel);
                fx.push(Effect::Apply(if join {
                    let stream = Stream::Channel(channel.clone());
                    let position = self.inner.streams.recover(&stream, None).top;
                    Event::JoinChannel { who, channel, position }
                } else {
                    Event::LeaveChannel { who, channel }
                }));
                Ok(())
            })
            .await
        })
    }

    fn kick(&self, uid: Uid) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.act(|st, fx| {
                st.sessions.uncache_user(uid);
                fx.push(Effect::Apply(Event::Kick(uid)));
            })
            .await;
            Ok(())
        })
    }

    fn logout<'a>(&'a self, token: &'a str) -> Fut<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.act(|st, fx| {
                st.sessions.uncache(token);
                fx.push(Effect::Apply(Event::Logout(Arc::from(token))));
            })
            .await;
            Ok(())
        })
    }

    fn set_presence_list(&self, uid: Uid, watchers: Vec<Uid>) -> Fut<'_, Result<(), EngineError>> {
        Box::pin(async move {
            self.with(|st, _| {
                st.presence.set_watchers(uid, watchers.clone());
                st.sessions.edit_user_records(uid, |r| r.presence_uids = watchers.clone());
            });
            Ok(())
        })
    }

    fn stats(&self) -> Fut<'_, Result<EngineStats, EngineError>> {
        Box::pin(async move {
            Ok(self
                .with(|st, _| {
                    st.sessions.expire();
                    st.tokens.expire();
                    EngineStats {
                        online_users: st.presence.online_count(),
                        channels: st.channels.count(),
                        token_channels: st.tokens.channel_count(),
                        cached_auth_tokens: st.sessions.cached_count(),
                        waiting_content_tokens: st.tokens.waiting_count(),
                        sessions: st.sessions.connected_count(),
                        history_messages: self.inner.streams.messages(),
                        history_bytes: self.inner.streams.bytes(),
                        nodes: 1,
                        cluster_sockets: 0,
                    }
                })
                .0)
        })
    }

    fn token_channel_details(&self) -> Fut<'_, Result<Vec<TokenChannelDetail>, EngineError>> {
        Box::pin(async move { Ok(self.with(|st, _| st.tokens.details(MAX_LISTED_TOKEN_CHANNELS)).0) })
    }
}
