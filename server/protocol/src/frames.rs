//! The browser <-> server WebSocket frames: one JSON object per text frame, tagged by `type`.
//!
//! Client -> server: [`ClientFrame`], plus the requests of an authenticated client
//! ([`ClientRequest`]: a message for Drupal, a publish to a client-writable channel). Server ->
//! client: [`ServerFrame`]; Drupal messages travel verbatim as the `message` member of a
//! `{"type":"message"}` envelope, which also has room for the channel it was published to and,
//! later, a per-channel `offset` and `epoch`. The server encodes message envelopes once per
//! publish with [`encode_message`]. Requests are answered with [`ServerFrame::Ack`] or an
//! [`ErrorReply`] carrying the request's `id`.
//!
//! [`ClientRequest`] and [`ErrorReply`] stand beside [`ClientFrame`] and
//! [`ServerFrame::Error`] rather than inside them: the client only ever encodes requests and
//! decodes replies, and the server decodes a request only when [`ClientFrame::decode`] does
//! not know the frame's `type` ([`ClientRequest::decode_refused`]), so the frames every
//! connection exchanges keep their small, closed enums.

use crate::names::{SocketId, Uid};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A frame sent by the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientFrame {
    /// The first frame after the upgrade.
    Authenticate(Authenticate),
    /// Join a content-token channel with a token Drupal handed to the page.
    JoinTokenChannel(JoinTokenChannel),
    /// Heartbeat request; the server answers `pong`.
    Ping,
    /// Answer to the server's `ping`.
    Pong,
}

/// `{"type":"authenticate","authToken":"…","contentTokens":{"channel":"token"}}`.
///
/// Any other members are kept in `extra` and passed through to Drupal's authenticate callback,
/// as the original server did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticate {
    pub auth_token: String,
    /// Channel -> token. Drupal 7 pages send `[]` when there are none; that is accepted.
    #[serde(default, deserialize_with = "content_tokens")]
    pub content_tokens: BTreeMap<String, String>,
    /// After a reconnect: the last position seen per stream, to recover what was missed.
    /// Never passed to Drupal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<BTreeMap<String, Position>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A place in a stream's history: the offset of a message, and the epoch it counts in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub offset: u64,
    pub epoch: String,
}

/// The key of the broadcast stream in positions.
pub const BROADCAST_STREAM: &str = "*";
/// The prefix of a content-token channel's stream key (`token:<channel>`).
pub const TOKEN_STREAM_PREFIX: &str = "token:";

/// Whether `name` is the stream key of another kind of stream ([`BROADCAST_STREAM`], or a
/// content-token channel's `token:<channel>`), and so can never be the name of a channel:
/// positions, histories and the Redis engine key every stream by this one text, and a channel
/// of such a name would read and write the other stream (security review, issue 24 finding 8).
/// The original server accepted any text as a channel; no Drupal module names one like this.
pub fn is_reserved_stream_key(name: &str) -> bool {
    name == BROADCAST_STREAM || name.starts_with(TOKEN_STREAM_PREFIX)
}

/// `{"type":"join-token-channel","channel":"…","contentToken":"…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinTokenChannel {
    pub channel: String,
    pub content_token: String,
}

fn content_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(BTreeMap::new()),
        Value::Array(a) if a.is_empty() => Ok(BTreeMap::new()),
        Value::Object(o) => o
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => {
                    Err(serde::de::Error::custom(format!("contentTokens.{k} must be a string, not {other}")))
                }
            })
            .collect(),
        other => Err(serde::de::Error::custom(format!(
            "contentTokens must be an object of channel -> token, not {other}"
        ))),
    }
}

impl ClientFrame {
    /// Parses a text frame; the error says what is wrong with it.
    pub fn decode(text: &str) -> Result<ClientFrame, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid frame: {e}"))
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialize")
    }
}

/// A request of an authenticated client (PROTOCOL.md, "Client requests").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ClientRequest {
    /// A message for Drupal's `/nodejs/message` handler.
    Message(ClientMessage),
    /// A message for the other members of a client-writable channel.
    Publish(Publish),
}

