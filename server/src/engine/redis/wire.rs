//! What the Redis engine writes into Redis and its pub/sub channels, and reads back: the
//! publication payload on `P:pub`, commands on `P:ctl`, cached auth records.
//!
//! A publication payload is `origin pid stream-key-json \n offset \n epoch \n message` (the
//! PUBLISH script adds the last three), so the message itself is never re-encoded. A barrier
//! (see `RedisEngine::settle`) is a publication of the empty stream key.

use crate::engine::{AuthRecord, Event, Position, Publication, Stream, Who};
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::AuthAnswer;
use drupal_push_protocol::drupal::PresenceEvent;
use drupal_push_protocol::frames::{BROADCAST_STREAM, TOKEN_STREAM_PREFIX};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// The stream a key names (the inverse of [`Stream::key`]).
pub fn stream_of(key: &str) -> Stream {
    if key == BROADCAST_STREAM {
        Stream::Broadcast
    } else if let Some(c) = key.strip_prefix(TOKEN_STREAM_PREFIX) {
        Stream::Token(Arc::from(c))
    } else {
        Stream::Channel(Arc::from(key))
    }
}

/// The header the PUBLISH script puts before the position: who published, its id there, and
/// the stream (empty for a barrier).
pub fn header(origin: &str, pid: u64, stream_key: &str) -> String {
    format!("{origin} {pid} {}", serde_json::Value::from(stream_key))
}

/// A message read from `P:pub`.
pub enum Incoming {
    Publication { origin: String, pid: u64, publication: Publication },
    Barrier { origin: String, pid: u64 },
}

/// Parses a `P:pub` payload; `None` for anything malformed (logged by the caller).
pub fn parse_publication(payload: &[u8]) -> Option<Incoming> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(4, '\n');
    let (head, offset, epoch, message) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let mut head = head.splitn(3, ' ');
    let (origin, pid) = (head.next()?.to_owned(), head.next()?.parse().ok()?);
    let key: String = serde_json::from_str(head.next()?).ok()?;
    if key.is_empty() {
        return Some(Incoming::Barrier { origin, pid });
    }
    let offset: u64 = offset.parse().ok()?;
    let position = (offset > 0).then(|| Position { offset, epoch: Arc::from(epoch) });
    let message: Arc<RawValue> = Arc::from(RawValue::from_string(message.to_owned()).ok()?);
    Some(Incoming::Publication {
        origin,
        pid,
        publication: Publication { stream: stream_of(&key), message, position },
    })
}

/// An [`Event`] as it travels between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "camelCase")]
enum WireEvent {
    Kick {
        uid: Uid,
    },
    Logout {
        token: String,
    },
    Join {
        user: Option<Uid>,
        session: Option<String>,
        channel: String,
        offset: Option<u64>,
        epoch: Option<String>,
    },
    Leave {
        user: Option<Uid>,
        session: Option<String>,
        channel: String,
    },
    ChannelRemoved {
        channel: String,
    },
    Presence {
        uid: Uid,
        online: bool,
        watchers: Vec<Uid>,
    },
    /// Drupal must hear `message` from the node `to` (the one whose queue holds the user's
    /// earlier notice, so the two stay in order).
    Notify {
        to: String,
        uid: Uid,
        online: bool,
    },
}

/// A command on `P:ctl`, with the node it came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    pub from: String,
    #[serde(flatten)]
    event: WireEvent,
}

/// What a node does with a command.
pub enum Order {
    Apply(Event),
    /// Send this presence notice to Drupal if addressed to this node.
    Notify {
        to: String,
        uid: Uid,
        online: bool,
    },
}

fn who(user: Option<Uid>, session: Option<String>) -> Option<Who> {
    match (user, session) {
        (Some(u), _) => Some(Who::User(u)),
        (None, Some(s)) => Some(Who::Session(Arc::from(s))),
        _ => None,
    }
}

fn split(who: &Who) -> (Option<Uid>, Option<String>) {
    match who {
        Who::User(u) => (Some(*u), None),
        Who::Session(s) => (None, Some(s.to_string())),
    }
}

impl Command {
    pub fn event(from: &str, event: &Event) -> Command {
        let event = match event {
            Event::Kick(uid) => WireEvent::Kick { uid: *uid },
            Event::Logout(token) => WireEvent::Logout { token: token.to_string() },
            Event::JoinChannel { who, channel, position } => {
                let (user, session) = split(who);
                WireEvent::Join {
                    user,
                    session,
                    channel: channel.to_string(),
                    offset: position.as_ref().map(|p| p.offset),
                    epoch: position.as_ref().map(|p| p.epoch.to_string()),
                }
            }
            Event::LeaveChannel { who, channel } => {
                let (user, session) = split(who);
                WireEvent::Leave { user, session, channel: channel.to_string() }
            }
            Event::ChannelRemoved(channel) => WireEvent::ChannelRemoved { channel: channel.to_string() },
            Event::Presence { uid, event, watchers } => WireEvent::Presence {
                uid: *uid,
                online: *event == PresenceEvent::Online,
                watchers: watchers.to_vec(),
            },
        };
        Command { from: from.to_owned(), event }
    }

