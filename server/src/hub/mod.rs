//! This node's sockets: the connections, and which local socket is in which channel,
//! content-token channel, user and session. Everything cluster-wide (presence, the auth cache,
//! content tokens, history) is the engine's ([`crate::engine`]).
//!
//! [`Hub`] is a cheap-clone handle around one `std::sync::Mutex`; every method is synchronous
//! and short, and no lock is held across an `.await` or a call into the engine. Membership
//! changes are reported as [`Changes`] for the caller to hand to the engine. Every lookup is
//! indexed; only broadcasts and shutdown touch all connections. Sockets that published to a
//! client-writable channel are also indexed by socket id, so a delivery can skip its sender
//! (idle sockets are not in that index and pay nothing for it). Parts: [`conns`] (the
//! connection table and its counters) and [`groups`] (members and fan-out snapshots);
//! [`fanout`] pushes one frame to a snapshot outside the lock; [`node`] is this process as the
//! engine sees it (deliveries become frames pushed to local sockets).

mod conns;
pub mod fanout;
mod groups;
pub mod node;

pub use conns::ConnLimits;
pub use groups::Snapshot;

use crate::conn::outbox::Outbox;
use crate::engine::{Changes, Departure, Event, LocalSocket, Member, Stream, Who};
use conns::{ConnAuth, Conns};
use drupal_push_protocol::{CloseCode, SocketId, Uid};
use groups::Groups;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub type ConnId = u64;

/// This node's counters, kept as state changes (reading them costs O(1)).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalStats {
    /// Authenticated sockets.
    pub sockets: usize,
    /// Sockets still waiting to authenticate.
    pub pre_auth_sockets: usize,
    /// Distinct sessions (auth tokens) with authenticated sockets here.
    pub sessions: usize,
    /// Channels with a member here.
    pub channels: usize,
    /// Content-token channels with a member here.
    pub token_channels: usize,
    /// Distinct client addresses (IPv6: /64 networks) of the connections here.
    pub client_addresses: usize,
    /// Connections (authenticated or not) of the address that holds the most.
    pub top_address_connections: usize,
}

#[derive(Default)]
struct Local {
    conns: Conns,
    channels: Groups<Arc<str>>,
    token_channels: Groups<Arc<str>>,
    users: Groups<Uid>,
    sessions: Groups<Arc<str>>,
    /// Sockets that published as browsers, by socket id.
    senders: FxHashMap<Arc<str>, ConnId>,
}

impl Local {
    fn who(&self, who: &Who) -> Vec<ConnId> {
        match who {
            Who::User(uid) => self.users.members(uid),
            Who::Session(token) => self.sessions.members(&**token),
        }
    }

    /// Adds a socket to a channel; returns its outbox when it was not in it yet.
    fn join_channel(&mut self, id: ConnId, name: &str, changes: &mut Changes) -> Option<Arc<Outbox>> {
        let outbox = self.conns.get(id)?.outbox.clone();
        let key = self.channels.key(name).unwrap_or_else(|| Arc::from(name));
        let auth = self.conns.auth_mut(id)?;
        if auth.channels.contains(&key) {
            return None;
        }
        auth.channels.push(key.clone());
        if self.channels.insert(&key, id, &outbox) {
            changes.opened.push(key);
        }
        Some(outbox)
    }

    fn leave_channel(&mut self, id: ConnId, name: &str, changes: &mut Changes) {
        let Some(auth) = self.conns.auth_mut(id) else { return };
        let before = auth.channels.len();
        auth.channels.retain(|c| &**c != name);
        if auth.channels.len() != before && self.channels.remove(name, id) {
            changes.closed.push(Arc::from(name));
        }
    }

    fn close(&self, ids: &[ConnId], code: CloseCode) {
        for id in ids {
            if let Some(c) = self.conns.get(*id) {
                c.outbox.close(code);
            }
        }
    }
}

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    local: Mutex<Local>,
    limits: ConnLimits,
}

impl Hub {
    pub fn new(limits: ConnLimits) -> Hub {
        Hub { inner: Arc::new(Inner { local: Mutex::default(), limits }) }
    }