/// `{"type":"message","message":{…},"id":7}`: `message` goes to Drupal, whose handler is named
/// by the message's `messageType` (else its `type`); with an `id`, Drupal's JSON answer comes
/// back as `{"type":"ack","id":7,"result":…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMessage {
    pub message: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// `{"type":"publish","channel":"chat_1","message":{…},"echo":false,"id":8}`: `message` goes to
/// the other members of `channel` (to the sender too when `echo`), with [`SENDER_UID`] and
/// [`SENDER_SOCKET_ID`] set by the server; with an `id`, the ack's result is `{"sent":N}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publish {
    pub channel: String,
    pub message: Value,
    /// Deliver to the sender's own socket too. Optional on the wire (default `false`).
    #[serde(default)]
    pub echo: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// Members a client-published message may not carry: they make the module's `runCallbacks`
/// take a message for a presence or content-channel notice, or for the receiving page's own
/// action (which it then skips).
pub const RESERVED_PUBLISH_MEMBERS: [&str; 3] =
    ["presenceNotification", "contentChannelNotification", "clientSocketId"];
/// Callbacks only the server's own messages name; never allowed in `clientPublishCallbacks`.
pub const SERVER_CALLBACKS: [&str; 2] = ["clientAuthenticated", "clientJoinedTokenChannel"];
/// The `callback` member of a Drupal message.
pub const CALLBACK: &str = "callback";

/// Member the server sets in a client-published Drupal message: the sender's uid.
pub const SENDER_UID: &str = "senderUid";
/// Member the server sets in a client-published Drupal message: the sender's socket id. (Not
/// `clientSocketId`, which the module's `runCallbacks` uses to skip a page's own messages.)
pub const SENDER_SOCKET_ID: &str = "senderSocketId";

impl ClientRequest {
    /// The `type` values of requests.
    pub const TYPES: [&'static str; 2] = ["message", "publish"];

    /// Whether a frame's `type` names a request (for a server that decodes [`ClientFrame`]
    /// first).
    pub fn is_request(kind: &str) -> bool {
        Self::TYPES.contains(&kind)
    }

    /// Parses a text frame; the error says what is wrong with it.
    pub fn decode(text: &str) -> Result<ClientRequest, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid request: {e}"))
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("requests always serialize")
    }

    /// Reads a frame that [`ClientFrame::decode`] refused: `None` when its `type` is not a
    /// request's; else the request, or why it is not one together with the frame's `id` (when
    /// the frame has a usable one), so that the refusal can carry it.
    pub fn decode_refused(text: &str) -> Option<Result<ClientRequest, (String, Option<u64>)>> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            id: Option<Value>,
        }
        let head: Head = serde_json::from_str(text).ok()?;
        if !Self::is_request(&head.kind) {
            return None;
        }
        Some(Self::decode(text).map_err(|e| (e, head.id.as_ref().and_then(Value::as_u64))))
    }

    /// The request's `id`, for the answer.
    pub fn id(&self) -> Option<u64> {
        match self {
            ClientRequest::Message(m) => m.id,
            ClientRequest::Publish(p) => p.id,
        }
    }
}

/// `{"type":"error","code":"…","message":"…","id":7}`: the refusal of a frame; `id` is that of
/// the refused request, when it had one. Decodes as [`ServerFrame::Error`] too (which ignores
/// the `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

#[derive(Serialize)]
struct ErrorReplyOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    reply: &'a ErrorReply,
}

impl ErrorReply {
    pub fn encode(&self) -> String {
        serde_json::to_string(&ErrorReplyOut { kind: "error", reply: self })
            .expect("error replies always serialize")
    }

