//! The frames the client sends ([`Out`]) and what it does after a close code ([`policy`]).
//!
//! The protocol crate defines these frames (`ClientFrame`, `ClientRequest`) and the close codes;
//! the client does not link it in the browser (its serde code would be most of the wasm).
//! [`Out::text`] writes a frame's JSON itself, the same bytes in the browser and in native
//! tests; a frame that carries a page value (a request's message, the object the page emitted
//! with `authenticate`) leaves its place to the JavaScript driver ([`Out::page_value`]), which
//! puts the value in with `JSON.parse`/`JSON.stringify` (`drupal-js/src/page.js`). Golden tests
//! pin both: the native tests below compare [`Out::text`] with the crate's encoder, the browser
//! test `frames_encoded_in_js_match_the_protocol_crate` the driver's frames.

use crate::recovery::Position;
use crate::tokens::TokenMap;
use alloc::string::String;
use alloc::vec::Vec;

/// Positions sent in `authenticate` after a reconnect.
pub type Resume = Option<Vec<(String, Position)>>;

/// A frame for the server. `M` is a page value (a JS object in the browser).
#[derive(Debug, Clone, PartialEq)]
pub enum Out<M> {
    /// `authenticate` built from the page settings (our shim).
    Authenticate {
        auth_token: String,
        content_tokens: TokenMap,
        positions: Resume,
    },
    /// `authenticate` with the object the page emitted (the io facade: the module's
    /// `{authToken, contentTokens}`): `type` first, then `positions`, then the object's members.
    AuthenticateWith {
        data: M,
        positions: Resume,
    },
    /// `join-token-channel`.
    Join {
        channel: String,
        token: String,
    },
    Ping,
    Pong,
    /// A message for Drupal (`message` request).
    Message {
        message: M,
        id: Option<u32>,
    },
    /// A message for the other members of a client-writable channel (`publish` request).
    Publish {
        channel: String,
        message: M,
        echo: bool,
        id: Option<u32>,
    },
}

/// How a page value goes into a frame's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// As the value of the `message` member (written as `null` in the text).
    Message,
    /// Its members after the frame's own (members the frame has keep the frame's value).
    Members,
}

/// A JSON object written member by member (`{"type":…` first).
struct Json(String);

impl Json {
    fn new(kind: &str) -> Self {
        let mut j = Json(String::from("{"));
        j.key("type");
        j.string(kind);
        j
    }

    fn key(&mut self, key: &str) {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        self.string(key);
        self.0.push(':');
    }

    /// A JSON string, escaped as serde_json and `JSON.stringify` do.
    fn string(&mut self, s: &str) {
        self.0.push('"');
        for c in s.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                '\u{8}' => self.0.push_str("\\b"),
                '\u{c}' => self.0.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    self.0.push_str("\\u00");
                    for nibble in [c as u32 >> 4, c as u32 & 15] {
                        self.0.push(char::from(b"0123456789abcdef"[nibble as usize]));
                    }
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.string(value);
    }

    fn number(&mut self, key: &str, n: u64) {
        self.key(key);
        self.0.push_str(&digits(n));
    }

    fn id(&mut self, id: &Option<u32>) {
        if let Some(id) = id {
            self.number("id", (*id).into());
        }
    }

    fn open(&mut self, key: &str) {
        self.key(key);
        self.0.push('{');
    }

    fn close(&mut self) {
        self.0.push('}');
    }

    fn positions(&mut self, positions: &Resume) {
        if let Some(positions) = positions {
            self.open("positions");
            for (key, p) in positions {
                self.open(key);
                self.number("offset", p.offset);
                self.text("epoch", &p.epoch);
                self.close();
            }
            self.close();
        }
    }

    fn end(mut self) -> String {
        self.close();
        self.0
    }
}

impl<M> Out<M> {
    /// The frame's JSON text; a page value's place is given by [`Out::page_value`].
    pub fn text(&self) -> String {
        let mut j;
        match self {
            Out::Authenticate { auth_token, content_tokens, positions } => {
                j = Json::new("authenticate");
                j.text("authToken", auth_token);
                j.open("contentTokens");
                for (channel, token) in content_tokens.iter() {
                    j.text(channel, token);
                }
                j.close();
                j.positions(positions);
            }
            Out::AuthenticateWith { positions, .. } => {
                j = Json::new("authenticate");
                j.positions(positions);
            }
            Out::Join { channel, token } => {
                j = Json::new("join-token-channel");
                j.text("channel", channel);
                j.text("contentToken", token);
            }
            Out::Ping => j = Json::new("ping"),
            Out::Pong => j = Json::new("pong"),
            Out::Message { id, .. } => {
                j = Json::new("message");
                j.key("message");
                j.0.push_str("null");
                j.id(id);
            }
            Out::Publish { channel, echo, id, .. } => {
                j = Json::new("publish");
                j.text("channel", channel);
                j.key("message");
                j.0.push_str("null");
                j.key("echo");
                j.0.push_str(if *echo { "true" } else { "false" });
                j.id(id);
            }
        }
        j.end()
    }

