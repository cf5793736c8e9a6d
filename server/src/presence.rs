//! Presence: which users are online, who may see it, and the 2 s grace before "offline".
//!
//! A user (uid != 0) is announced online when its first socket authenticates, unless it is
//! inside the grace period of its last disconnect (a reload or a reconnect): then nothing is
//! announced at all. Announcing means a `presenceNotification` to every socket of every user in
//! its watcher list (`presenceUids`) and `userOnline`/`userOffline` to Drupal (spec 3.3, 3.4).
//! Kick and logout skip the grace period.

use crate::hub::Effect;
use crate::hub::state::{ConnId, State};
use crate::outbox::Outbox;
use axum::extract::ws::Utf8Bytes;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_protocol::drupal::{self, PresenceEvent};
use drupal_push_protocol::{Uid, frames};
use std::sync::Arc;

impl State {
    /// A socket of `uid` authenticated with `watchers` as Drupal's current presence list.
    pub fn user_conn_added(&mut self, uid: Uid, id: ConnId, outbox: Arc<Outbox>, watchers: &[Uid]) {
        let user = self.users.entry(uid).or_default();
        user.conns.insert(id, outbox);
        user.watchers = watchers.to_vec();
        user.offline_timer = None;
        if !user.online {
            user.online = true;
            self.announce(uid, PresenceEvent::Online);
        }
    }

    /// A socket of `uid` went away; starts the grace timer when it was the last one.
    pub fn user_conn_gone(&mut self, uid: Uid, id: ConnId, forced: bool) {
        let Some(user) = self.users.get_mut(&uid) else { return };
        user.conns.remove(&id);
        if !user.conns.is_empty() {
            return;
        }
        if forced {
            self.go_offline(uid);
        } else {
            let timer_id = self.new_timer_id();
            if let Some(user) = self.users.get_mut(&uid) {
                user.offline_timer = Some(timer_id);
            }
            self.effects.push(Effect::OfflineTimer { uid, timer_id });
        }
    }

    /// The grace timer `timer_id` of `uid` ran out.
    pub fn offline_timer_fired(&mut self, uid: Uid, timer_id: u64) {
        let due =
            self.users.get(&uid).is_some_and(|u| u.offline_timer == Some(timer_id) && u.conns.is_empty());
        if due {
            self.go_offline(uid);
        }
    }

    fn go_offline(&mut self, uid: Uid) {
        if self.users.get(&uid).is_some_and(|u| u.online) {
            self.announce(uid, PresenceEvent::Offline);
        }
        self.users.remove(&uid);
    }

    /// Tells every socket of every watcher of `uid`, and Drupal.
    fn announce(&mut self, uid: Uid, event: PresenceEvent) {
        let Some(user) = self.users.get(&uid) else { return };
        let frame = Utf8Bytes::from(frames::encode_message(&drupal::presence(uid, event), None));
        for watcher in &user.watchers {
            if let Some(w) = self.users.get(watcher) {
                for outbox in w.conns.values() {
                    outbox.push(frame.clone());
                }
            }
        }
        self.effects.push(Effect::Backend(match event {
            PresenceEvent::Online => BackendMessage::UserOnline { uid },
            PresenceEvent::Offline => BackendMessage::UserOffline { uid },
        }));
    }

    /// `user/presence-list/:uid/:uidList`: replaces who may see `uid`'s presence, for its live
    /// sockets and its cached auth records (the original's version never worked: spec 7.1).
    pub fn set_presence_list(&mut self, uid: Uid, watchers: Vec<Uid>) {
        if let Some(user) = self.users.get_mut(&uid) {
            user.watchers = watchers.clone();
        }
        self.edit_user_records(uid, |r| r.presence_uids = watchers.clone());
    }

    pub fn online_users(&self) -> usize {
        self.users.values().filter(|u| u.online).count()
    }
}