    /// Parses an `error` frame (its `type` must be `error`).
    pub fn decode(text: &str) -> Result<ErrorReply, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid error frame: {e}"))?;
        if value.get("type").and_then(Value::as_str) != Some("error") {
            return Err("not an error frame".into());
        }
        serde_json::from_value(value).map_err(|e| format!("invalid error frame: {e}"))
    }
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    /// First frame after the upgrade: the socket's id and the heartbeat period.
    Hello { socket_id: SocketId, heartbeat_ms: u64, protocol: u32 },
    /// Answer to `authenticate` when Drupal accepted the token.
    Authenticated {
        socket_id: SocketId,
        uid: Uid,
        channels: Vec<String>,
        /// Where to start in each stream of the socket that was not recovered.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        streams: BTreeMap<String, Position>,
        /// Per stream the client sent a position for: whether every missed message follows.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        recovered: BTreeMap<String, bool>,
        /// After a reconnect: the watched users online now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        online: Option<Vec<Uid>>,
    },
    /// The socket joined a recorded stream after authentication.
    Joined { stream: String, offset: u64, epoch: String },
    /// A Drupal message, verbatim in `message`.
    Message(Envelope),
    /// A frame was refused; the connection stays open.
    Error { code: ErrorCode, message: String },
    /// Heartbeat: answer with `pong`.
    Ping,
    /// Answer to the client's `ping`.
    Pong,
    /// Success of a client request that had an `id`: Drupal's JSON answer to a `message`,
    /// `{"sent":N}` for a `publish`.
    Ack { id: u64, result: Value },
}

/// The envelope of a Drupal message as decoded by clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub message: Value,
    /// The channel the message was published to, when it was published to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The stream's key when it is not `channel` (content-token channels, broadcast).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Position of the message in its stream's history (recorded streams only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Identity of the stream history `offset` counts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

impl Envelope {
    /// The stream the message belongs to (`stream`, else `channel`).
    pub fn stream_key(&self) -> Option<&str> {
        self.stream.as_deref().or(self.channel.as_deref())
    }
}

/// Why a client frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// Not JSON, not an object, unknown `type`, or a member of the wrong type.
    BadFrame,
    /// A frame that needs an authenticated socket arrived before authentication.
    NotAuthenticated,
    /// A second `authenticate` on an authenticated socket.
    AlreadyAuthenticated,
    /// `authenticate` arrived while the first one is still being checked.
    AuthPending,
    /// `join-token-channel` with a token the server does not know (or that expired).
    InvalidContentToken,
    /// A `message` request, but this server forwards no client messages (`clientMessages`).
    ClientMessagesDisabled,
    /// A `message` request whose type is not in the server's `clientMessages` list.
    MessageTypeNotAllowed,
    /// A `message` request of a type the server itself sends Drupal (`authenticate`,
    /// `userOnline`, `userOffline`).
    ReservedMessageType,
    /// More requests than the per-socket rate limit allows; the request was dropped.
    RateLimited,
    /// A request whose message is larger than the server allows.
    MessageTooLarge,
    /// Drupal could not be asked, or its answer was not usable.
    BackendUnavailable,
    /// A `publish` to a channel the socket is not a member of.
    NotAMember,
    /// A `publish` to a channel that is not client-writable.
    ChannelNotWritable,
    /// A `publish` whose message carries a member only the server or Drupal may set
    /// (`presenceNotification`, `contentChannelNotification`, `clientSocketId`).
    ReservedMember,
    /// A `publish` whose `callback` names a page callback not in the server's
    /// `clientPublishCallbacks`.
    CallbackNotAllowed,
    /// Any code a newer server sends that this client does not know.
    #[serde(other)]
    Unknown,
}

impl ServerFrame {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }

    pub fn decode(text: &str) -> Result<ServerFrame, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid server frame: {e}"))
    }
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a str>,
    message: &'a RawValue,
}

/// Encodes the envelope of an unrecorded Drupal message without re-serialising the message.
pub fn encode_message(message: &RawValue, channel: Option<&str>) -> String {
    encode_recorded(message, channel, None, None)
}

