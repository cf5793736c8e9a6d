//! What the state machine needs from a server frame: [`Incoming`], generic over the Drupal
//! message payload `M`.
//!
//! The protocol crate's `ServerFrame` is the definition of these frames. Natively (tests,
//! tools) frames are decoded with it and converted with `From<ServerFrame>`. In the browser
//! `drupal-js/src/page.js` parses a frame with `JSON.parse` and hands these members to the wasm
//! (`Client.input` in `src/api.rs`): linking serde_json's parser, serde's
//! buffering of internally tagged enums and `serde_json::Value` would more than double the
//! wasm, and the message would be copied into wasm memory only to be turned back into a JS
//! object. The browser test `frames_parsed_in_js_match_the_protocol_crate` checks that both
//! paths agree on every frame of PROTOCOL.md.

use crate::abi::kind;
use crate::abi::message::{PRESENCE_OFFLINE, PRESENCE_ONLINE};
use crate::recovery::Position;
use alloc::string::String;
use alloc::vec::Vec;

/// A server frame as the machine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<M> {
    Hello {
        socket_id: String,
        heartbeat_ms: u64,
    },
    /// `streams`: start positions of the streams not being recovered; `recovered`: per position
    /// the client sent, whether every missed message follows; `online`: after a reconnect, the
    /// watched users online now.
    Authenticated {
        socket_id: String,
        uid: u64,
        streams: Vec<(String, Position)>,
        recovered: Vec<(String, bool)>,
        online: Option<Vec<u64>>,
    },
    /// The socket joined a recorded stream; its start position there.
    Joined {
        stream: String,
        position: Position,
    },
    /// A Drupal message and what its envelope says.
    Message(Envelope<M>),
    /// Success of the request with this `id`.
    Ack {
        id: u64,
        result: M,
    },
    /// A refused frame; `id` is that of the refused request, if it had one.
    Error {
        code: String,
        message: String,
        id: Option<u64>,
    },
    Ping,
    Pong,
    /// Not a frame this client understands; the text says why.
    Invalid(String),
}

/// A `message` frame: the Drupal message (the page's value, untouched) and what the client
/// reads from the envelope and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<M> {
    pub message: M,
    /// The envelope's `channel`.
    pub channel: Option<String>,
    /// For a recorded message: its stream's key (the envelope's `stream`, else its `channel`)
    /// and its position.
    pub recorded: Option<(String, Position)>,
    /// The message is a presence notification `{uid, event: "online" | "offline"}`.
    pub presence: Option<(u64, bool)>,
}

/// Builds [`Incoming`] frames from the driver's calls (see [`kind`]).
#[derive(Debug, Default)]
pub struct FrameReader {
    streams: Vec<(String, Position)>,
    recovered: Vec<(String, bool)>,
    online: Vec<u64>,
}

/// The NUL-separated fields of a driver input's text, one per call ("" past the last). (A
/// byte scan: `str::split` links a char searcher several times this size.)
pub fn fields(text: &str) -> impl FnMut() -> String + '_ {
    let mut rest = Some(text);
    move || {
        let Some(r) = rest else { return String::new() };
        let end = r.bytes().position(|b| b == 0);
        rest = end.map(|i| &r[i + 1..]);
        r[..end.unwrap_or(r.len())].into()
    }
}

impl FrameReader {
    /// One input of a frame kind or of [`kind::MESSAGE`] (see [`kind`]): the frame, or `None`
    /// while the members of an `authenticated` frame come in (and for other kinds).
    pub fn input<M>(
        &mut self,
        kind: u32,
        bits: u32,
        n: f64,
        m: f64,
        text: &str,
        value: M,
    ) -> Option<Incoming<M>> {
        let mut next = fields(text);
        match kind {
            kind::MESSAGE => Some(Self::message(value, next(), next(), n, next(), bits, m)),
            k if k <= kind::INVALID => self.frame(k, next(), n, next(), value),
            _ => None,
        }
    }

