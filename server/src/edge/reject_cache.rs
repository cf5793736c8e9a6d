//! Auth tokens Drupal refused lately (`authRejectCacheSecs`, `authRejectCacheMax`): a socket
//! that sends one again within that time is closed with 4001, as Drupal's answer would close
//! it, without asking Drupal. It stops pages with a stale token (a user logged out in another
//! tab, a cached page) and scripts from costing Drupal a request per attempt.
//!
//! Per node, in memory, even on the Redis engine (whose positive auth cache is shared): a
//! refusal is cheap to learn again (one Drupal call per node per `authRejectCacheSecs`), junk
//! tokens then take no room in Redis and cost no Redis round trip each, and a refusal does not
//! outlive the node that saw it. Bounded: every entry lives the same time, so insertion order is
//! expiry order; past `authRejectCacheMax` the oldest entry goes first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct RejectCache {
    ttl: Duration,
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    until: HashMap<Arc<str>, Instant>,
    /// Every entry of `until`, oldest first.
    order: VecDeque<(Instant, Arc<str>)>,
}

impl RejectCache {
    /// Remembers refusals for `ttl`, `max` at most; off when either is zero.
    pub fn new(ttl: Duration, max: usize) -> RejectCache {
        RejectCache { ttl, max, inner: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether Drupal refused `token` less than the cache time ago.
    pub fn contains(&self, token: &str, now: Instant) -> bool {
        self.lock().until.get(token).is_some_and(|until| *until > now)
    }

    /// Remembers that Drupal refused `token` at `now`.
    pub fn insert(&self, token: &str, now: Instant) {
        if self.ttl.is_zero() || self.max == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.expire(now);
        if inner.until.contains_key(token) {
            return;
        }
        while inner.until.len() >= self.max {
            inner.pop_oldest();
        }
        let token: Arc<str> = Arc::from(token);
        let until = now + self.ttl;
        inner.until.insert(token.clone(), until);
        inner.order.push_back((until, token));
    }

    /// Tokens remembered now (expired ones included until the next insert).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(until, _)| *until <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((_, token)) = self.order.pop_front() {
            self.until.remove(&token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_for_the_ttl_and_at_most_max() {
        let c = RejectCache::new(Duration::from_secs(30), 3);
        let t = Instant::now();
        c.insert("a", t);
        assert!(c.contains("a", t + Duration::from_secs(29)));
        assert!(!c.contains("a", t + Duration::from_secs(30)), "expired");
        assert!(!c.contains("b", t));
        for (i, token) in ["b", "c", "d"].iter().enumerate() {
            c.insert(token, t + Duration::from_secs(i as u64 + 1));
        }
        assert_eq!(c.len(), 3);
        assert!(!c.contains("a", t + Duration::from_secs(3)), "the oldest went first");
        assert!(c.contains("b", t + Duration::from_secs(3)) && c.contains("d", t + Duration::from_secs(3)));
        c.insert("e", t + Duration::from_secs(40));
        assert_eq!(c.len(), 1, "expired entries are dropped on insert");
    }

    #[test]
    fn zero_turns_it_off() {
        let t = Instant::now();
        for c in [RejectCache::new(Duration::ZERO, 10), RejectCache::new(Duration::from_secs(1), 0)] {
            c.insert("a", t);
            assert!(!c.contains("a", t));
        }
    }
}
