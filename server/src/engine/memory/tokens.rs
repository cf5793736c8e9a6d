//! Content-token channels (spec 1.3 items 8-10, 3.1, 3.4): Drupal registers a secret token for
//! a channel (`content/token`), a page joins with it, Drupal then publishes to everybody who
//! joined (`content/token/message`). This part keeps the tokens and who is a member; which
//! local socket is in which token channel is the hub's.
//!
//! Fixes over the original (spec 7.12, 7.13, 7.15): a token is bound to the auth token (the
//! Drupal session) that first used it, and stays valid for that session, so a reconnecting page
//! rejoins; unused tokens expire; members are identified by uid, or by session for anonymous
//! users (who all share uid 0); join and leave notices are decided once per member, not per
//! socket, and a reconnect inside the grace period sends neither.

use crate::engine::{Member, TokenChannelDetail, TokenChannelUsers};
use crate::error::EngineError;
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::is_truthy;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Who a member is, for join/leave notices: a user, or an anonymous session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum MemberKey {
    User(Uid),
    Session(Arc<str>),
}

impl MemberKey {
    fn of(member: &Member) -> MemberKey {
        if member.uid.is_anonymous() {
            MemberKey::Session(member.token.clone())
        } else {
            MemberKey::User(member.uid)
        }
    }
}

struct TokenEntry {
    record: Arc<Map<String, Value>>,
    notify_on_disconnect: bool,
    bound_to: Option<Arc<str>>,
    /// Sockets currently joined with this token.
    users: u32,
    idle_since: Instant,
}

#[derive(Default)]
struct TokenChannel {
    tokens: FxHashMap<Arc<str>, TokenEntry>,
    member_counts: FxHashMap<MemberKey, u32>,
    pending_leave: FxHashMap<MemberKey, u64>,
    /// Sockets joined, and tokens waiting for their first socket.
    sockets: usize,
    waiting: usize,
}

/// What a socket leaving a token channel leads to.
#[derive(Debug, PartialEq)]
pub(super) enum Leave {
    Nothing,
    /// Tell the members now that `uid` left.
    Notify(Uid),
    /// Tell them when the grace timer `timer` fires, unless the member came back.
    Grace {
        key: MemberKey,
        uid: Uid,
        timer: u64,
    },
}

pub(super) struct ContentTokens {
    channels: FxHashMap<Arc<str>, TokenChannel>,
    /// Expiry order: (deadline, channel, token).
    expiry: VecDeque<(Instant, Arc<str>, Arc<str>)>,
    ttl: Duration,
    next_timer: u64,
    waiting: usize,
}

impl ContentTokens {
    pub fn new(ttl: Duration) -> Self {
        ContentTokens {
            channels: FxHashMap::default(),
            expiry: VecDeque::new(),
            ttl,
            next_timer: 0,
            waiting: 0,
        }
    }

    /// `content/token`: stores Drupal's record under its channel and token.
    pub fn set(&mut self, channel: &str, token: &str, record: Map<String, Value>) {
        self.expire();
        let now = Instant::now();
        let channel = shared_key(&self.channels, channel);
        let token: Arc<str> = Arc::from(token);
        let notify = record.get("notifyOnDisconnect").is_some_and(is_truthy);
        let tc = self.channels.entry(channel.clone()).or_default();
        let (bound_to, users) = match tc.tokens.get(&token) {
            Some(t) => (t.bound_to.clone(), t.users),
            None => {
                tc.waiting += 1;
                self.waiting += 1;
                (None, 0)
            }
        };
        let entry = TokenEntry {
            record: Arc::new(record),
            notify_on_disconnect: notify,
            bound_to,
            users,
            idle_since: now,
        };
        tc.tokens.insert(token.clone(), entry);
        self.expiry.push_back((now + self.ttl, channel, token));
    }

    /// A socket of `member` joins with `token`. When the member is new to the channel (and not
    /// back inside a leave grace period), returns the record for the `clientJoinedTokenChannel`
    /// notice.
    pub fn join(
        &mut self,
        channel: &str,
        token: &str,
        member: &Member,
    ) -> Result<Option<Arc<Map<String, Value>>>, EngineError> {
        self.expire();
        let tc = self.channels.get_mut(channel).ok_or(EngineError::UnknownContentToken)?;
        let entry = tc.tokens.get_mut(token).ok_or(EngineError::UnknownContentToken)?;
        match &entry.bound_to {
            Some(owner) if *owner != member.token => return Err(EngineError::OtherSession),
            Some(_) => {}
            None => entry.bound_to = Some(member.token.clone()),
        }
        entry.users += 1;
        if entry.users == 1 {
            tc.waiting -= 1;
            self.waiting -= 1;
        }
        let record = entry.record.clone();
        tc.sockets += 1;
        let key = MemberKey::of(member);
        let returning = tc.pending_leave.remove(&key).is_some();
        let count = tc.member_counts.entry(key).or_insert(0);
        *count += 1;
        Ok((*count == 1 && !returning).then_some(record))
    }

