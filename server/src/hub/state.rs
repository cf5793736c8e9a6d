//! The hub's state and the indexes that must agree: connection <-> channel, uid -> connections,
//! auth token -> session, content-token channel <-> connection. Every change to a membership
//! goes through the functions here, which update both sides under the one hub lock.

use super::Effect;
use super::tokens::TokenChannel;
use crate::outbox::Outbox;
use drupal_push_protocol::{SocketId, Uid};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

pub type ConnId = u64;

/// What Drupal said about an auth token (spec 2.4), kept in the auth cache; the channel list
/// follows later `user/channel/*` and `authtoken/channel/*` calls.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRecord {
    pub uid: Uid,
    pub channels: Vec<String>,
    pub presence_uids: Vec<Uid>,
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

/// One WebSocket connection.
pub(crate) struct ConnEntry {
    pub socket_id: SocketId,
    pub outbox: Arc<Outbox>,
    pub addr: IpAddr,
    /// Set once authenticated; boxed so that pre-auth connections stay small.
    pub auth: Option<Box<ConnAuth>>,
}

pub(crate) struct ConnAuth {
    pub token: Arc<str>,
    pub uid: Uid,
    pub channels: Vec<Arc<str>>,
    pub token_channels: Vec<Arc<str>>,
}

/// A channel Drupal publishes to. `explicit` channels were made by `channel/add` and stay when
/// empty; the others disappear with their last member (the original kept them forever: 7.12).
///
/// Publishing pushes to the members outside the hub lock: it takes [`Channel::snapshot`], a
/// shared list of the members' outboxes kept until the membership changes, so a stable channel
/// costs one `Arc` clone under the lock however large it is. `order` serialises the pushes of
/// concurrent publishes to the same channel, so every member sees them in the same order.
pub(crate) struct Channel {
    members: FxHashMap<ConnId, Arc<Outbox>>,
    snapshot: Option<Arc<[Arc<Outbox>]>>,
    pub order: Arc<Mutex<()>>,
    pub explicit: bool,
}

impl Channel {
    pub fn new(explicit: bool) -> Self {
        Channel { members: FxHashMap::default(), snapshot: None, order: Arc::default(), explicit }
    }

    pub fn insert(&mut self, id: ConnId, outbox: Arc<Outbox>) {
        if self.members.insert(id, outbox).is_none() {
            self.snapshot = None;
        }
    }

