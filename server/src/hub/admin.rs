//! The operations behind Drupal's REST routes (spec 1.2, 1.3), with the original's error
//! strings and its bugs fixed (spec 7): kick and logout really close the sockets (with codes that
//! tell the client not to reconnect) and clear caches, presence and token channels at once;
//! channel removals leave no holes; failed adds create nothing.

use super::state::{ConnId, State};
use super::{Hub, JoinRefused};
use drupal_push_protocol::{CloseCode, Uid};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The counters `health/check` and `/status.json` report.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Distinct auth tokens (Drupal sessions) with authenticated sockets.
    pub authenticated_clients: usize,
    /// Authenticated sockets.
    pub sockets: usize,
    /// Sockets still waiting to authenticate.
    pub pre_auth_sockets: usize,
    pub online_users: usize,
    pub channels: usize,
    pub token_channels: usize,
    /// Auth tokens whose Drupal answer is cached.
    pub cached_auth_tokens: usize,
    /// Per token channel: how many tokens wait to be used and how many sockets joined. Never
    /// the token values (the original dumped them: spec 7.12).
    pub content_tokens: BTreeMap<String, TokenChannelStats>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenChannelStats {
    pub tokens: usize,
    pub sockets: usize,
}

impl Hub {
    /// Closes `ids` with `code` and takes them out of every index without grace periods.
    fn close_forced(st: &mut State, ids: &[ConnId], code: CloseCode) {
        for id in ids {
            if let Some(conn) = st.detach(*id, true) {
                conn.outbox.close(code);
            }
        }
    }

    /// `user/kick/:uid`: closes the user's sockets (4002) and forgets its cached auth.
    pub fn kick_user(&self, uid: Uid) {
        self.with(|st| {
            let ids = st.user_conns(uid);
            Self::close_forced(st, &ids, CloseCode::KICKED);
            let tokens: Vec<_> =
                st.uid_sessions.get(&uid).map(|s| s.iter().cloned().collect()).unwrap_or_default();
            for t in tokens {
                st.uncache(&t);
            }
        });
    }

    /// `user/logout/:authToken`: closes the session's sockets (4003) and forgets its cached auth.
    pub fn logout(&self, token: &str) {
        self.with(|st| {
            let ids: Vec<ConnId> =
                st.sessions.get(token).map(|s| s.conns.iter().copied().collect()).unwrap_or_default();
            Self::close_forced(st, &ids, CloseCode::LOGGED_OUT);
            st.uncache(token);
        });
    }

    /// `user/channel/add/:channel/:uid`.
    pub fn add_user_to_channel(&self, channel: &str, uid: Uid) -> Result<(), &'static str> {
        self.with(|st| {
            let ids = st.user_conns(uid);
            if ids.is_empty() {
                return Err("No active sessions for uid.");
            }
            for id in ids {
                st.join_channel(id, channel);
            }
            st.edit_user_records(uid, |r| r.add_channel(channel));
            Ok(())
        })
    }

    /// `user/channel/remove/:channel/:uid`.
    pub fn remove_user_from_channel(&self, channel: &str, uid: Uid) -> Result<(), &'static str> {
        self.with(|st| {
            if !st.channels.contains_key(channel) {
                return Err("Non-existent channel name.");
            }
            for id in st.user_conns(uid) {
                st.leave_channel(id, channel);
            }
            st.edit_user_records(uid, |r| r.remove_channel(channel));
            Ok(())
        })
    }

    /// `authtoken/channel/add/:channel/:authToken`.
    pub fn add_token_to_channel(&self, channel: &str, token: &str) -> Result<(), &'static str> {
        self.with(|st| {
            let ids: Vec<ConnId> = match st.sessions.get(token) {
                Some(s) if !s.conns.is_empty() => s.conns.iter().copied().collect(),
                _ => return Err("Invalid parameters."),
            };
            for id in ids {
                st.join_channel(id, channel);
            }
            st.edit_session_record(token, |r| r.add_channel(channel));
            Ok(())
        })
    }

    /// `authtoken/channel/remove/:channel/:authToken` (the original answered 500 for unknown
    /// tokens: spec 7.4).
    pub fn remove_token_from_channel(&self, channel: &str, token: &str) -> Result<(), &'static str> {
        self.with(|st| {
            let Some(s) = st.sessions.get(token) else { return Err("Invalid parameters.") };
            if !st.channels.contains_key(channel) {
                return Err("Invalid parameters.");
            }
            let ids: Vec<ConnId> = s.conns.iter().copied().collect();
            for id in ids {
                st.leave_channel(id, channel);
            }
            st.edit_session_record(token, |r| r.remove_channel(channel));
            Ok(())
        })
    }

    /// `channel/add/:channel`: an empty channel that stays until removed.
    pub fn add_channel(&self, channel: &str) -> Result<(), String> {
        self.with(|st| {
            if st.channels.contains_key(channel) {
                return Err(format!("Channel name '{channel}' already exists."));
            }
            st.channels.insert(std::sync::Arc::from(channel), super::state::Channel::new(true));
            Ok(())
        })
    }

    /// `channel/remove/:channel`: the channel and all memberships. Cached auth records still
    /// list it, so Drupal's own channel list decides on the next authentication.
    pub fn remove_channel(&self, channel: &str) -> Result<(), &'static str> {
        self.with(|st| {
            let Some(ch) = st.channels.remove(channel) else { return Err("Non-existent channel name.") };
            for id in ch.member_ids() {
                if let Some(auth) = st.conns.get_mut(id).and_then(|c| c.auth.as_mut()) {
                    auth.channels.retain(|c| &**c != channel);
                }
            }
            Ok(())
        })
    }

    /// `channel/check/:channel`.
    pub fn channel_exists(&self, channel: &str) -> bool {
        self.with(|st| st.channels.contains_key(channel))
    }

    /// `user/presence-list/:uid/:uidList`.
    pub fn set_presence_list(&self, uid: Uid, watchers: Vec<Uid>) {
        self.with(|st| st.set_presence_list(uid, watchers));
    }

    /// `content/token`: registers a token Drupal handed to a page.
    pub fn set_content_token(&self, channel: &str, token: &str, record: Map<String, Value>) {
        self.with(|st| {
            st.expire_tokens();
            st.set_content_token(channel, token, record);
        });
    }

    /// `content/token/users`.
    pub fn content_token_users(&self, channel: &str) -> (Vec<Uid>, Vec<String>) {
        self.with(|st| st.token_channel_users(channel))
    }

    pub fn stats(&self) -> Stats {
        self.with(|st| {
            st.expire_tokens();
            super::expire_cache(st, self.settings());
            Stats {
                authenticated_clients: st.sessions.values().filter(|s| !s.conns.is_empty()).count(),
                sockets: st.authenticated,
                pre_auth_sockets: st.conns.len() - st.authenticated,
                online_users: st.online_users(),
                channels: st.channels.len(),
                token_channels: st.token_channels.len(),
                cached_auth_tokens: st.cached_sessions,
                content_tokens: st
                    .token_channels
                    .iter()
                    .map(|(k, tc)| {
                        let waiting = tc.tokens.values().filter(|t| t.users == 0).count();
                        (k.to_string(), TokenChannelStats { tokens: waiting, sockets: tc.members.len() })
                    })
                    .collect(),
            }
        })
    }
}

impl std::fmt::Display for JoinRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JoinRefused::UnknownToken => "unknown or expired content token for this channel",
            JoinRefused::OtherSession => "this content token belongs to another session",
            JoinRefused::NotAuthenticated => "the socket is not authenticated",
        })
    }
}
