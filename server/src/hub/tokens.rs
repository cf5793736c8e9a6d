//! Content-token channels (spec 1.3 items 8-10, 3.1, 3.4): Drupal registers a secret token for
//! a channel (`content/token`), the page joins with it, Drupal then publishes to everybody who
//! joined (`content/token/message`).
//!
//! Fixes over the original (spec 7.12, 7.13, 7.15): a token is bound to the auth token (the
//! Drupal session) that first used it, and stays valid for that session, so a reconnecting page
//! rejoins; unused tokens expire; members are identified by uid, or by session for anonymous
//! users (who all share uid 0); join and leave notices are sent once per member, not per
//! socket, and a reconnect inside the grace period sends neither.

use super::Effect;
use super::state::{ConnId, State};
use crate::outbox::Outbox;
use axum::extract::ws::Utf8Bytes;
use drupal_push_protocol::backend::is_truthy;
use drupal_push_protocol::{Uid, drupal, frames};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::time::Instant;

/// Who a member is, for join/leave notices: a user, or an anonymous session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MemberKey {
    User(Uid),
    Session(Arc<str>),
}

pub(crate) struct TokenEntry {
    pub record: Arc<Map<String, Value>>,
    pub notify_on_disconnect: bool,
    pub bound_to: Option<Arc<str>>,
    /// Sockets currently joined with this token.
    pub users: u32,
    pub idle_since: Instant,
}

pub(crate) struct Member {
    pub key: MemberKey,
    pub uid: Uid,
    pub token: Arc<str>,
    pub outbox: Arc<Outbox>,
}

#[derive(Default)]
pub(crate) struct TokenChannel {
    pub tokens: FxHashMap<Arc<str>, TokenEntry>,
    pub members: FxHashMap<ConnId, Member>,
    pub member_counts: FxHashMap<MemberKey, u32>,
    pub pending_leave: FxHashMap<MemberKey, u64>,
}

/// A `clientJoinedTokenChannel` message to hand to the channel's members.
pub(crate) struct JoinNotice {
    pub frame: Utf8Bytes,
    pub recipients: Vec<Arc<Outbox>>,
}

impl JoinNotice {
    pub fn deliver(self) {
        for r in self.recipients {
            r.push(self.frame.clone());
        }
    }
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    UnknownToken,
    OtherSession,
    NotAuthenticated,
}

