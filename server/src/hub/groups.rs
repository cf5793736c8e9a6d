//! Local sockets grouped by a key: channels, content-token channels, users, sessions.
//!
//! A fan-out takes a group's [`Snapshot`], a shared list of the members' outboxes that is kept
//! until the membership changes, so a stable channel costs one `Arc` clone under the hub lock
//! however large it is; the pushes happen after the lock is released.

use super::ConnId;
use crate::conn::outbox::Outbox;
use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;

/// The outboxes of a group's members at one moment.
pub type Snapshot = Arc<[Arc<Outbox>]>;

struct Group {
    members: FxHashMap<ConnId, Arc<Outbox>>,
    snapshot: Option<Snapshot>,
}

pub(super) struct Groups<K> {
    map: FxHashMap<K, Group>,
}

impl<K> Default for Groups<K> {
    fn default() -> Self {
        Groups { map: FxHashMap::default() }
    }
}

impl<K: Hash + Eq + Clone> Groups<K> {
    /// Adds a member; true when this created the group.
    pub fn insert(&mut self, key: &K, id: ConnId, outbox: &Arc<Outbox>) -> bool {
        let created = !self.map.contains_key(key);
        let group = self
            .map
            .entry(key.clone())
            .or_insert_with(|| Group { members: FxHashMap::default(), snapshot: None });
        if group.members.insert(id, outbox.clone()).is_none() {
            group.snapshot = None;
        }
        created
    }

    /// Removes a member; true when this emptied (and so removed) the group.
    pub fn remove<Q>(&mut self, key: &Q, id: ConnId) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(group) = self.map.get_mut(key) else { return false };
        if group.members.remove(&id).is_some() {
            group.snapshot = None;
        }
        if group.members.is_empty() {
            self.map.remove(key);
            return true;
        }
        false
    }

    /// Drops a whole group; returns its members.
    pub fn remove_group<Q>(&mut self, key: &Q) -> Vec<ConnId>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key).map(|g| g.members.into_keys().collect()).unwrap_or_default()
    }

    pub fn members<Q>(&self, key: &Q) -> Vec<ConnId>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key).map(|g| g.members.keys().copied().collect()).unwrap_or_default()
    }

    /// The members' outboxes, rebuilt only after a membership change.
    pub fn snapshot<Q>(&mut self, key: &Q) -> Option<Snapshot>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let group = self.map.get_mut(key)?;
        Some(group.snapshot.get_or_insert_with(|| group.members.values().cloned().collect()).clone())
    }

    /// The shared key of an existing group, so that other indexes reuse its allocation.
    pub fn key<Q>(&self, key: &Q) -> Option<K>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(key).map(|(k, _)| k.clone())
    }

    pub fn keys(&self) -> Vec<K> {
        self.map.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