    /// A socket of `member` that joined with `token` leaves.
    pub fn leave(&mut self, channel: &str, token: &str, member: &Member, forced: bool) -> Leave {
        let Some(tc) = self.channels.get_mut(channel) else { return Leave::Nothing };
        let Some(entry) = tc.tokens.get_mut(token) else { return Leave::Nothing };
        if entry.users == 0 {
            return Leave::Nothing;
        }
        entry.users -= 1;
        tc.sockets -= 1;
        let notify = entry.notify_on_disconnect;
        if entry.users == 0 {
            tc.waiting += 1;
            self.waiting += 1;
            entry.idle_since = Instant::now();
            let channel_key = shared_key(&self.channels, channel);
            let token_key = self.channels[channel].tokens.get_key_value(token).map(|(k, _)| k.clone());
            if let Some(token_key) = token_key {
                self.expiry.push_back((Instant::now() + self.ttl, channel_key, token_key));
            }
        }
        let tc = self.channels.get_mut(channel).expect("looked up above");
        let key = MemberKey::of(member);
        let last = match tc.member_counts.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                tc.member_counts.remove(&key);
                true
            }
        };
        let outcome = match (last && notify, forced) {
            (false, _) => Leave::Nothing,
            (true, true) => Leave::Notify(member.uid),
            (true, false) => {
                self.next_timer += 1;
                tc.pending_leave.insert(key.clone(), self.next_timer);
                Leave::Grace { key, uid: member.uid, timer: self.next_timer }
            }
        };
        self.drop_if_unused(channel);
        outcome
    }

    /// A member's leave grace ran out: true when the others must be told.
    pub fn grace_over(&mut self, channel: &str, key: &MemberKey, timer: u64) -> bool {
        let Some(tc) = self.channels.get_mut(channel) else { return false };
        if tc.pending_leave.get(key) != Some(&timer) {
            return false;
        }
        tc.pending_leave.remove(key);
        let notify = !tc.member_counts.contains_key(key);
        self.drop_if_unused(channel);
        notify
    }

    pub fn exists(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// `content/token/users`: distinct uids of members, and the auth tokens of anonymous ones.
    pub fn users(&self, channel: &str) -> TokenChannelUsers {
        let Some(tc) = self.channels.get(channel) else { return TokenChannelUsers::default() };
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
        TokenChannelUsers { uids, auth_tokens: tokens }
    }

    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    pub fn waiting_count(&self) -> usize {
        self.waiting
    }

    /// Per channel: tokens waiting for a socket, sockets joined; at most `limit` channels.
    pub fn details(&mut self, limit: usize) -> Vec<TokenChannelDetail> {
        self.expire();
        self.channels
            .iter()
            .take(limit)
            .map(|(k, tc)| TokenChannelDetail {
                channel: k.to_string(),
                waiting: tc.waiting,
                sockets: tc.sockets,
            })
            .collect()
    }

    /// Removes tokens whose time ran out (amortised O(1) per operation).
    pub fn expire(&mut self) {
        let now = Instant::now();
        while let Some((deadline, _, _)) = self.expiry.front() {
            if *deadline > now {
                break;
            }
            let (_, channel, token) = self.expiry.pop_front().expect("front exists");
            let Some(tc) = self.channels.get_mut(&channel) else { continue };
            let Some(entry) = tc.tokens.get(&token) else { continue };
            if entry.users > 0 || entry.idle_since + self.ttl > now {
                continue;
            }
            tc.tokens.remove(&token);
            tc.waiting -= 1;
            self.waiting -= 1;
            self.drop_if_unused(&channel);
        }
    }

    fn drop_if_unused(&mut self, channel: &str) {
        let unused =
            self.channels.get(channel).is_some_and(|tc| tc.tokens.is_empty() && tc.pending_leave.is_empty());
        if unused {
            self.channels.remove(channel);
        }
    }
}

fn shared_key<V>(map: &FxHashMap<Arc<str>, V>, key: &str) -> Arc<str> {
    map.get_key_value(key).map(|(k, _)| k.clone()).unwrap_or_else(|| Arc::from(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(uid: u64, token: &str) -> Member {
        Member { uid: Uid(uid), token: Arc::from(token) }
    }

    fn record(notify: bool) -> Map<String, Value> {
        serde_json::json!({"channel": "room", "notifyOnDisconnect": notify}).as_object().unwrap().clone()
    }

    #[tokio::test(start_paused = true)]
    async fn join_notice_once_per_member_and_tokens_stay_with_their_session() {
        let mut t = ContentTokens::new(Duration::from_secs(30));
        t.set("room", "t1", record(true));
        assert_eq!(t.waiting_count(), 1);
        assert!(t.join("room", "t1", &member(5, "s5")).unwrap().is_some());
        assert!(t.join("room", "t1", &member(5, "s5")).unwrap().is_none(), "second tab");
        assert_eq!(t.join("room", "t1", &member(6, "s6")), Err(EngineError::OtherSession));
        assert_eq!(t.join("room", "nope", &member(5, "s5")), Err(EngineError::UnknownContentToken));
        assert_eq!(t.waiting_count(), 0);
        assert_eq!(t.users("room").uids, vec![Uid(5)]);
        assert_eq!(t.leave("room", "t1", &member(5, "s5"), false), Leave::Nothing);
        let Leave::Grace { key, timer, .. } = t.leave("room", "t1", &member(5, "s5"), false) else {
            panic!("grace")
        };
        assert!(t.grace_over("room", &key, timer));
        assert_eq!(t.waiting_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unused_tokens_expire_and_anonymous_members_count_by_session() {
        let mut t = ContentTokens::new(Duration::from_secs(30));
        t.set("room", "t1", record(false));
        t.set("room", "t2", record(false));
        t.join("room", "t2", &member(0, "anon")).unwrap();
        assert_eq!(t.users("room").auth_tokens, vec!["anon".to_string()]);
        tokio::time::advance(Duration::from_secs(31)).await;
        t.expire();
        assert_eq!(t.waiting_count(), 0, "t1 expired");
        assert!(t.exists("room"), "t2 is in use");
        assert_eq!(t.leave("room", "t2", &member(0, "anon"), true), Leave::Nothing, "no notices asked");
        tokio::time::advance(Duration::from_secs(31)).await;
        t.expire();
        assert!(!t.exists("room"));
    }
}
