//! The table of this node's connections, with the counters that must agree with it (per
//! address, authenticated) and the outboxes of every authenticated socket for broadcasts.

use super::ConnId;
use super::groups::Snapshot;
use crate::engine::Member;
use crate::outbox::Outbox;
use drupal_push_protocol::{SocketId, Uid};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One WebSocket connection.
pub(super) struct ConnEntry {
    pub outbox: Arc<Outbox>,
    addr: IpAddr,
    /// Set once authenticated; boxed so that pre-auth connections stay small.
    auth: Option<Box<ConnAuth>>,
}

/// What an authenticated connection is in.
pub(super) struct ConnAuth {
    pub member: Member,
    /// Who may see this user's presence (to register it again if the shared state is lost).
    pub watchers: Arc<[Uid]>,
    pub channels: Vec<Arc<str>>,
    /// Content-token channels with the content token each was joined with.
    pub token_channels: Vec<(Arc<str>, Arc<str>)>,
}

/// Connection limits (0: none).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_per_address: usize,
}

#[derive(Default)]
pub(super) struct Conns {
    map: FxHashMap<ConnId, ConnEntry>,
    per_addr: FxHashMap<IpAddr, u32>,
    authenticated: usize,
    next_id: ConnId,
    /// Outboxes of all authenticated connections, for broadcasts; rebuilt after a change.
    everyone: Option<Snapshot>,
}

impl Conns {
    /// Adds a connection unless a limit is reached.
    pub fn add(
        &mut self,
        addr: IpAddr,
        outbox: Arc<Outbox>,
        limits: ConnLimits,
    ) -> Option<(ConnId, SocketId)> {
        if limits.max_connections > 0 && self.map.len() >= limits.max_connections {
            return None;
        }
        let from_addr = self.per_addr.entry(addr).or_insert(0);
        if limits.max_per_address > 0 && *from_addr as usize >= limits.max_per_address {
            return None;
        }
        *from_addr += 1;
        self.next_id += 1;
        let socket_id = SocketId(crate::ids::random_id(16));
        self.map.insert(self.next_id, ConnEntry { outbox, addr, auth: None });
        Some((self.next_id, socket_id))
    }

    /// Takes a connection out, with its authentication if it had one.
    pub fn remove(&mut self, id: ConnId) -> Option<(ConnEntry, Option<Box<ConnAuth>>)> {
        let mut conn = self.map.remove(&id)?;
        if let Some(n) = self.per_addr.get_mut(&conn.addr) {
            *n -= 1;
            if *n == 0 {
                self.per_addr.remove(&conn.addr);
            }
        }
        let auth = conn.auth.take();
        if auth.is_some() {
            self.authenticated -= 1;
            self.everyone = None;
        }
        Some((conn, auth))
    }

    pub fn get(&self, id: ConnId) -> Option<&ConnEntry> {
        self.map.get(&id)
    }

    pub fn is_authenticated(&self, id: ConnId) -> bool {
        self.map.get(&id).is_some_and(|c| c.auth.is_some())
    }

    /// Marks a connection authenticated; false when it is gone or already was.
    pub fn set_auth(&mut self, id: ConnId, auth: ConnAuth) -> bool {
        let Some(conn) = self.map.get_mut(&id) else { return false };
        if conn.auth.is_some() {
            return false;
        }
        conn.auth = Some(Box::new(auth));
        self.authenticated += 1;
        self.everyone = None;
        true
    }

    pub fn auth_mut(&mut self, id: ConnId) -> Option<&mut ConnAuth> {
        self.map.get_mut(&id)?.auth.as_deref_mut()
    }

    /// Outboxes of all authenticated connections, rebuilt only after a change.
    pub fn everyone(&mut self) -> Snapshot {
        let map = &self.map;
        self.everyone
            .get_or_insert_with(|| {
                map.values().filter(|c| c.auth.is_some()).map(|c| c.outbox.clone()).collect()
            })
            .clone()
    }

    pub fn auths(&self) -> impl Iterator<Item = &ConnAuth> {
        self.map.values().filter_map(|c| c.auth.as_deref())
    }

    pub fn outboxes(&self) -> impl Iterator<Item = &Arc<Outbox>> {
        self.map.values().map(|c| &c.outbox)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn authenticated(&self) -> usize {
        self.authenticated
    }
}