    /// The page value the frame carries, and where it goes.
    pub fn page_value(&self) -> Option<(&M, Place)> {
        match self {
            Out::AuthenticateWith { data, .. } => Some((data, Place::Members)),
            Out::Message { message, .. } | Out::Publish { message, .. } => Some((message, Place::Message)),
            _ => None,
        }
    }
}

/// What to do after a connection closed with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Stop,
    Backoff,
    Soon,
}

/// The reconnect policy of a close code: 1001 soon, 4000-4099 stop, anything else backoff
/// (PROTOCOL.md, "Close codes").
pub fn policy(code: u16) -> Policy {
    match code {
        1001 => Policy::Soon,
        4000..=4099 => Policy::Stop,
        _ => Policy::Backoff,
    }
}

/// Close codes that stop the client, with the name the server gives them.
pub fn stop_reason(code: u16) -> &'static str {
    match code {
        4001 => "auth-rejected",
        4002 => "kicked",
        4003 => "logged-out",
        4004 => "protocol-violation",
        _ => "refused",
    }
}

/// The strings one after the other (`[..].concat()` links a generic joiner twice this size).
pub fn cat(parts: &[&str]) -> String {
    let mut s = String::new();
    for part in parts {
        s.push_str(part);
    }
    s
}

/// The decimal digits of `n` (without linking the formatting machinery).
pub fn digits(mut n: u64) -> String {
    let mut reversed = Vec::new();
    loop {
        reversed.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    reversed.iter().rev().map(|b| *b as char).collect()
}

/// A JS number that is a non-negative integer below 9e15 (exact in a double), as `u64`.
pub fn whole(n: f64) -> Option<u64> {
    ((0.0..9.0e15).contains(&n) && n == (n as u64) as f64).then_some(n as u64)
}

/// A string of decimal digits (at most 15, so that it is exact in a JS number) as a number.
pub fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0')))
}

#[cfg(feature = "std")]
impl Out<serde_json::Value> {
    /// The frame's JSON text, written by the protocol crate (the definition [`Out::text`] and
    /// the driver are tested against).
    pub fn encode(&self) -> String {
        use drupal_push_protocol::ClientFrame;
        use drupal_push_protocol::frames::{
            Authenticate, ClientMessage, ClientRequest, JoinTokenChannel, Position as Wire, Publish,
        };
        let id = |id: &Option<u32>| id.map(u64::from);
        let wire = |positions: Resume| {
            positions
                .map(|p| p.into_iter().map(|(k, p)| (k, Wire { offset: p.offset, epoch: p.epoch })).collect())
        };
        match self.clone() {
            Out::Authenticate { auth_token, content_tokens, positions } => {
                let content_tokens = content_tokens.into_iter().collect();
                ClientFrame::Authenticate(Authenticate {
                    auth_token,
                    content_tokens,
                    positions: wire(positions),
                    extra: Default::default(),
                })
                .encode()
            }
            Out::AuthenticateWith { data, positions } => {
                // The page's members, with `type` and `positions` set by the client.
                let mut members = data.as_object().cloned().unwrap_or_default();
                members.insert("type".into(), "authenticate".into());
                members.remove("positions");
                if let Some(p) = wire(positions) {
                    members.insert("positions".into(), serde_json::to_value(p).unwrap_or_default());
                }
                let text = serde_json::Value::Object(members).to_string();
                // Checked against the crate: the server must read what the page sent.
                assert!(ClientFrame::decode(&text).is_ok(), "{text}");
                text
            }
            Out::Join { channel, token } => {
                ClientFrame::JoinTokenChannel(JoinTokenChannel { channel, content_token: token }).encode()
            }
            Out::Ping => ClientFrame::Ping.encode(),
            Out::Pong => ClientFrame::Pong.encode(),
            Out::Message { message, id: i } => {
                ClientRequest::Message(ClientMessage { message, id: id(&i) }).encode()
            }
            Out::Publish { channel, message, echo, id: i } => {
                ClientRequest::Publish(Publish { channel, message, echo, id: id(&i) }).encode()
            }
        }
    }

