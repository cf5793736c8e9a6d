//! What the Redis engine's scripts answer, decoded into enums (one decoder per script), and
//! the records it stores as strings, each with its one encoder and decoder: pending
//! decisions in `P:due`, a node's content-token joins in `P:nt:<node>`, and member keys of a
//! content-token channel.

use crate::engine::Member;
use drupal_push_protocol::Uid;
use serde_json::{Map, Value};

/// The answer of `departed` and `grace_over`.
#[derive(Debug, PartialEq, Eq)]
pub enum Departure {
    /// Nothing to do: the user is still online elsewhere (or was not).
    Stay,
    /// The user's last socket left; the offline is decided after the grace period.
    Grace { generation: String },
    /// The user went offline: tell `watchers` (JSON), and Drupal from `owner`'s queue.
    Offline { watchers: String, owner: String },
}

impl Departure {
    pub fn decode(reply: Vec<String>) -> Departure {
        let mut parts = reply.into_iter();
        match parts.next().as_deref() {
            Some("grace") => Departure::Grace { generation: parts.next().unwrap_or_default() },
            Some("offline") => Departure::Offline {
                watchers: parts.next().unwrap_or_default(),
                owner: parts.next().unwrap_or_default(),
            },
            _ => Departure::Stay,
        }
    }
}

/// The answer of `join_token`.
#[derive(Debug, PartialEq)]
pub enum JoinOutcome {
    /// No such token in the channel.
    Unknown,
    /// The token is bound to another session.
    OtherSession,
    /// Joined, as the member's first socket: the channel hears of it (the token's record).
    Notice(Map<String, Value>),
    /// Joined (another socket of a member already there, or one returning within its grace).
    Joined,
}

impl JoinOutcome {
    pub fn decode(reply: Vec<String>) -> JoinOutcome {
        match reply.first().map(String::as_str) {
            Some("unknown") => JoinOutcome::Unknown,
            Some("other") => JoinOutcome::OtherSession,
            Some("notice") => JoinOutcome::Notice(
                reply.get(1).and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default(),
            ),
            _ => JoinOutcome::Joined,
        }
    }
}

/// The answer of `leave_token`.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenLeave {
    Nothing,
    /// The member left for good: the channel hears of it now.
    Notify,
    /// The member's last socket left; the notice is decided after the grace period.
    Grace {
        generation: String,
    },
}

impl TokenLeave {
    pub fn decode(reply: Vec<String>) -> TokenLeave {
        let mut parts = reply.into_iter();
        match parts.next().as_deref() {
            Some("notify") => TokenLeave::Notify,
            Some("grace") => TokenLeave::Grace { generation: parts.next().unwrap_or_default() },
            _ => TokenLeave::Nothing,
        }
    }
}

/// A pending decision in `P:due`: `u \t uid \t gen` or `t \t ch \t member \t uid \t gen`.
/// The scripts that schedule one get [`Due::offline_head`] or [`Due::token_leave_head`] and add
/// `\t` and the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// A user's offline, after the grace period of its last departure.
    Offline { uid: Uid, generation: String },
    /// A content-token leave notice, after the grace period of a member's last socket.
    TokenLeave { channel: String, member: String, uid: Uid, generation: String },
}

impl Due {
    /// The entry without its generation: what a script completes.
    pub fn offline_head(uid: Uid) -> String {
        format!("u\t{}", uid.0)
    }

    pub fn token_leave_head(channel: &str, member: &str, uid: Uid) -> String {
        format!("t\t{channel}\t{member}\t{}", uid.0)
    }

    pub fn encode(&self) -> String {
        match self {
            Due::Offline { uid, generation } => format!("{}\t{generation}", Due::offline_head(*uid)),
            Due::TokenLeave { channel, member, uid, generation } => {
                format!("{}\t{generation}", Due::token_leave_head(channel, member, *uid))
            }
        }
    }

    pub fn decode(entry: &str) -> Option<Due> {
        let parts: Vec<&str> = entry.split('\t').collect();
        match parts.as_slice() {
            ["u", uid, generation] => {
                Some(Due::Offline { uid: Uid::parse(uid)?, generation: (*generation).to_owned() })
            }
            ["t", channel, member, uid, generation] => Some(Due::TokenLeave {
                channel: (*channel).to_owned(),
                member: (*member).to_owned(),
                uid: Uid::parse(uid).unwrap_or(Uid::ANONYMOUS),
                generation: (*generation).to_owned(),
            }),
            _ => None,
        }
    }
}

/// A field of `P:nt:<node>`, `ch \t token \t member \t uid` (its value: the sockets there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenJoin {
    pub channel: String,
    pub token: String,
    /// The member key ([`member_key`]).
    pub member: String,
    pub uid: Uid,
}

