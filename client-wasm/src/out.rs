//! The frames the client sends ([`Out`]) and what it does after a close code ([`policy`]).
//!
//! The protocol crate defines these frames (`ClientFrame`, `ClientRequest`) and the close codes;
//! the client does not link it in the browser (its serde code would be most of the wasm). In
//! the browser `src/js_frames.rs` writes an [`Out`] as a JS object and `JSON.stringify`s it;
//! natively, [`Out::encode`] goes through the protocol crate. Golden tests pin both: the native
//! tests below compare with the crate's encoder and its close-code table, the browser test
//! `frames_encoded_in_js_match_the_protocol_crate` compares the JS encoder with the crate.

use crate::tokens::TokenMap;
use alloc::string::String;
use alloc::vec::Vec;

/// A frame for the server. `M` is a page value (a JS object in the browser).
#[derive(Debug, Clone, PartialEq)]
pub enum Out<M> {
    /// `authenticate` built from the page settings (our shim).
    Authenticate {
        auth_token: String,
        content_tokens: TokenMap,
    },
    /// `authenticate` with the object the page emitted (the io facade: the module's
    /// `{authToken, contentTokens}`), sent with `type` first and its members as they are.
    AuthenticateWith(M),
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
    /// The frame's JSON text, written by the protocol crate.
    pub fn encode(&self) -> String {
        use drupal_push_protocol::ClientFrame;
        use drupal_push_protocol::frames::{
            Authenticate, ClientMessage, ClientRequest, JoinTokenChannel, Publish,
        };
        let id = |id: &Option<u32>| id.map(u64::from);
        match self.clone() {
            Out::Authenticate { auth_token, content_tokens } => {
                let content_tokens = content_tokens.into_iter().collect();
                ClientFrame::Authenticate(Authenticate {
                    auth_token,
                    content_tokens,
                    positions: None,
                    extra: Default::default(),
                })
                .encode()
            }
            Out::AuthenticateWith(object) => {
                // `type` first, then the page's members (as JSON.stringify writes them).
                let mut members = object.as_object().cloned().unwrap_or_default();
                members.remove("type");
                let body = serde_json::Value::Object(members).to_string();
                let text = match &body[1..] {
                    "}" => r#"{"type":"authenticate"}"#.to_owned(),
                    rest => [r#"{"type":"authenticate","#, rest].concat(),
                };
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