    /// One input of a frame kind: a frame, or `None` while the members of an `authenticated`
    /// frame come in.
    pub fn frame<M>(&mut self, kind: u32, a: String, n: f64, b: String, value: M) -> Option<Incoming<M>> {
        let number = crate::out::whole(n);
        let position = |offset: Option<u64>, epoch: String| Some(Position { offset: offset?, epoch });
        let frame = match kind {
            kind::HELLO => match number {
                Some(heartbeat_ms) if !a.is_empty() => Incoming::Hello { socket_id: a, heartbeat_ms },
                _ => Incoming::Invalid("hello frame without socketId or heartbeatMs".into()),
            },
            kind::AUTHENTICATED => {
                let online = core::mem::take(&mut self.online);
                let (streams, recovered) =
                    (core::mem::take(&mut self.streams), core::mem::take(&mut self.recovered));
                match number {
                    Some(uid) if !a.is_empty() => Incoming::Authenticated {
                        socket_id: a,
                        uid,
                        streams,
                        recovered,
                        online: (b == "online").then_some(online),
                    },
                    _ => Incoming::Invalid("authenticated frame without socketId or uid".into()),
                }
            }
            kind::START => {
                if let Some(p) = position(number, b) {
                    self.streams.push((a, p));
                }
                return None;
            }
            kind::OUTCOME => {
                self.recovered.push((a, n == 1.0));
                return None;
            }
            kind::ONLINE => {
                self.online.extend(number);
                return None;
            }
            kind::JOINED => match position(number, b) {
                Some(position) => Incoming::Joined { stream: a, position },
                None => Incoming::Invalid("joined frame without offset or epoch".into()),
            },
            kind::ACK => match number {
                Some(id) => Incoming::Ack { id, result: value },
                None => Incoming::Invalid("ack frame without id".into()),
            },
            kind::ERROR => Incoming::Error { code: a, message: b, id: number },
            kind::PING => Incoming::Ping,
            kind::PONG => Incoming::Pong,
            _ => Incoming::Invalid(a),
        };
        Some(frame)
    }

    /// One [`kind::MESSAGE`] input: the envelope's `channel`, `stream`, `offset` (NaN when
    /// absent) and `epoch`, the presence bits (`flags`: [`crate::abi::message`]) and the presence notification's
    /// `uid`. Empty strings stand for absent members.
    #[allow(clippy::too_many_arguments)]
    pub fn message<M>(
        message: M,
        channel: String,
        stream: String,
        offset: f64,
        epoch: String,
        flags: u32,
        uid: f64,
    ) -> Incoming<M> {
        let channel = (!channel.is_empty()).then_some(channel);
        let key = if stream.is_empty() { channel.clone() } else { Some(stream) };
        let recorded = match (key, crate::out::whole(offset)) {
            (Some(key), Some(offset)) if !epoch.is_empty() => Some((key, Position { offset, epoch })),
            _ => None,
        };
        let presence = match (crate::out::whole(uid), flags & PRESENCE_ONLINE != 0) {
            (Some(uid), online) if online || flags & PRESENCE_OFFLINE != 0 => Some((uid, online)),
            _ => None,
        };
        Incoming::Message(Envelope { message, channel, recorded, presence })
    }
}

#[cfg(feature = "std")]
use drupal_push_protocol::ServerFrame;

#[cfg(feature = "std")]
fn position(p: drupal_push_protocol::frames::Position) -> Position {
    Position { offset: p.offset, epoch: p.epoch }
}

#[cfg(feature = "std")]
impl From<ServerFrame> for Incoming<serde_json::Value> {
    fn from(frame: ServerFrame) -> Self {
        match frame {
            ServerFrame::Hello { socket_id, heartbeat_ms, .. } => {
                Incoming::Hello { socket_id: socket_id.0, heartbeat_ms }
            }
            ServerFrame::Authenticated { socket_id, uid, streams, recovered, online, .. } => {
                Incoming::Authenticated {
                    socket_id: socket_id.0,
                    uid: uid.0,
                    streams: streams.into_iter().map(|(k, p)| (k, position(p))).collect(),
                    recovered: recovered.into_iter().collect(),
                    online: online.map(|uids| uids.into_iter().map(|u| u.0).collect()),
                }
            }
            ServerFrame::Joined { stream, offset, epoch } => {
                Incoming::Joined { stream, position: Position { offset, epoch } }
            }
            ServerFrame::Message(envelope) => {
                let recorded = match (envelope.stream_key(), envelope.offset, &envelope.epoch) {
                    (Some(key), Some(offset), Some(epoch)) => {
                        Some((key.to_owned(), Position { offset, epoch: epoch.clone() }))
                    }
                    _ => None,
                };
                let m = &envelope.message;
                let presence = m.get("presenceNotification").and_then(|p| {
                    let uid = p.get("uid").and_then(|u| match u {
                        serde_json::Value::String(s) => crate::out::parse_digits(s),
                        other => other.as_u64(),
                    })?;
                    match p.get("event")?.as_str()? {
                        "online" => Some((uid, true)),
                        "offline" => Some((uid, false)),
                        _ => None,
                    }
                });
                Incoming::Message(Envelope {
                    presence,
                    recorded,
                    channel: envelope.channel,
                    message: envelope.message,
                })
            }
            ServerFrame::Error { code, message } => {
                let code = serde_json::to_value(code).ok();
                let code = code.as_ref().and_then(|c| c.as_str()).unwrap_or("unknown");
                Incoming::Error { code: code.to_owned(), message, id: None }
            }
            ServerFrame::Ack { id, result } => Incoming::Ack { id, result },
            ServerFrame::Ping => Incoming::Ping,
            ServerFrame::Pong => Incoming::Pong,
        }
    }
}