impl TokenJoin {
    pub fn encode(&self) -> String {
        format!("{}\t{}\t{}\t{}", self.channel, self.token, self.member, self.uid.0)
    }

    pub fn decode(field: &str) -> Option<TokenJoin> {
        let parts: Vec<&str> = field.split('\t').collect();
        let [channel, token, member, uid] = parts.as_slice() else { return None };
        Some(TokenJoin {
            channel: (*channel).to_owned(),
            token: (*token).to_owned(),
            member: (*member).to_owned(),
            uid: Uid::parse(uid).unwrap_or(Uid::ANONYMOUS),
        })
    }
}

/// The key of a member in a content-token channel: its user, or its session when anonymous.
pub fn member_key(member: &Member) -> String {
    if member.uid.is_anonymous() { format!("s:{}", member.token) } else { format!("u:{}", member.uid) }
}

/// Who a member key names.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberKey<'a> {
    User(Uid),
    Session(&'a str),
}

pub fn parse_member_key(key: &str) -> Option<MemberKey<'_>> {
    if let Some(uid) = key.strip_prefix("u:") {
        Uid::parse(uid).map(MemberKey::User)
    } else {
        key.strip_prefix("s:").map(MemberKey::Session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn reply(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn departures_decode() {
        assert_eq!(Departure::decode(reply(&["stay"])), Departure::Stay);
        assert_eq!(Departure::decode(reply(&[])), Departure::Stay);
        assert_eq!(Departure::decode(reply(&["grace", "4"])), Departure::Grace { generation: "4".into() });
        assert_eq!(
            Departure::decode(reply(&["offline", "[1,2]", "n1"])),
            Departure::Offline { watchers: "[1,2]".into(), owner: "n1".into() }
        );
    }

    #[test]
    fn joins_decode() {
        assert_eq!(JoinOutcome::decode(reply(&["unknown"])), JoinOutcome::Unknown);
        assert_eq!(JoinOutcome::decode(reply(&["other"])), JoinOutcome::OtherSession);
        assert_eq!(JoinOutcome::decode(reply(&["ok"])), JoinOutcome::Joined);
        let JoinOutcome::Notice(record) = JoinOutcome::decode(reply(&["notice", r#"{"a":1}"#])) else {
            panic!("not a notice")
        };
        assert_eq!(record.get("a"), Some(&Value::from(1)));
        assert_eq!(JoinOutcome::decode(reply(&["notice", "junk"])), JoinOutcome::Notice(Map::new()));
    }

    #[test]
    fn token_leaves_decode() {
        assert_eq!(TokenLeave::decode(reply(&["nothing"])), TokenLeave::Nothing);
        assert_eq!(TokenLeave::decode(reply(&["notify"])), TokenLeave::Notify);
        assert_eq!(TokenLeave::decode(reply(&["grace", "9"])), TokenLeave::Grace { generation: "9".into() });
    }

    #[test]
    fn pending_decisions_round_trip_in_the_stored_format() {
        let offline = Due::Offline { uid: Uid(7), generation: "3".into() };
        assert_eq!(offline.encode(), "u\t7\t3");
        assert_eq!(Due::decode("u\t7\t3"), Some(offline));
        let leave = Due::TokenLeave {
            channel: "ch".into(),
            member: "s:tok".into(),
            uid: Uid::ANONYMOUS,
            generation: "12".into(),
        };
        assert_eq!(leave.encode(), "t\tch\ts:tok\t0\t12");
        assert_eq!(Due::decode(&leave.encode()), Some(leave));
        assert_eq!(format!("{}\t5", Due::offline_head(Uid(2))), "u\t2\t5");
        assert_eq!(Due::decode("u\tx\t1"), None);
        assert_eq!(Due::decode("t\tch\tm\t1"), None);
        assert_eq!(Due::decode("junk"), None);
    }

    #[test]
    fn token_joins_round_trip_in_the_stored_format() {
        let join = TokenJoin { channel: "ch".into(), token: "tk".into(), member: "u:5".into(), uid: Uid(5) };
        assert_eq!(join.encode(), "ch\ttk\tu:5\t5");
        assert_eq!(TokenJoin::decode("ch\ttk\tu:5\t5"), Some(join));
        assert_eq!(TokenJoin::decode("ch\ttk\tu:5"), None);
    }

    #[test]
    fn member_keys_round_trip() {
        let user = Member { uid: Uid(5), token: Arc::from("t") };
        let anonymous = Member { uid: Uid::ANONYMOUS, token: Arc::from("t1") };
        assert_eq!(member_key(&user), "u:5");
        assert_eq!(member_key(&anonymous), "s:t1");
        assert_eq!(parse_member_key("u:5"), Some(MemberKey::User(Uid(5))));
        assert_eq!(parse_member_key("s:t1"), Some(MemberKey::Session("t1")));
        assert_eq!(parse_member_key("x"), None);
    }
}