    fn lock(&self) -> MutexGuard<'_, Local> {
        self.inner.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new (not yet authenticated) connection, or refuses it when a limit is hit.
    pub fn register(&self, addr: IpAddr, outbox: Arc<Outbox>) -> Result<(ConnId, SocketId), CloseCode> {
        self.lock().conns.add(addr, outbox, self.inner.limits).ok_or(CloseCode::TOO_MANY_CONNECTIONS)
    }

    /// Makes a connection authenticated as `member`, in `channels`. `None` when it is gone.
    pub fn attach(
        &self,
        id: ConnId,
        member: &Member,
        channels: &[String],
        watchers: &[Uid],
    ) -> Option<Changes> {
        let mut local = self.lock();
        let l = &mut *local;
        let outbox = l.conns.get(id)?.outbox.clone();
        let auth = ConnAuth {
            member: member.clone(),
            watchers: watchers.into(),
            channels: Vec::new(),
            token_channels: Vec::new(),
        };
        if !l.conns.set_auth(id, auth) {
            return l.conns.is_authenticated(id).then(Changes::default);
        }
        if !member.uid.is_anonymous() {
            l.users.insert(&member.uid, id, &outbox);
        }
        l.sessions.insert(&member.token, id, &outbox);
        let mut changes = Changes::default();
        for name in channels {
            l.join_channel(id, name, &mut changes);
        }
        Some(changes)
    }

    /// Whether an authenticated connection is in a content-token channel; `None` when it is
    /// gone or not authenticated.
    pub fn in_token_channel(&self, id: ConnId, channel: &str) -> Option<bool> {
        let mut local = self.lock();
        let auth = local.conns.auth_mut(id)?;
        Some(auth.token_channels.iter().any(|(c, _)| &**c == channel))
    }

    /// Adds an authenticated connection to a content-token channel, joined with `token`, once
    /// the engine has accepted the token (never before: whatever the channel carries would
    /// reach the socket meanwhile). False when it is gone or already in.
    pub fn join_token_channel(&self, id: ConnId, channel: &str, token: &str) -> bool {
        let mut local = self.lock();
        let l = &mut *local;
        let Some(outbox) = l.conns.get(id).map(|c| c.outbox.clone()) else { return false };
        let key = l.token_channels.key(channel).unwrap_or_else(|| Arc::from(channel));
        let Some(auth) = l.conns.auth_mut(id) else { return false };
        if auth.token_channels.iter().any(|(c, _)| *c == key) {
            return false;
        }
        auth.token_channels.push((key.clone(), Arc::from(token)));
        l.token_channels.insert(&key, id, &outbox);
        true
    }

    /// The connection ended: out of every index (`sender`: its socket id, when it registered
    /// as a sender). Returns what the engine must hear: channels closed here and, if it was
    /// authenticated, its departure (`forced`: without grace).
    pub fn detach(&self, id: ConnId, forced: bool, sender: Option<&str>) -> Changes {
        let mut local = self.lock();
        let l = &mut *local;
        if let Some(socket_id) = sender {
            l.senders.remove(socket_id);
        }
        let mut changes = Changes::default();
        let Some((_, auth)) = l.conns.remove(id) else { return changes };
        let Some(auth) = auth else { return changes };
        for name in &auth.channels {
            if l.channels.remove(&**name, id) {
                changes.closed.push(name.clone());
            }
        }
        for (name, _) in &auth.token_channels {
            l.token_channels.remove(&**name, id);
        }
        l.users.remove(&auth.member.uid, id);
        l.sessions.remove(&*auth.member.token, id);
        let ConnAuth { member, token_channels, .. } = *auth;
        changes.departures.push(Departure { member, token_channels, forced });
        changes
    }

    /// Applies a cluster-wide command to this node's sockets. Kicked and logged-out sockets
    /// are closed here and leave the indexes when their connection task ends.
    pub fn apply(&self, event: &Event) -> Changes {
        let mut local = self.lock();
        let l = &mut *local;
        let mut changes = Changes::default();
        match event {
            Event::Kick(uid) => l.close(&l.users.members(uid), CloseCode::KICKED),
            Event::Logout(token) => l.close(&l.sessions.members(&**token), CloseCode::LOGGED_OUT),
            Event::JoinChannel { who, channel, .. } => {
                for id in l.who(who) {
                    l.join_channel(id, channel, &mut changes);
                }
            }
            Event::LeaveChannel { who, channel } => {
                for id in l.who(who) {
                    l.leave_channel(id, channel, &mut changes);
                }
            }
            Event::ChannelRemoved(channel) => {
                for id in l.channels.remove_group(&**channel) {
                    if let Some(auth) = l.conns.auth_mut(id) {
                        auth.channels.retain(|c| c != channel);
                    }
                }
            }
            Event::Presence { .. } => {}
        }
        changes
    }

