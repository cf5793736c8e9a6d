//! Presence: which users are online, who may see it, and the grace period before "offline".
//!
//! A user (uid != 0) is announced online when its first socket authenticates, unless it is
//! inside the grace period of its last disconnect (a reload or a reconnect): then nothing is
//! announced at all. Announcing means a `presenceNotification` to the sockets of every user in
//! its watcher list (`presenceUids`) and `userOnline`/`userOffline` to Drupal (spec 3.3, 3.4).
//! Kick and logout skip the grace period. This part only decides; the engine carries out.

use drupal_push_protocol::Uid;
use drupal_push_protocol::drupal::PresenceEvent;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// A decided transition: tell the watchers and Drupal.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Announce {
    pub uid: Uid,
    pub event: PresenceEvent,
    pub watchers: Arc<[Uid]>,
}

/// What a departure leads to.
#[derive(Debug, PartialEq)]
pub(super) enum Left {
    /// Other sockets of the user remain.
    Stays,
    /// The last socket left: start the grace timer with this id.
    Grace(u64),
    /// The last socket left without grace (kick, logout).
    Offline(Option<Announce>),
}

#[derive(Default)]
struct User {
    sockets: u32,
    watchers: Arc<[Uid]>,
    /// Announced online and not yet offline.
    online: bool,
    /// Id of the running grace timer, if any.
    offline_timer: Option<u64>,
}

#[derive(Default)]
pub(super) struct Presence {
    users: FxHashMap<Uid, User>,
    online: usize,
    next_timer: u64,
    /// Watcher -> the online users whose presence list names it (what a reconnecting page
    /// needs to see to redraw its picture).
    watching: FxHashMap<Uid, FxHashSet<Uid>>,
}

impl Presence {
    /// A socket of `uid` authenticated, with `watchers` as Drupal's current presence list.
    pub fn arrived(&mut self, uid: Uid, watchers: Vec<Uid>) -> Option<Announce> {
        let user = self.users.entry(uid).or_default();
        user.sockets += 1;
        user.offline_timer = None;
        let (was_online, old) = (user.online, std::mem::replace(&mut user.watchers, watchers.into()));
        user.online = true;
        let new = user.watchers.clone();
        if was_online {
            self.reindex(uid, &old, &new);
            return None;
        }
        self.online += 1;
        self.reindex(uid, &[], &new);
        Some(Announce { uid, event: PresenceEvent::Online, watchers: new })
    }

    /// Keeps `watching` in step when the online user `uid`'s watchers change from `old` to `new`.
    fn reindex(&mut self, uid: Uid, old: &[Uid], new: &[Uid]) {
        for w in old.iter().filter(|w| !new.contains(w)) {
            if let Some(set) = self.watching.get_mut(w) {
                set.remove(&uid);
                if set.is_empty() {
                    self.watching.remove(w);
                }
            }
        }
        for w in new {
            self.watching.entry(*w).or_default().insert(uid);
        }
    }

    /// A socket of `uid` went away.
    pub fn departed(&mut self, uid: Uid, forced: bool) -> Left {
        let Some(user) = self.users.get_mut(&uid) else { return Left::Stays };
        user.sockets = user.sockets.saturating_sub(1);
        if user.sockets > 0 {
            return Left::Stays;
        }
        if forced {
            return Left::Offline(self.go_offline(uid));
        }
        self.next_timer += 1;
        user.offline_timer = Some(self.next_timer);
        Left::Grace(self.next_timer)
    }

    /// The grace timer `timer` of `uid` ran out.
    pub fn grace_over(&mut self, uid: Uid, timer: u64) -> Option<Announce> {
        let due = self.users.get(&uid).is_some_and(|u| u.offline_timer == Some(timer) && u.sockets == 0);
        if due { self.go_offline(uid) } else { None }
    }

    fn go_offline(&mut self, uid: Uid) -> Option<Announce> {
        let user = self.users.remove(&uid)?;
        if !user.online {
            return None;
        }
        self.online -= 1;
        self.reindex(uid, &user.watchers, &[]);
        Some(Announce { uid, event: PresenceEvent::Offline, watchers: user.watchers })
    }

    /// Replaces who may see `uid`'s presence (`user/presence-list`).
    pub fn set_watchers(&mut self, uid: Uid, watchers: Vec<Uid>) {
        let Some(user) = self.users.get_mut(&uid) else { return };
        let old = std::mem::replace(&mut user.watchers, watchers.into());
        if user.online {
            let new = user.watchers.clone();
            self.reindex(uid, &old, &new);
        }
    }

    /// The online users whose presence `watcher` may see, in uid order.
    pub fn watched_online(&self, watcher: Uid) -> Vec<Uid> {
        let mut uids: Vec<Uid> =
            self.watching.get(&watcher).map(|s| s.iter().copied().collect()).unwrap_or_default();
        uids.sort_unstable();
        uids
    }

    /// Whether `uid` has a socket (grace periods do not count).
    pub fn has_sockets(&self, uid: Uid) -> bool {
        self.users.get(&uid).is_some_and(|u| u.sockets > 0)
    }

    pub fn online_count(&self) -> usize {
        self.online
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_once_offline_after_grace_unless_back() {
        let mut p = Presence::default();
        let a = p.arrived(Uid(5), vec![Uid(7)]).unwrap();
        assert_eq!(a.event, PresenceEvent::Online);
        assert_eq!(&*a.watchers, &[Uid(7)]);
        assert_eq!(p.arrived(Uid(5), vec![Uid(7)]), None, "second socket");
        assert_eq!(p.departed(Uid(5), false), Left::Stays);
        let Left::Grace(t1) = p.departed(Uid(5), false) else { panic!("grace") };
        assert_eq!(p.arrived(Uid(5), vec![Uid(7)]), None, "back inside the grace period");
        assert_eq!(p.grace_over(Uid(5), t1), None, "stale timer");
        let Left::Grace(t2) = p.departed(Uid(5), false) else { panic!("grace") };
        assert_eq!(p.online_count(), 1);
        let off = p.grace_over(Uid(5), t2).unwrap();
        assert_eq!(off.event, PresenceEvent::Offline);
        assert_eq!(p.online_count(), 0);
        assert!(!p.has_sockets(Uid(5)));
    }

    #[test]
    fn watchers_see_who_is_online_for_them() {
        let mut p = Presence::default();
        p.arrived(Uid(5), vec![Uid(7), Uid(8)]);
        p.arrived(Uid(6), vec![Uid(7)]);
        assert_eq!(p.watched_online(Uid(7)), vec![Uid(5), Uid(6)]);
        p.set_watchers(Uid(5), vec![Uid(8)]);
        assert_eq!(p.watched_online(Uid(7)), vec![Uid(6)]);
        p.departed(Uid(6), true);
        assert!(p.watched_online(Uid(7)).is_empty());
        assert_eq!(p.watched_online(Uid(8)), vec![Uid(5)]);
    }

    #[test]
    fn forced_departure_is_offline_at_once() {
        let mut p = Presence::default();
        p.arrived(Uid(5), vec![]);
        let Left::Offline(Some(a)) = p.departed(Uid(5), true) else { panic!("offline") };
        assert_eq!(a.event, PresenceEvent::Offline);
        assert_eq!(p.departed(Uid(5), true), Left::Stays, "unknown user");
    }
}
