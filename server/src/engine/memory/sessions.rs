//! Sessions (auth tokens): Drupal's cached answer for each, how many sockets each has, and
//! which sessions belong to which user.
//!
//! The cache has a time to live (`authCacheTtlSecs`) and a size bound (`authCacheMax`), both
//! enforced in expiry order, amortised O(1) per operation. A session is forgotten as soon as it
//! has neither sockets nor a cached answer.

use crate::engine::{AuthRecord, Member};
use drupal_push_protocol::Uid;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

struct Session {
    uid: Uid,
    sockets: u32,
    cached: Option<Cached>,
}

struct Cached {
    record: Arc<AuthRecord>,
    expires: Instant,
}

pub(super) struct Sessions {
    by_token: FxHashMap<Arc<str>, Session>,
    by_uid: FxHashMap<Uid, FxHashSet<Arc<str>>>,
    /// Sessions with a cached answer.
    cached: usize,
    /// Sessions with at least one socket.
    connected: usize,
    /// Cache expiry order (the TTL is constant, so insertion order is expiry order).
    expiry: VecDeque<(Instant, Arc<str>)>,
    ttl: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Sessions {
            by_token: FxHashMap::default(),
            by_uid: FxHashMap::default(),
            cached: 0,
            connected: 0,
            expiry: VecDeque::new(),
            ttl,
            max,
        }
    }

    /// The shared key of a known session, so that other indexes reuse one allocation.
    pub fn key(&self, token: &str) -> Option<Arc<str>> {
        self.by_token.get_key_value(token).map(|(k, _)| k.clone())
    }

    fn entry(&mut self, token: &Arc<str>, uid: Uid) -> &mut Session {
        if !self.by_token.contains_key(token) {
            self.by_uid.entry(uid).or_default().insert(token.clone());
            self.by_token.insert(token.clone(), Session { uid, sockets: 0, cached: None });
        }
        self.by_token.get_mut(token).expect("inserted above")
    }

    /// Drupal's answer for `token`, if cached and fresh.
    pub fn cached(&mut self, token: &str) -> Option<Arc<AuthRecord>> {
        self.expire();
        let now = Instant::now();
        self.by_token.get(token)?.cached.as_ref().filter(|c| c.expires > now).map(|c| c.record.clone())
    }

    pub fn cache(&mut self, token: Arc<str>, record: Arc<AuthRecord>) {
        let expires = Instant::now() + self.ttl;
        let session = self.entry(&token, record.uid);
        if session.cached.replace(Cached { record, expires }).is_none() {
            self.cached += 1;
        }
        self.expiry.push_back((expires, token));
        self.expire();
    }

    pub fn socket_added(&mut self, member: &Member) {
        let session = self.entry(&member.token, member.uid);
        session.sockets += 1;
        if session.sockets == 1 {
            self.connected += 1;
        }
    }

    pub fn socket_removed(&mut self, member: &Member) {
        let Some(session) = self.by_token.get_mut(&member.token) else { return };
        if session.sockets == 0 {
            return;
        }
        session.sockets -= 1;
        if session.sockets == 0 {
            self.connected -= 1;
            self.forget_if_idle(&member.token);
        }
    }

    pub fn has_sockets(&self, token: &str) -> bool {
        self.by_token.get(token).is_some_and(|s| s.sockets > 0)
    }

    /// Drops the cached answer of a session (logout, kick, expiry, eviction).
    pub fn uncache(&mut self, token: &str) {
        if let Some(s) = self.by_token.get_mut(token) {
            if s.cached.take().is_some() {
                self.cached -= 1;
            }
        }
        self.forget_if_idle(token);
    }

    /// Drops the cached answers of every session of `uid` (kick).
    pub fn uncache_user(&mut self, uid: Uid) {
        let tokens: Vec<Arc<str>> =
            self.by_uid.get(&uid).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        for t in tokens {
            self.uncache(&t);
        }
    }

    /// Applies `f` to the cached records of every session of `uid`.
    pub fn edit_user_records(&mut self, uid: Uid, f: impl Fn(&mut AuthRecord)) {
        let Some(tokens) = self.by_uid.get(&uid) else { return };
        for token in tokens {
            if let Some(c) = self.by_token.get_mut(token).and_then(|s| s.cached.as_mut()) {
                f(Arc::make_mut(&mut c.record));
            }
        }
    }

    /// Applies `f` to the cached record of the session of `token`.
    pub fn edit_session_record(&mut self, token: &str, f: impl Fn(&mut AuthRecord)) {
        if let Some(c) = self.by_token.get_mut(token).and_then(|s| s.cached.as_mut()) {
            f(Arc::make_mut(&mut c.record));
        }
    }

    pub fn cached_count(&self) -> usize {
        self.cached
    }

    pub fn connected_count(&self) -> usize {
        self.connected
    }

    fn forget_if_idle(&mut self, token: &str) {
        let Some(s) = self.by_token.get(token) else { return };
        if s.sockets > 0 || s.cached.is_some() {
            return;
        }
        let uid = s.uid;
        self.by_token.remove(token);
        if let Some(set) = self.by_uid.get_mut(&uid) {
            set.remove(token);
            if set.is_empty() {
                self.by_uid.remove(&uid);
            }
        }
    }

    /// Drops answers past their time, and the oldest beyond the size bound.
    pub fn expire(&mut self) {
        let now = Instant::now();
        while let Some((deadline, token)) = self.expiry.front().cloned() {
            if deadline > now && self.cached <= self.max {
                break;
            }
            self.expiry.pop_front();
            let current = self.by_token.get(&token).and_then(|s| s.cached.as_ref()).map(|c| c.expires);
            if current == Some(deadline) {
                self.uncache(&token);
            }
        }
    }
}
