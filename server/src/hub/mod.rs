//! The shared state of the server and every operation on it: connections, channels, users,
//! sessions (auth cache), content-token channels, presence.
//!
//! [`Hub`] is a cheap-clone handle around one `std::sync::Mutex<State>`; all methods are
//! synchronous and never hold the lock across an `.await`. Pushing frames into connection
//! outboxes never blocks, so doing it under the lock is fine. Side effects that need I/O or time
//! (backend notices, grace timers) are collected as [`Effect`]s while locked and started after
//! the lock is released. Every lookup is indexed; no operation scans all connections except
//! broadcast, which by definition reaches all of them.
//!
//! Files: `state.rs` (the indexes and membership changes), `tokens.rs` (content-token
//! channels), `admin.rs` (the operations behind the REST routes); presence lives in
//! `crate::presence`.

pub mod admin;
pub mod state;
#[cfg(test)]
mod tests;
pub mod tokens;

use crate::outbox::{Limits, Outbox, Pushed};
use axum::extract::ws::Utf8Bytes;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::{self, ClientAuthData};
use drupal_push_protocol::{CloseCode, ServerFrame, SocketId, Uid, frames};
use serde_json::value::RawValue;
use state::{Cached, ConnAuth, ConnEntry, State};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub use state::{AuthRecord, ConnId};
pub use tokens::{JoinRefused, MemberKey};

/// Something to do once the lock is released.
#[derive(Debug)]
pub enum Effect {
    Backend(BackendMessage),
    OfflineTimer { uid: Uid, timer_id: u64 },
    TokenLeaveTimer { channel: Arc<str>, key: MemberKey, uid: Uid, timer_id: u64 },
}

/// Where `userOnline`/`userOffline` go (the backend client; tests may record them).
pub trait BackendNotifier: Send + Sync + 'static {
    fn notify(&self, message: BackendMessage);
}

/// The hub's settings, taken from the config.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub outbox: Limits,
    pub presence_grace: Duration,
    pub auth_cache_ttl: Duration,
    pub auth_cache_max: usize,
    pub content_token_ttl: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub heartbeat_interval: Duration,
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Serialises concurrent broadcasts, like `Channel::order` for channels.
    broadcast_order: Arc<Mutex<()>>,
    settings: HubSettings,
    notifier: Arc<dyn BackendNotifier>,
}

/// A newly registered connection.
pub struct Registered {
    pub id: ConnId,
    pub socket_id: SocketId,
    pub outbox: Arc<Outbox>,
}

/// Where a publish goes.
pub enum Target<'a> {
    Channel(&'a str),
    Broadcast,
}