/// Encodes the envelope of a message, with its stream (when not its channel) and position.
/// Called once per publish; the resulting text is shared by every subscriber.
pub fn encode_recorded(
    message: &RawValue,
    channel: Option<&str>,
    stream: Option<&str>,
    position: Option<(u64, &str)>,
) -> String {
    let envelope = EnvelopeOut {
        kind: "message",
        channel,
        stream,
        offset: position.map(|p| p.0),
        epoch: position.map(|p| p.1),
        message,
    };
    serde_json::to_string(&envelope).expect("a raw JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn golden_client_frames() {
        let auth =
            ClientFrame::decode(r#"{"type":"authenticate","authToken":"abc","contentTokens":{"chat":"t1"}}"#)
                .unwrap();
        let ClientFrame::Authenticate(a) = &auth else { panic!("not authenticate") };
        assert_eq!(a.auth_token, "abc");
        assert_eq!(a.content_tokens.get("chat").map(String::as_str), Some("t1"));
        assert!(a.extra.is_empty());
        assert_eq!(
            auth.encode(),
            r#"{"type":"authenticate","authToken":"abc","contentTokens":{"chat":"t1"}}"#
        );
        assert_eq!(
            ClientFrame::JoinTokenChannel(JoinTokenChannel {
                channel: "chat".into(),
                content_token: "t".into()
            })
            .encode(),
            r#"{"type":"join-token-channel","channel":"chat","contentToken":"t"}"#
        );
        assert_eq!(ClientFrame::Ping.encode(), r#"{"type":"ping"}"#);
        assert_eq!(ClientFrame::Pong.encode(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn authenticate_accepts_drupal7_empty_array_and_keeps_extra_members() {
        let f = ClientFrame::decode(
            r#"{"type":"authenticate","authToken":"x","contentTokens":[],"nodejs_extra":1}"#,
        )
        .unwrap();
        let ClientFrame::Authenticate(a) = f else { panic!("not authenticate") };
        assert!(a.content_tokens.is_empty());
        assert_eq!(a.extra.get("nodejs_extra"), Some(&Value::from(1)));
        assert!(!a.extra.contains_key("type"));
        let missing = ClientFrame::decode(r#"{"type":"authenticate","authToken":"x"}"#).unwrap();
        assert!(matches!(missing, ClientFrame::Authenticate(a) if a.content_tokens.is_empty()));
    }

    #[test]
    fn bad_client_frames_name_the_problem() {
        let e = ClientFrame::decode(r#"{"type":"publish"}"#).unwrap_err();
        assert!(e.contains("unknown variant `publish`"), "{e}");
        let e = ClientFrame::decode(r#"{"type":"authenticate"}"#).unwrap_err();
        assert!(e.contains("authToken"), "{e}");
        let e = ClientFrame::decode(r#"{"type":"authenticate","authToken":"x","contentTokens":{"a":1}}"#)
            .unwrap_err();
        assert!(e.contains("contentTokens.a must be a string"), "{e}");
        assert!(ClientFrame::decode("not json").is_err());
        assert!(ClientFrame::decode("[]").is_err());
    }

    #[test]
    fn golden_server_frames() {
        let hello =
            ServerFrame::Hello { socket_id: SocketId("k3j9".into()), heartbeat_ms: 25000, protocol: 1 };
        assert_eq!(hello.encode(), r#"{"type":"hello","socketId":"k3j9","heartbeatMs":25000,"protocol":1}"#);
        let ack = ServerFrame::Authenticated {
            socket_id: SocketId("k3j9".into()),
            uid: Uid(5),
            channels: vec!["nodejs_user_5".into()],
            streams: BTreeMap::new(),
            recovered: BTreeMap::new(),
            online: None,
        };
        assert_eq!(
            ack.encode(),
            r#"{"type":"authenticated","socketId":"k3j9","uid":5,"channels":["nodejs_user_5"]}"#
        );
        let err = ServerFrame::Error { code: ErrorCode::BadFrame, message: "m".into() };
        assert_eq!(err.encode(), r#"{"type":"error","code":"bad-frame","message":"m"}"#);
        assert_eq!(ServerFrame::Ping.encode(), r#"{"type":"ping"}"#);
        for f in [hello, ack, err, ServerFrame::Pong] {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
    }

    fn pos(offset: u64, epoch: &str) -> Position {
        Position { offset, epoch: epoch.into() }
    }

    #[test]
    fn golden_recovery_frames() {
        let auth = ClientFrame::decode(
            r#"{"type":"authenticate","authToken":"a","positions":{"chat":{"offset":12,"epoch":"k3j9x0"},"*":{"offset":3,"epoch":"z9"}}}"#,
        )
        .unwrap();
        let ClientFrame::Authenticate(a) = &auth else { panic!("not authenticate") };
        let positions = a.positions.as_ref().unwrap();
        assert_eq!(positions["chat"], pos(12, "k3j9x0"));
        assert_eq!(positions[BROADCAST_STREAM], pos(3, "z9"));
        assert!(a.extra.is_empty(), "positions are not passed to Drupal");
        assert_eq!(
            auth.encode(),
            r#"{"type":"authenticate","authToken":"a","contentTokens":{},"positions":{"*":{"offset":3,"epoch":"z9"},"chat":{"offset":12,"epoch":"k3j9x0"}}}"#
        );
        let ack = ServerFrame::Authenticated {
            socket_id: SocketId("s".into()),
            uid: Uid(5),
            channels: vec!["chat".into()],
            streams: BTreeMap::from([("*".to_string(), pos(3, "z9"))]),
            recovered: BTreeMap::from([("chat".to_string(), true), ("token:room".to_string(), false)]),
            online: Some(vec![Uid(7)]),
        };
        assert_eq!(
            ack.encode(),
            r#"{"type":"authenticated","socketId":"s","uid":5,"channels":["chat"],"streams":{"*":{"offset":3,"epoch":"z9"}},"recovered":{"chat":true,"token:room":false},"online":[7]}"#
        );
        let joined = ServerFrame::Joined { stream: "token:room".into(), offset: 3, epoch: "a1".into() };
        assert_eq!(joined.encode(), r#"{"type":"joined","stream":"token:room","offset":3,"epoch":"a1"}"#);
        for f in [ack, joined] {
            assert_eq!(ServerFrame::decode(&f.encode()).unwrap(), f);
        }
        let text = encode_recorded(&raw("{}"), Some("room"), Some("token:room"), Some((3, "a1")));
        assert_eq!(
            text,
            r#"{"type":"message","channel":"room","stream":"token:room","offset":3,"epoch":"a1","message":{}}"#
        );
        let ServerFrame::Message(env) = ServerFrame::decode(&text).unwrap() else { panic!("not a message") };
        assert_eq!(
            (env.stream_key(), env.offset, env.epoch.as_deref()),
            (Some("token:room"), Some(3), Some("a1"))
        );
        let text = encode_recorded(&raw("{}"), Some("chat"), None, Some((12, "k3")));
        assert_eq!(text, r#"{"type":"message","channel":"chat","offset":12,"epoch":"k3","message":{}}"#);
        let ServerFrame::Message(env) = ServerFrame::decode(&text).unwrap() else { panic!("not a message") };
        assert_eq!(env.stream_key(), Some("chat"));
    }

    #[test]
    fn message_envelopes_carry_the_body_verbatim() {
        let body = r#"{"channel":"c","data":{"b":"é\u00e9 ✓","n":[1,2.5,null]},"callback":"x"}"#;
        let text = encode_message(&raw(body), Some("c"));
        assert_eq!(text, format!(r#"{{"type":"message","channel":"c","message":{body}}}"#));
        let ServerFrame::Message(env) = ServerFrame::decode(&text).unwrap() else { panic!("not a message") };
        assert_eq!(env.message, serde_json::from_str::<Value>(body).unwrap());
        assert_eq!(env.channel.as_deref(), Some("c"));
        assert_eq!(encode_message(&raw("{}"), None), r#"{"type":"message","message":{}}"#);
    }

    #[test]
    fn golden_client_requests() {
        let text = r#"{"type":"message","message":{"text":"hi","type":"chat"},"id":7}"#;
        let m = ClientRequest::decode(text).unwrap();
        assert_eq!(
            m,
            ClientRequest::Message(ClientMessage {
                message: serde_json::json!({"type": "chat", "text": "hi"}),
                id: Some(7)
            })
        );
        assert_eq!(m.encode(), text);
        assert_eq!(m.id(), Some(7));
        let no_id = r#"{"type":"message","message":{"messageType":"x"}}"#;
        assert_eq!(ClientRequest::decode(no_id).unwrap().encode(), no_id);

        let text = r#"{"type":"publish","channel":"chat_1","message":{"text":"hi"},"echo":false,"id":8}"#;
        let p = ClientRequest::decode(text).unwrap();
        let ClientRequest::Publish(publish) = &p else { panic!("not publish") };
        assert_eq!((publish.channel.as_str(), publish.echo, publish.id), ("chat_1", false, Some(8)));
        assert_eq!(p.encode(), text);
        let short = ClientRequest::decode(r#"{"type":"publish","channel":"c","message":1}"#).unwrap();
        assert_eq!(short.encode(), r#"{"type":"publish","channel":"c","message":1,"echo":false}"#);
        let echo = r#"{"type":"publish","channel":"c","message":{},"echo":true}"#;
        assert_eq!(ClientRequest::decode(echo).unwrap().encode(), echo);

        assert!(ClientRequest::is_request("message") && ClientRequest::is_request("publish"));
        assert!(!ClientRequest::is_request("authenticate"));
        let e = ClientFrame::decode(text).unwrap_err();
        assert!(e.contains("unknown variant `publish`"), "{e}");
        let e = ClientRequest::decode(r#"{"type":"publish","message":{}}"#).unwrap_err();
        assert!(e.contains("channel"), "{e}");
        let e = ClientRequest::decode(r#"{"type":"message","message":{},"id":-1}"#).unwrap_err();
        assert!(e.contains("invalid"), "{e}");

        assert_eq!(ClientRequest::decode_refused(text), Some(Ok(p)));
        assert_eq!(ClientRequest::decode_refused(r#"{"type":"subscribe","id":3}"#), None);
        assert_eq!(ClientRequest::decode_refused("not json"), None);
        let Some(Err((e, id))) = ClientRequest::decode_refused(r#"{"type":"publish","message":{},"id":9}"#)
        else {
            panic!("a publish without a channel is a request that does not decode")
        };
        assert!(e.contains("channel"), "{e}");
        assert_eq!(id, Some(9));
        let Some(Err((_, id))) = ClientRequest::decode_refused(r#"{"type":"message","id":"x"}"#) else {
            panic!("a message with a string id does not decode")
        };
        assert_eq!(id, None, "an id that is not a number cannot be echoed");
    }

    #[test]
    fn golden_acks_and_errors_with_ids() {
        let ack = ServerFrame::Ack { id: 7, result: serde_json::json!({"n": [1], "status": "ok"}) };
        assert_eq!(ack.encode(), r#"{"type":"ack","id":7,"result":{"n":[1],"status":"ok"}}"#);
        assert_eq!(ServerFrame::decode(&ack.encode()).unwrap(), ack);
        let sent = ServerFrame::Ack { id: 8, result: serde_json::json!({"sent": 2}) };
        assert_eq!(sent.encode(), r#"{"type":"ack","id":8,"result":{"sent":2}}"#);

        let codes = [
            (ErrorCode::ClientMessagesDisabled, "client-messages-disabled"),
            (ErrorCode::MessageTypeNotAllowed, "message-type-not-allowed"),
            (ErrorCode::ReservedMessageType, "reserved-message-type"),
            (ErrorCode::RateLimited, "rate-limited"),
            (ErrorCode::MessageTooLarge, "message-too-large"),
            (ErrorCode::BackendUnavailable, "backend-unavailable"),
            (ErrorCode::NotAMember, "not-a-member"),
            (ErrorCode::ChannelNotWritable, "channel-not-writable"),
            (ErrorCode::ReservedMember, "reserved-member"),
            (ErrorCode::CallbackNotAllowed, "callback-not-allowed"),
        ];
        for (code, name) in codes {
            let reply = ErrorReply { code, message: "m".into(), id: Some(7) };
            let text = reply.encode();
            assert_eq!(text, format!(r#"{{"type":"error","code":"{name}","message":"m","id":7}}"#));
            assert_eq!(ErrorReply::decode(&text).unwrap(), reply);
            assert_eq!(ServerFrame::decode(&text).unwrap(), ServerFrame::Error { code, message: "m".into() });
        }
        let plain = ErrorReply { code: ErrorCode::BadFrame, message: "m".into(), id: None };
        assert_eq!(
            plain.encode(),
            ServerFrame::Error { code: ErrorCode::BadFrame, message: "m".into() }.encode()
        );
        assert_eq!(ErrorReply::decode(&plain.encode()).unwrap(), plain);
        assert!(ErrorReply::decode(r#"{"type":"ack","id":1,"result":null}"#).is_err());
    }

    #[test]
    fn unknown_error_codes_decode() {
        let f = ServerFrame::decode(r#"{"type":"error","code":"from-the-future","message":"m"}"#).unwrap();
        assert!(matches!(f, ServerFrame::Error { code: ErrorCode::Unknown, .. }));
    }
}