    pub fn remove(&mut self, id: ConnId) {
        if self.members.remove(&id).is_some() {
            self.snapshot = None;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn member_ids(&self) -> impl Iterator<Item = &ConnId> {
        self.members.keys()
    }

    /// The members' outboxes, rebuilt only after a membership change.
    pub fn snapshot(&mut self) -> Arc<[Arc<Outbox>]> {
        self.snapshot.get_or_insert_with(|| self.members.values().cloned().collect()).clone()
    }
}

/// A Drupal user (uid != 0) with connections, or one whose offline grace is running.
#[derive(Default)]
pub(crate) struct User {
    pub conns: FxHashMap<ConnId, Arc<Outbox>>,
    /// Users allowed to see this user's presence (`presenceUids`).
    pub watchers: Vec<Uid>,
    /// Announced online (to watchers and Drupal) and not yet offline.
    pub online: bool,
    /// Generation of the pending offline timer, if one runs.
    pub offline_timer: Option<u64>,
}

/// Everything known about one auth token: its connections and Drupal's cached answer.
pub(crate) struct Session {
    pub uid: Uid,
    pub conns: FxHashSet<ConnId>,
    pub cached: Option<Cached>,
}

pub(crate) struct Cached {
    pub record: Arc<AuthRecord>,
    pub expires: Instant,
}

#[derive(Default)]
pub(crate) struct State {
    pub next_conn: ConnId,
    pub next_timer_id: u64,
    pub conns: FxHashMap<ConnId, ConnEntry>,
    pub per_addr: FxHashMap<IpAddr, u32>,
    pub authenticated: usize,
    pub channels: FxHashMap<Arc<str>, Channel>,
    pub users: FxHashMap<Uid, User>,
    pub sessions: FxHashMap<Arc<str>, Session>,
    pub uid_sessions: FxHashMap<Uid, FxHashSet<Arc<str>>>,
    pub cached_sessions: usize,
    /// Auth-cache expiry order (the TTL is constant, so insertion order is expiry order).
    pub cache_queue: VecDeque<(Instant, Arc<str>)>,
    pub token_channels: FxHashMap<Arc<str>, TokenChannel>,
    /// Content-token expiry order: (deadline, channel, token).
    pub token_queue: VecDeque<(Instant, Arc<str>, Arc<str>)>,
    pub effects: Vec<Effect>,
    /// Outboxes of all authenticated connections, for broadcasts; rebuilt after a change.
    pub everyone: Option<Arc<[Arc<Outbox>]>>,
    pub token_ttl: std::time::Duration,
}

impl State {
    /// Outboxes of all authenticated connections (broadcast), rebuilt only after a change.
    pub fn everyone(&mut self) -> Arc<[Arc<Outbox>]> {
        let conns = &self.conns;
        self.everyone
            .get_or_insert_with(|| {
                conns.values().filter(|c| c.auth.is_some()).map(|c| c.outbox.clone()).collect()
            })
            .clone()
    }

    pub fn new_timer_id(&mut self) -> u64 {
        self.next_timer_id += 1;
        self.next_timer_id
    }

    /// Adds an authenticated connection to a channel (creating it), on both sides.
    pub fn join_channel(&mut self, id: ConnId, name: &str) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let Some(auth) = conn.auth.as_mut() else { return };
        if auth.channels.iter().any(|c| &**c == name) {
            return;
        }
        let key: Arc<str> = match self.channels.get_key_value(name) {
            Some((k, _)) => k.clone(),
            None => Arc::from(name),
        };
        auth.channels.push(key.clone());
        let outbox = conn.outbox.clone();
        self.channels.entry(key).or_insert_with(|| Channel::new(false)).insert(id, outbox);
    }

    /// Removes a connection from a channel on both sides; drops an emptied implicit channel.
    pub fn leave_channel(&mut self, id: ConnId, name: &str) {
        if let Some(auth) = self.conns.get_mut(&id).and_then(|c| c.auth.as_mut()) {
            auth.channels.retain(|c| &**c != name);
        }
        self.remove_member(id, name);
    }

    /// The channel side of leaving: drops an emptied implicit channel.
    fn remove_member(&mut self, id: ConnId, name: &str) {
        if let Some(ch) = self.channels.get_mut(name) {
            ch.remove(id);
            if ch.is_empty() && !ch.explicit {
                self.channels.remove(name);
            }
        }
    }

    /// Connection ids of a user's live sockets.
    pub fn user_conns(&self, uid: Uid) -> Vec<ConnId> {
        self.users.get(&uid).map(|u| u.conns.keys().copied().collect()).unwrap_or_default()
    }

    /// Applies `f` to the cached auth records of every session of `uid`.
    pub fn edit_user_records(&mut self, uid: Uid, f: impl Fn(&mut AuthRecord)) {
        let Some(tokens) = self.uid_sessions.get(&uid) else { return };
        for token in tokens {
            edit_record(&mut self.sessions, token, &f);
        }
    }

    /// Applies `f` to the cached auth record of the session of `token`, if there is one.
    pub fn edit_session_record(&mut self, token: &str, f: impl Fn(&mut AuthRecord)) {
        edit_record(&mut self.sessions, token, &f);
    }

    /// Removes a session if it has neither connections nor a live cache entry.
    pub fn forget_session_if_idle(&mut self, token: &str) {
        let Some(s) = self.sessions.get(token) else { return };
        if !s.conns.is_empty() || s.cached.is_some() {
            return;
        }
        let uid = s.uid;
        self.sessions.remove(token);
        if let Some(set) = self.uid_sessions.get_mut(&uid) {
            set.remove(token);
            if set.is_empty() {
                self.uid_sessions.remove(&uid);
            }
        }
    }

    /// Drops the cached answer of a session (logout, kick, expiry, eviction).
    pub fn uncache(&mut self, token: &str) {
        if let Some(s) = self.sessions.get_mut(token) {
            if s.cached.take().is_some() {
                self.cached_sessions -= 1;
            }
        }
        self.forget_session_if_idle(token);
    }

    /// Takes a connection out of every index. `forced` (kick, logout) skips the grace periods.
    /// Returns the entry so the caller can close its outbox.
    pub fn detach(&mut self, id: ConnId, forced: bool) -> Option<ConnEntry> {
        let mut conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_addr.get_mut(&conn.addr) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&conn.addr);
            }
        }
        if let Some(auth) = conn.auth.take() {
            self.authenticated -= 1;
            for name in &auth.channels {
                self.remove_member(id, name);
            }
            self.everyone = None;
            for name in &auth.token_channels {
                self.leave_token_channel(id, name, forced);
            }
            if let Some(s) = self.sessions.get_mut(&auth.token) {
                s.conns.remove(&id);
            }
            self.forget_session_if_idle(&auth.token);
            if !auth.uid.is_anonymous() {
                self.user_conn_gone(auth.uid, id, forced);
            }
            conn.auth = Some(auth);
        }
        Some(conn)
    }
}

fn edit_record(sessions: &mut FxHashMap<Arc<str>, Session>, token: &str, f: &impl Fn(&mut AuthRecord)) {
    if let Some(cached) = sessions.get_mut(token).and_then(|s| s.cached.as_mut()) {
        f(Arc::make_mut(&mut cached.record));
    }
}