#[cfg(feature = "std")]
impl Incoming<serde_json::Value> {
    /// Decodes a text frame with the protocol crate.
    pub fn decode(text: &str) -> Self {
        match ServerFrame::decode(text) {
            Ok(frame) => match (frame.into(), drupal_push_protocol::frames::ErrorReply::decode(text)) {
                (Incoming::Error { code, message, .. }, Ok(reply)) => {
                    Incoming::Error { code, message, id: reply.id }
                }
                (incoming, _) => incoming,
            },
            Err(e) => Incoming::Invalid(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pos(offset: u64, epoch: &str) -> Position {
        Position { offset, epoch: epoch.into() }
    }

    fn envelope(message: serde_json::Value, channel: Option<&str>) -> Envelope<serde_json::Value> {
        Envelope { message, channel: channel.map(Into::into), recorded: None, presence: None }
    }

    #[test]
    fn fields_split_at_nul() {
        let mut next = fields("a\0\0é\0");
        let got: Vec<String> = (0..5).map(|_| next()).collect();
        assert_eq!(got, ["a", "", "é", "", ""]);
        let mut next = fields("");
        assert_eq!((next(), next()), (String::new(), String::new()));
    }

    #[test]
    fn protocol_frames_convert() {
        assert_eq!(
            Incoming::decode(r#"{"type":"hello","socketId":"k3","heartbeatMs":25000,"protocol":1}"#),
            Incoming::Hello { socket_id: "k3".into(), heartbeat_ms: 25000 }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"authenticated","socketId":"k3","uid":"5","channels":[]}"#),
            Incoming::Authenticated {
                socket_id: "k3".into(),
                uid: 5,
                streams: vec![],
                recovered: vec![],
                online: None
            }
        );
        assert_eq!(
            Incoming::decode(
                r#"{"type":"authenticated","socketId":"s","uid":5,"channels":["chat"],"streams":{"token:room":{"offset":40,"epoch":"n"}},"recovered":{"chat":true,"token:room":false},"online":[7,9]}"#
            ),
            Incoming::Authenticated {
                socket_id: "s".into(),
                uid: 5,
                streams: vec![("token:room".into(), pos(40, "n"))],
                recovered: vec![("chat".into(), true), ("token:room".into(), false)],
                online: Some(vec![7, 9])
            }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"joined","stream":"token:room","offset":3,"epoch":"a1"}"#),
            Incoming::Joined { stream: "token:room".into(), position: pos(3, "a1") }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"message","channel":"c","message":{"a":[1]}}"#),
            Incoming::Message(envelope(json!({"a": [1]}), Some("c")))
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"message","channel":"c","message":{},"offset":4,"epoch":"e"}"#),
            Incoming::Message(Envelope {
                recorded: Some(("c".into(), pos(4, "e"))),
                ..envelope(json!({}), Some("c"))
            })
        );
        assert_eq!(
            Incoming::decode(
                r#"{"type":"message","channel":"room","stream":"token:room","offset":3,"epoch":"a","message":{"clientSocketId":"me"}}"#
            ),
            Incoming::Message(Envelope {
                recorded: Some(("token:room".into(), pos(3, "a"))),
                ..envelope(json!({"clientSocketId": "me"}), Some("room"))
            })
        );
        assert_eq!(
            Incoming::decode(
                r#"{"type":"message","stream":"*","offset":7,"epoch":"z","message":{"broadcast":true}}"#
            ),
            Incoming::Message(Envelope {
                recorded: Some(("*".into(), pos(7, "z"))),
                ..envelope(json!({"broadcast": true}), None)
            })
        );
        let presence = json!({"presenceNotification": {"uid": "5", "event": "offline"}});
        assert_eq!(
            Incoming::decode(&json!({"type": "message", "message": presence}).to_string()),
            Incoming::Message(Envelope { presence: Some((5, false)), ..envelope(presence, None) })
        );
        let odd = json!({"presenceNotification": {"uid": 5, "event": "away"}, "clientSocketId": 3});
        assert_eq!(
            Incoming::decode(&json!({"type": "message", "message": odd}).to_string()),
            Incoming::Message(envelope(odd, None)),
            "an unknown event, a numeric clientSocketId"
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"error","code":"auth-pending","message":"m"}"#),
            Incoming::Error { code: "auth-pending".into(), message: "m".into(), id: None }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"error","code":"rate-limited","message":"m","id":3}"#),
            Incoming::Error { code: "rate-limited".into(), message: "m".into(), id: Some(3) }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"error","code":"new-one","message":"m"}"#),
            Incoming::Error { code: "unknown".into(), message: "m".into(), id: None }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"ack","id":7,"result":{"sent":2}}"#),
            Incoming::Ack { id: 7, result: json!({"sent": 2}) }
        );
        assert_eq!(Incoming::decode(r#"{"type":"ping"}"#), Incoming::Ping);
        assert_eq!(Incoming::decode(r#"{"type":"pong"}"#), Incoming::Pong);
        assert!(matches!(Incoming::decode(r#"{"type":"resume"}"#), Incoming::Invalid(_)));
        assert!(matches!(Incoming::decode("nope"), Incoming::Invalid(_)));
    }
}