    pub fn notify(from: &str, to: &str, uid: Uid, online: bool) -> Command {
        Command { from: from.to_owned(), event: WireEvent::Notify { to: to.to_owned(), uid, online } }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(payload: &[u8]) -> Option<Command> {
        serde_json::from_slice(payload).ok()
    }

    pub fn order(self) -> Option<Order> {
        let event = match self.event {
            WireEvent::Kick { uid } => Event::Kick(uid),
            WireEvent::Logout { token } => Event::Logout(Arc::from(token)),
            WireEvent::Join { user, session, channel, offset, epoch } => {
                let position = match (offset, epoch) {
                    (Some(offset), Some(epoch)) => Some(Position { offset, epoch: Arc::from(epoch) }),
                    _ => None,
                };
                Event::JoinChannel { who: who(user, session)?, channel: Arc::from(channel), position }
            }
            WireEvent::Leave { user, session, channel } => {
                Event::LeaveChannel { who: who(user, session)?, channel: Arc::from(channel) }
            }
            WireEvent::ChannelRemoved { channel } => Event::ChannelRemoved(Arc::from(channel)),
            WireEvent::Presence { uid, online, watchers } => Event::Presence {
                uid,
                event: if online { PresenceEvent::Online } else { PresenceEvent::Offline },
                watchers: watchers.into(),
            },
            WireEvent::Notify { to, uid, online } => return Some(Order::Notify { to, uid, online }),
        };
        Some(Order::Apply(event))
    }
}

/// A cached auth record as stored in Redis: the shape of Drupal's answer, read back leniently
/// (the scripts that edit it may write an empty list as `{}`).
pub fn encode_record(record: &AuthRecord) -> String {
    serde_json::json!({
        "uid": record.uid,
        "nodejsValidAuthToken": true,
        "channels": record.channels,
        "presenceUids": record.presence_uids,
    })
    .to_string()
}

pub fn decode_record(text: &str) -> Option<AuthRecord> {
    serde_json::from_str::<AuthAnswer>(text).ok().map(AuthRecord::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publications_round_trip_with_any_stream_key() {
        for key in ["chat", "token:a b|c", "*"] {
            let payload = format!("{}\n7\nep\n{{\"a\":\"x\\ny\"}}", header("n1", 42, key));
            let Some(Incoming::Publication { origin, pid, publication }) =
                parse_publication(payload.as_bytes())
            else {
                panic!("not a publication")
            };
            assert_eq!((origin.as_str(), pid), ("n1", 42));
            assert_eq!(publication.stream.key(), key);
            assert_eq!(publication.position, Some(Position { offset: 7, epoch: Arc::from("ep") }));
            assert_eq!(publication.message.get(), "{\"a\":\"x\\ny\"}");
        }
        let unrecorded = format!("{}\n0\n\n{{}}", header("n1", 1, "chat"));
        let Some(Incoming::Publication { publication, .. }) = parse_publication(unrecorded.as_bytes()) else {
            panic!("not a publication")
        };
        assert_eq!(publication.position, None);
        let barrier = format!("{}\n0\n\n", header("n2", 9, ""));
        assert!(matches!(parse_publication(barrier.as_bytes()), Some(Incoming::Barrier { pid: 9, .. })));
        assert!(parse_publication(b"garbage").is_none());
    }

    #[test]
    fn commands_round_trip() {
        let event = Event::JoinChannel {
            who: Who::Session(Arc::from("tok")),
            channel: Arc::from("c"),
            position: Some(Position { offset: 3, epoch: Arc::from("e") }),
        };
        let text = Command::event("n1", &event).encode();
        let back = Command::decode(text.as_bytes()).unwrap();
        assert_eq!(back.from, "n1");
        let Some(Order::Apply(Event::JoinChannel { who, channel, position })) = back.order() else {
            panic!("not a join")
        };
        assert_eq!(
            (who, &*channel, position.map(|p| p.offset)),
            (Who::Session(Arc::from("tok")), "c", Some(3))
        );
    }

    #[test]
    fn records_survive_lua_editing_an_empty_list_into_an_object() {
        let r = AuthRecord { uid: Uid(5), channels: vec!["a".into()], presence_uids: vec![Uid(7)] };
        assert_eq!(decode_record(&encode_record(&r)), Some(r));
        let edited = r#"{"uid":5,"nodejsValidAuthToken":true,"channels":{},"presenceUids":{}}"#;
        let back = decode_record(edited).unwrap();
        assert!(back.channels.is_empty() && back.presence_uids.is_empty());
    }
}
