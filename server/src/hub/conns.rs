//! The table of this node's connections, with the counters that must agree with it (per
//! address, authenticated) and the outboxes of every authenticated socket for broadcasts.
//!
//! Per address (its [`address_key`]) it also knows, in O(1) per connection and memory bounded
//! by the connections, how many distinct client addresses are connected and how many
//! connections the busiest one holds (`/status.json`): one address holding most connections
//! is the sign of a reverse proxy missing from `trustedProxies`.

use super::ConnId;
use super::groups::Snapshot;
use crate::conn::outbox::Outbox;
use crate::edge::limits::address_key;
use crate::engine::Member;
use drupal_push_protocol::{SocketId, Uid};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// One WebSocket connection.
pub(super) struct ConnEntry {
    pub outbox: Arc<Outbox>,
    /// The client's [`address_key`].
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
    /// `with_count[c]`: how many addresses hold exactly `c` connections (index 0 unused).
    with_count: Vec<u32>,
    /// The most connections one address holds.
    top: u32,
    authenticated: usize,
    next_id: ConnId,
    /// Outboxes of all authenticated connections, for broadcasts; rebuilt after a change.
    everyone: Option<Snapshot>,
}

impl Conns {
    /// Adds a connection from `addr` (counted per [`address_key`]) unless a limit is reached.
    pub fn add(
        &mut self,
        addr: IpAddr,
        outbox: Arc<Outbox>,
        limits: ConnLimits,
    ) -> Option<(ConnId, SocketId)> {
        let addr = address_key(addr);
        if limits.max_connections > 0 && self.map.len() >= limits.max_connections {
            return None;
        }
        let held = self.per_addr.get(&addr).copied().unwrap_or(0);
        if limits.max_per_address > 0 && held as usize >= limits.max_per_address {
            return None;
        }
        self.count_in(addr);
        self.next_id += 1;
        let socket_id = SocketId(crate::ids::random_id(16));
        self.map.insert(self.next_id, ConnEntry { outbox, addr, auth: None });
        Some((self.next_id, socket_id))
    }

    /// Takes a connection out, with its authentication if it had one.
    pub fn remove(&mut self, id: ConnId) -> Option<(ConnEntry, Option<Box<ConnAuth>>)> {
        let mut conn = self.map.remove(&id)?;
        self.count_out(conn.addr);
        let auth = conn.auth.take();
        if auth.is_some() {
            self.authenticated -= 1;
            self.everyone = None;
        }
        Some((conn, auth))
    }

    /// One more connection from the address key `addr`.
    fn count_in(&mut self, addr: IpAddr) {
        let n = self.per_addr.entry(addr).or_insert(0);
        *n += 1;
        let now = *n as usize;
        if self.with_count.len() <= now {
            self.with_count.resize(now + 1, 0);
        }
        self.with_count[now] += 1;
        if now > 1 {
            self.with_count[now - 1] -= 1;
        }
        self.top = self.top.max(now as u32);
    }

    /// One connection less from the address key `addr`.
    fn count_out(&mut self, addr: IpAddr) {
        let Some(n) = self.per_addr.get_mut(&addr) else { return };
        let was = *n as usize;
        *n -= 1;
        if *n == 0 {
            self.per_addr.remove(&addr);
        }
        self.with_count[was] -= 1;
        if was > 1 {
            self.with_count[was - 1] += 1;
        }
        // Counts move by one: when the last address at the top moves down, the top is one
        // lower (that address is there now), or 0 when it was the last connection.
        if was as u32 == self.top && self.with_count[was] == 0 {
            self.top -= 1;
        }
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

    /// Distinct client addresses (IPv6: /64 networks) with a connection here.
    pub fn client_addresses(&self) -> usize {
        self.per_addr.len()
    }

    /// Connections of the address that holds the most.
    pub fn top_address_connections(&self) -> usize {
        self.top as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23: the distinct addresses and the busiest one's connections follow every add and
    /// remove.
    #[test]
    fn distinct_addresses_and_the_top_address_follow_the_connections() {
        // An outbox needs a socket; the counts do not, so the table is driven through its
        // address bookkeeping alone.
        let mut c = Conns::default();
        let addr = |n: u8| IpAddr::from([10, 0, 0, n]);
        for n in [1, 1, 1, 2, 3, 3] {
            c.count_in(addr(n));
        }
        assert_eq!((c.client_addresses(), c.top_address_connections()), (3, 3));
        c.count_out(addr(1));
        assert_eq!(c.top_address_connections(), 2, "1 and 3 hold two each");
        c.count_out(addr(3));
        assert_eq!(c.top_address_connections(), 2, "1 still holds two");
        c.count_out(addr(1));
        assert_eq!((c.client_addresses(), c.top_address_connections()), (3, 1));
        for n in [1, 2, 3] {
            c.count_out(addr(n));
        }
        assert_eq!((c.client_addresses(), c.top_address_connections()), (0, 0));
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        c.count_in(address_key(v6("2001:db8::1")));
        c.count_in(address_key(v6("2001:db8::2")));
        assert_eq!((c.client_addresses(), c.top_address_connections()), (1, 2), "one /64");
    }
}