impl State {
    /// `content/token`: stores Drupal's record under its channel and token.
    pub fn set_content_token(&mut self, channel: &str, token: &str, record: Map<String, Value>) {
        let ttl = self.token_ttl;
        let now = Instant::now();
        let channel: Arc<str> = self
            .token_channels
            .get_key_value(channel)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| Arc::from(channel));
        let token: Arc<str> = Arc::from(token);
        let notify = record.get("notifyOnDisconnect").is_some_and(is_truthy);
        let tc = self.token_channels.entry(channel.clone()).or_default();
        let bound_to = tc.tokens.get(&token).and_then(|t| t.bound_to.clone());
        let users = tc.tokens.get(&token).map_or(0, |t| t.users);
        tc.tokens.insert(
            token.clone(),
            TokenEntry {
                record: Arc::new(record),
                notify_on_disconnect: notify,
                bound_to,
                users,
                idle_since: now,
            },
        );
        self.token_queue.push_back((now + ttl, channel, token));
    }

    /// Joins an authenticated connection with `token`. When the member (user or anonymous
    /// session) is new to the channel, returns the `clientJoinedTokenChannel` notice for all
    /// members, the joiner included.
    pub fn join_token_channel(
        &mut self,
        id: ConnId,
        channel: &str,
        token: &str,
    ) -> Result<Option<JoinNotice>, JoinRefused> {
        let conn = self.conns.get(&id).ok_or(JoinRefused::NotAuthenticated)?;
        let auth = conn.auth.as_ref().ok_or(JoinRefused::NotAuthenticated)?;
        let (session, uid, outbox) = (auth.token.clone(), auth.uid, conn.outbox.clone());
        if auth.token_channels.iter().any(|c| &**c == channel) {
            return Ok(None);
        }
        let (channel_key, tc) =
            keyed_entry(&mut self.token_channels, channel).ok_or(JoinRefused::UnknownToken)?;
        let (token_key, entry) = keyed_entry(&mut tc.tokens, token).ok_or(JoinRefused::UnknownToken)?;
        match &entry.bound_to {
            Some(owner) if **owner != *session => return Err(JoinRefused::OtherSession),
            Some(_) => {}
            None => entry.bound_to = Some(session.clone()),
        }
        entry.users += 1;
        let record = entry.record.clone();
        let key = if uid.is_anonymous() { MemberKey::Session(session) } else { MemberKey::User(uid) };
        tc.members.insert(id, Member { key: key.clone(), uid, token: token_key, outbox });
        let count = tc.member_counts.entry(key.clone()).or_insert(0);
        *count += 1;
        let first = *count == 1;
        let returning = tc.pending_leave.remove(&key).is_some();
        let notice = (first && !returning).then(|| JoinNotice {
            frame: Utf8Bytes::from(frames::encode_message(
                &drupal::client_joined_token_channel(&record),
                Some(channel),
            )),
            recipients: tc.members.values().map(|m| m.outbox.clone()).collect(),
        });
        if let Some(auth) = self.conns.get_mut(&id).and_then(|c| c.auth.as_mut()) {
            auth.token_channels.push(channel_key);
        }
        Ok(notice)
    }

    /// Takes a connection out of a token channel; schedules (or, when `forced`, sends) the
    /// disconnect notice when it was the member's last socket and its token asked for notices.
    pub fn leave_token_channel(&mut self, id: ConnId, channel: &str, forced: bool) {
        let ttl = self.token_ttl;
        let Some((channel_key, tc)) = keyed_entry(&mut self.token_channels, channel) else { return };
        let Some(member) = tc.members.remove(&id) else { return };
        let mut notify = false;
        if let Some(entry) = tc.tokens.get_mut(&member.token) {
            entry.users -= 1;
            notify = entry.notify_on_disconnect;
            if entry.users == 0 {
                entry.idle_since = Instant::now();
                self.token_queue.push_back((
                    entry.idle_since + ttl,
                    channel_key.clone(),
                    member.token.clone(),
                ));
            }
        }
        let last = match tc.member_counts.get_mut(&member.key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                tc.member_counts.remove(&member.key);
                true
            }
        };
        if last && notify {
            if forced {
                send_leave_notice(tc, channel, member.uid);
            } else {
                self.next_timer_id += 1;
                let timer_id = self.next_timer_id;
                tc.pending_leave.insert(member.key.clone(), timer_id);
                self.effects.push(Effect::TokenLeaveTimer {
                    channel: channel_key,
                    key: member.key,
                    uid: member.uid,
                    timer_id,
                });
            }
        }
        self.drop_token_channel_if_unused(channel);
    }

    /// A member's leave grace ran out: notify the others unless it came back.
    pub fn token_leave_timer_fired(&mut self, channel: &str, key: &MemberKey, uid: Uid, timer_id: u64) {
        let Some(tc) = self.token_channels.get_mut(channel) else { return };
        if tc.pending_leave.get(key) != Some(&timer_id) {
            return;
        }
        tc.pending_leave.remove(key);
        if !tc.member_counts.contains_key(key) {
            send_leave_notice(tc, channel, uid);
        }
        self.drop_token_channel_if_unused(channel);
    }

    /// `content/token/message`: the body to every member. `None` if the channel is unknown.
    pub fn publish_to_token_channel(&self, channel: &str, frame: &Utf8Bytes) -> Option<usize> {
        let tc = self.token_channels.get(channel)?;
        Some(
            tc.members
                .values()
                .filter(|m| m.outbox.push(frame.clone()) == crate::outbox::Pushed::Queued)
                .count(),
        )
    }

    /// `content/token/users`: distinct uids of members, and the auth tokens of anonymous ones.
    pub fn token_channel_users(&self, channel: &str) -> (Vec<Uid>, Vec<String>) {
        let Some(tc) = self.token_channels.get(channel) else { return (Vec::new(), Vec::new()) };
        let mut uids = Vec::new();
        let mut tokens = Vec::new();
        for key in tc.member_counts.keys() {
            match key {
                MemberKey::User(u) => uids.push(*u),
                MemberKey::Session(t) => tokens.push(t.to_string()),
            }
        }
        uids.sort_unstable();
        tokens.sort_unstable();
        (uids, tokens)
    }

    /// Removes tokens whose time ran out; called on every token operation (amortised O(1)).
    pub fn expire_tokens(&mut self) {
        let ttl = self.token_ttl;
        let now = Instant::now();
        while let Some((deadline, _, _)) = self.token_queue.front() {
            if *deadline > now {
                break;
            }
            let (_, channel, token) = self.token_queue.pop_front().expect("front exists");
            let Some(tc) = self.token_channels.get_mut(&channel) else { continue };
            let Some(entry) = tc.tokens.get(&token) else { continue };
            if entry.users > 0 {
                continue;
            }
            let due = entry.idle_since + ttl;
            if due > now {
                self.token_queue.push_back((due, channel, token));
                continue;
            }
            tc.tokens.remove(&token);
            self.drop_token_channel_if_unused(&channel);
        }
    }

    fn drop_token_channel_if_unused(&mut self, channel: &str) {
        if let Some(tc) = self.token_channels.get(channel) {
            if tc.tokens.is_empty() && tc.members.is_empty() && tc.pending_leave.is_empty() {
                self.token_channels.remove(channel);
            }
        }
    }
}

/// The shared key and the value stored under `key`, so new references reuse the map's `Arc`.
fn keyed_entry<'a, V>(map: &'a mut FxHashMap<Arc<str>, V>, key: &str) -> Option<(Arc<str>, &'a mut V)> {
    let shared = map.get_key_value(key)?.0.clone();
    let value = map.get_mut(key)?;
    Some((shared, value))
}

fn send_leave_notice(tc: &TokenChannel, channel: &str, uid: Uid) {
    let frame = Utf8Bytes::from(frames::encode_message(
        &drupal::content_channel_disconnect(channel, uid),
        Some(channel),
    ));
    for m in tc.members.values() {
        m.outbox.push(frame.clone());
    }
}