    /// `Event::JoinChannel`: adds the sockets of `who` to `channel`; returns the changes and the
    /// outboxes of the sockets that joined.
    pub fn join_channel(&self, who: &Who, channel: &str) -> (Changes, Vec<Arc<Outbox>>) {
        let mut local = self.lock();
        let l = &mut *local;
        let mut changes = Changes::default();
        let joined =
            l.who(who).into_iter().filter_map(|id| l.join_channel(id, channel, &mut changes)).collect();
        (changes, joined)
    }

    /// Makes a connection findable by its socket id, so that what it publishes can skip it;
    /// [`Hub::detach`] takes it out again. False when it is gone.
    pub fn register_sender(&self, id: ConnId, socket_id: &str) -> bool {
        let mut local = self.lock();
        if local.conns.get(id).is_none() {
            return false;
        }
        local.senders.insert(Arc::from(socket_id), id);
        true
    }

    /// Whether an authenticated connection is a member of `channel`.
    pub fn is_member(&self, id: ConnId, channel: &str) -> bool {
        let mut local = self.lock();
        local.conns.auth_mut(id).is_some_and(|a| a.channels.iter().any(|c| &**c == channel))
    }

    /// The outboxes a publication on `stream` goes to here, and the outbox of its sender when
    /// that socket is here (to be skipped).
    pub fn snapshot(&self, stream: &Stream, sender: Option<&str>) -> (Option<Snapshot>, Option<Arc<Outbox>>) {
        let mut local = self.lock();
        let l = &mut *local;
        let skip =
            sender.and_then(|s| l.senders.get(s)).and_then(|id| l.conns.get(*id)).map(|c| c.outbox.clone());
        let to = match stream {
            Stream::Channel(c) => l.channels.snapshot(&**c),
            Stream::Token(c) => l.token_channels.snapshot(&**c),
            Stream::Broadcast => Some(l.conns.everyone()),
        };
        (to, skip)
    }

    /// The outboxes of the local sockets of `uids`.
    pub fn user_outboxes(&self, uids: &[Uid]) -> Vec<Arc<Outbox>> {
        let mut local = self.lock();
        let mut out = Vec::new();
        for uid in uids {
            if let Some(s) = local.users.snapshot(uid) {
                out.extend(s.iter().cloned());
            }
        }
        out
    }

    /// This node's authenticated sockets (for an engine that lost its shared state).
    pub fn local_sockets(&self) -> Vec<LocalSocket> {
        let local = self.lock();
        local
            .conns
            .auths()
            .map(|a| LocalSocket { member: a.member.clone(), watchers: a.watchers.clone() })
            .collect()
    }

    /// The channels with a member here.
    pub fn local_channels(&self) -> Vec<Arc<str>> {
        self.lock().channels.keys()
    }

    /// The outboxes of every connection, for a drain that closes them one by one.
    pub fn outboxes(&self) -> Vec<Arc<Outbox>> {
        self.lock().conns.outboxes().cloned().collect()
    }

    /// Closes every connection with `code` (server shutdown).
    pub fn close_all(&self, code: CloseCode) {
        for outbox in self.lock().conns.outboxes() {
            outbox.close(code);
        }
    }

    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn stats(&self) -> LocalStats {
        let local = self.lock();
        LocalStats {
            sockets: local.conns.authenticated(),
            pre_auth_sockets: local.conns.len() - local.conns.authenticated(),
            sessions: local.sessions.len(),
            channels: local.channels.len(),
            token_channels: local.token_channels.len(),
            client_addresses: local.conns.client_addresses(),
            top_address_connections: local.conns.top_address_connections(),
        }
    }
}