    /// [`Out::text`] with the page value put in as the browser driver does it (the page's
    /// members in the order of its map).
    pub fn driver_text(&self) -> String {
        let text = self.text();
        let Some((value, place)) = self.page_value() else { return text };
        let frame: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_default();
        match (place, value) {
            (Place::Message, v) => {
                text.replacen(r#""message":null"#, &[r#""message":"#, &v.to_string()].concat(), 1)
            }
            (Place::Members, serde_json::Value::Object(members)) => {
                let mut text = text;
                text.pop();
                for (k, v) in members.iter().filter(|(k, _)| !frame.contains_key(*k)) {
                    text.push(',');
                    text.push_str(&serde_json::Value::from(k.as_str()).to_string());
                    text.push(':');
                    text.push_str(&v.to_string());
                }
                text + "}"
            }
            (Place::Members, _) => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drupal_push_protocol::{CloseCode, ReconnectPolicy};

    #[test]
    fn the_close_policy_is_the_protocol_crates() {
        for code in 1000..=4999u16 {
            let expected = match CloseCode(code).policy() {
                ReconnectPolicy::Stop => Policy::Stop,
                ReconnectPolicy::Backoff => Policy::Backoff,
                ReconnectPolicy::Soon => Policy::Soon,
            };
            assert_eq!(policy(code), expected, "{code}");
        }
        for code in 4001..=4004 {
            assert_eq!(stop_reason(code), CloseCode(code).reason());
        }
    }

    fn pos(offset: u64, epoch: &str) -> Position {
        Position { offset, epoch: epoch.into() }
    }

    /// Every frame the client sends: the text it writes is the crate's, byte for byte where
    /// the crate keeps the client's member order, as JSON values otherwise (the crate's maps
    /// sort their keys, ours keep insertion order; the server reads either).
    #[test]
    fn frame_texts_are_the_protocol_crates() {
        use serde_json::{Value, json};
        let odd = json!({"n": [1.5, -2, "\u{e9}\u{1}\u{1f}\"\\\n\t\u{8}\u{c}\r", null, {"k": true}], "type": "chat"});
        let tokens: TokenMap = [("b".to_string(), "2".to_string()), ("a".into(), "1\"\u{7f}\u{2028}".into())]
            .into_iter()
            .collect();
        let positions =
            Some(alloc::vec![("chat".to_string(), pos(12, "k3")), ("*".to_string(), pos(3, "z\"9"))]);
        let frames: Vec<Out<Value>> = alloc::vec![
            Out::Authenticate {
                auth_token: "abc\u{0}\\".into(),
                content_tokens: tokens.clone(),
                positions: None
            },
            Out::Authenticate {
                auth_token: "x".into(),
                content_tokens: TokenMap::default(),
                positions: None
            },
            Out::Authenticate {
                auth_token: "\u{0}\"\u{e9}".into(),
                content_tokens: [("c".to_string(), "\u{1f}\\/".to_string())].into_iter().collect(),
                positions: Some(alloc::vec![("k\n".to_string(), pos(u64::from(u32::MAX) * 1000, "\u{2}"))]),
            },
            Out::Authenticate {
                auth_token: "x".into(),
                content_tokens: tokens,
                positions: positions.clone()
            },
            Out::Authenticate {
                auth_token: "x".into(),
                content_tokens: TokenMap::default(),
                positions: Some(alloc::vec![])
            },
            Out::AuthenticateWith {
                data: json!({"authToken": "t", "contentTokens": {"c": "1"}}),
                positions: None
            },
            Out::AuthenticateWith {
                data: json!({"authToken": "t", "contentTokens": []}),
                positions: positions.clone()
            },
            Out::AuthenticateWith {
                data: json!({"type": "x", "positions": {"forged": {"offset": 1, "epoch": "f"}}, "authToken": "t"}),
                positions,
            },
            Out::Join { channel: "c".into(), token: "t\u{1}".into() },
            Out::Ping,
            Out::Pong,
            Out::Message { message: odd.clone(), id: Some(7) },
            Out::Message { message: json!({"messageType": "x"}), id: None },
            Out::Publish { channel: "chat_1".into(), message: odd, echo: false, id: Some(4_000_000_000) },
            Out::Publish { channel: "c".into(), message: json!({}), echo: true, id: None },
        ];
        for frame in frames {
            let ours = frame.driver_text();
            let crates = frame.encode();
            let (a, b): (Value, Value) =
                (serde_json::from_str(&ours).unwrap(), serde_json::from_str(&crates).unwrap());
            assert_eq!(a, b, "{ours}");
            assert!(frame.text().starts_with(r#"{"type":"#), "type first: {}", frame.text());
            let maps = matches!(&frame, Out::Authenticate { content_tokens, positions, .. }
                if content_tokens.len() > 1 || positions.as_ref().is_some_and(|p| p.len() > 1));
            if frame.page_value().is_none() && !maps {
                assert_eq!(frame.text(), crates, "byte for byte");
            }
        }
    }

    #[test]
    fn digits_both_ways() {
        for n in [0u64, 7, 10, 4002, 123_456_789_012_345] {
            assert_eq!(digits(n), n.to_string());
            assert_eq!(parse_digits(&n.to_string()), Some(n));
        }
        assert_eq!(digits(u64::MAX), u64::MAX.to_string());
        for bad in ["", "1a", "-1", "1234567890123456", " 1"] {
            assert_eq!(parse_digits(bad), None, "{bad}");
        }
    }
}