impl Hub {
    pub fn new(settings: HubSettings, notifier: Arc<dyn BackendNotifier>) -> Hub {
        let state = State { token_ttl: settings.content_token_ttl, ..State::default() };
        Hub {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                broadcast_order: Arc::default(),
                settings,
                notifier,
            }),
        }
    }

    pub fn settings(&self) -> &HubSettings {
        &self.inner.settings
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` under the lock, then starts the effects it produced.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (r, effects) = {
            let mut st = self.lock();
            let r = f(&mut st);
            let effects = std::mem::take(&mut st.effects);
            // Backend notices are handed over under the lock, so they reach the notifier in the
            // order they were decided (an `userOffline` never before its `userOnline`); `notify`
            // only queues.
            for e in &effects {
                if let Effect::Backend(m) = e {
                    self.inner.notifier.notify(m.clone());
                }
            }
            (r, effects)
        };
        for e in effects {
            self.start(e);
        }
        r
    }

    fn start(&self, effect: Effect) {
        match effect {
            Effect::Backend(_) => {}
            Effect::OfflineTimer { uid, timer_id } => {
                let hub = self.clone();
                let due = Instant::now() + self.inner.settings.presence_grace;
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    hub.with(|st| st.offline_timer_fired(uid, timer_id));
                });
            }
            Effect::TokenLeaveTimer { channel, key, uid, timer_id } => {
                let hub = self.clone();
                let due = Instant::now() + self.inner.settings.presence_grace;
                tokio::spawn(async move {
                    tokio::time::sleep_until(due).await;
                    hub.with(|st| st.token_leave_timer_fired(&channel, &key, uid, timer_id));
                });
            }
        }
    }

    /// Registers a new (not yet authenticated) connection, or refuses it when a limit is hit.
    pub fn register(&self, addr: IpAddr) -> Result<Registered, CloseCode> {
        let s = &self.inner.settings;
        self.with(|st| {
            if s.max_connections > 0 && st.conns.len() >= s.max_connections {
                return Err(CloseCode::TOO_MANY_CONNECTIONS);
            }
            let from_addr = st.per_addr.entry(addr).or_insert(0);
            if s.max_connections_per_address > 0 && *from_addr as usize >= s.max_connections_per_address {
                return Err(CloseCode::TOO_MANY_CONNECTIONS);
            }
            *from_addr += 1;
            st.next_conn += 1;
            let id = st.next_conn;
            let socket_id = SocketId(crate::ids::random_id(16));
            let outbox = Arc::new(Outbox::new(s.outbox));
            st.conns.insert(
                id,
                ConnEntry { socket_id: socket_id.clone(), outbox: outbox.clone(), addr, auth: None },
            );
            Ok(Registered { id, socket_id, outbox })
        })
    }

    /// Drupal's cached answer for `token`, if it is still fresh.
    pub fn cached_auth(&self, token: &str) -> Option<Arc<AuthRecord>> {
        self.with(|st| {
            expire_cache(st, &self.inner.settings);
            let now = Instant::now();
            st.sessions.get(token)?.cached.as_ref().filter(|c| c.expires > now).map(|c| c.record.clone())
        })
    }

    /// Sets up an authenticated connection (spec 3.3): channels, presence, content tokens, the
    /// ack and `clientAuthenticated`. `fresh` answers from Drupal are cached. Returns false when
    /// the connection is already gone.
    pub fn authenticate(
        &self,
        id: ConnId,
        token: &str,
        record: Arc<AuthRecord>,
        content_tokens: &BTreeMap<String, String>,
        fresh: bool,
    ) -> bool {
        let settings = &self.inner.settings;
        self.with(|st| {
            let Some(conn) = st.conns.get_mut(&id) else { return false };
            if conn.auth.is_some() {
                return true;
            }
            let outbox = conn.outbox.clone();
            let socket_id = conn.socket_id.clone();
            let token: Arc<str> =
                st.sessions.get_key_value(token).map(|(k, _)| k.clone()).unwrap_or_else(|| Arc::from(token));
            st.everyone = None;
            conn.auth = Some(Box::new(ConnAuth {
                token: token.clone(),
                uid: record.uid,
                channels: Vec::new(),
                token_channels: Vec::new(),
            }));
            st.authenticated += 1;
            let session = st.sessions.entry(token.clone()).or_insert_with(|| state::Session {
                uid: record.uid,
                conns: Default::default(),
                cached: None,
            });
            session.conns.insert(id);
            st.uid_sessions.entry(record.uid).or_default().insert(token.clone());
            if fresh {
                let expires = Instant::now() + settings.auth_cache_ttl;
                if session.cached.replace(Cached { record: record.clone(), expires }).is_none() {
                    st.cached_sessions += 1;
                }
                st.cache_queue.push_back((expires, token.clone()));
                expire_cache(st, settings);
            }
            for ch in &record.channels {
                st.join_channel(id, ch);
            }
            if !record.uid.is_anonymous() {
                st.user_conn_added(record.uid, id, outbox.clone(), &record.presence_uids);
            }
            st.expire_tokens();
            let mut joined = BTreeMap::new();
            let mut notices = Vec::new();
            for (channel, content_token) in content_tokens {
                if let Ok(notice) = st.join_token_channel(id, channel, content_token) {
                    joined.insert(channel.clone(), content_token.clone());
                    notices.extend(notice);
                }
            }
            let ack = ServerFrame::Authenticated {
                socket_id: socket_id.clone(),
                uid: record.uid,
                channels: record.channels.clone(),
            };
            outbox.push(Utf8Bytes::from(ack.encode()));
            let data = ClientAuthData {
                uid: record.uid,
                auth_token: token.to_string(),
                nodejs_valid_auth_token: true,
                client_id: socket_id,
                channels: record.channels.clone(),
                presence_uids: record.presence_uids.clone(),
                content_tokens: joined,
            };
            outbox.push(Utf8Bytes::from(frames::encode_message(&drupal::client_authenticated(&data), None)));
            // Join notices after the ack, so the joiner sees `authenticated` first.
            for n in notices {
                n.deliver();
            }
            true
        })
    }

    /// `join-token-channel` from an authenticated connection.
    pub fn join_token_channel(&self, id: ConnId, channel: &str, token: &str) -> Result<(), JoinRefused> {
        self.with(|st| {
            st.expire_tokens();
            st.join_token_channel(id, channel, token)
                .map(|notice| notice.map(tokens::JoinNotice::deliver).unwrap_or(()))
        })
    }

    /// The connection ended (any reason): out of every index, grace timers started. Its outbox
    /// is closed, so a publish still holding it in a snapshot counts nothing for it.
    pub fn disconnect(&self, id: ConnId) {
        if let Some(conn) = self.with(|st| st.detach(id, false)) {
            conn.outbox.close(CloseCode::GOING_AWAY);
        }
    }

    /// Publishes one Drupal message; returns the number of sockets it was queued for. The frame
    /// is encoded once; the pushes happen outside the hub lock (see `state::Channel`).
    pub fn publish(&self, message: &RawValue, target: Target<'_>) -> usize {
        let channel = match target {
            Target::Channel(c) => Some(c),
            Target::Broadcast => None,
        };
        let frame = Utf8Bytes::from(frames::encode_message(message, channel));
        let (outboxes, order) = {
            let mut st = self.lock();
            match target {
                Target::Channel(c) => match st.channels.get_mut(c) {
                    Some(ch) => (ch.snapshot(), ch.order.clone()),
                    None => return 0,
                },
                Target::Broadcast => (st.everyone(), self.inner.broadcast_order.clone()),
            }
        };
        let _in_order = order.lock().unwrap_or_else(|p| p.into_inner());
        outboxes.iter().filter(|o| o.push(frame.clone()) == Pushed::Queued).count()
    }

    /// `content/token/message`; `None` when the token channel does not exist.
    pub fn publish_to_token_channel(&self, channel: &str, message: &RawValue) -> Option<usize> {
        let frame = Utf8Bytes::from(frames::encode_message(message, Some(channel)));
        self.lock().publish_to_token_channel(channel, &frame)
    }

    /// Closes every connection with 1001 (server shutdown).
    pub fn close_all(&self, code: CloseCode) {
        let st = self.lock();
        for c in st.conns.values() {
            c.outbox.close(code);
        }
    }

    /// The outboxes of every connection, for a drain that closes them one by one.
    pub fn outboxes(&self) -> Vec<Arc<Outbox>> {
        self.lock().conns.values().map(|c| c.outbox.clone()).collect()
    }

    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }
}

/// Drops auth-cache entries past their time, and the oldest beyond `auth_cache_max`.
pub(crate) fn expire_cache(st: &mut State, settings: &HubSettings) {
    let now = Instant::now();
    while let Some((deadline, token)) = st.cache_queue.front().cloned() {
        let over = st.cached_sessions > settings.auth_cache_max;
        if deadline > now && !over {
            break;
        }
        st.cache_queue.pop_front();
        let current = st.sessions.get(&token).and_then(|s| s.cached.as_ref()).map(|c| c.expires);
        if current == Some(deadline) {
            st.uncache(&token);
        }
    }
}
