//! What the state machine needs from a server frame: [`Incoming`], generic over the Drupal
//! message payload `M`.
//!
//! The protocol crate's `ServerFrame` is the definition of these frames. Natively (tests,
//! tools) frames are decoded with it and converted with `From<ServerFrame>`. In the browser the
//! glue lets `JSON.parse` build the frame and reads these few members from the JS object
//! (`src/js_frames.rs`): linking serde_json's parser, serde's buffering of internally tagged
//! enums and `serde_json::Value` would more than double the wasm, and the message would be
//! copied into wasm memory only to be turned back into a JS object. A browser test checks that
//! both paths agree on every frame of PROTOCOL.md.

use alloc::string::String;

/// A server frame as the machine sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming<M> {
    Hello {
        socket_id: String,
        heartbeat_ms: u64,
    },
    Authenticated {
        socket_id: String,
        uid: u64,
    },
    /// A Drupal message (the envelope's `message` member), the envelope's `channel`, and
    /// `meta`: what the envelope says about the message (`{channel}`, plus `offset` and
    /// `epoch` when it has them), for channel callbacks.
    Message {
        message: M,
        channel: Option<String>,
        meta: M,
    },
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

#[cfg(feature = "std")]
use drupal_push_protocol::ServerFrame;

#[cfg(feature = "std")]
impl From<ServerFrame> for Incoming<serde_json::Value> {
    fn from(frame: ServerFrame) -> Self {
        match frame {
            ServerFrame::Hello { socket_id, heartbeat_ms, .. } => {
                Incoming::Hello { socket_id: socket_id.0, heartbeat_ms }
            }
            ServerFrame::Authenticated { socket_id, uid, .. } => {
                Incoming::Authenticated { socket_id: socket_id.0, uid: uid.0 }
            }
            ServerFrame::Message(envelope) => {
                let mut meta = serde_json::Map::new();
                meta.insert("channel".into(), envelope.channel.clone().into());
                if let Some(offset) = envelope.offset {
                    meta.insert("offset".into(), offset.into());
                }
                if let Some(epoch) = envelope.epoch {
                    meta.insert("epoch".into(), epoch.into());
                }
                let meta = serde_json::Value::Object(meta);
                Incoming::Message { message: envelope.message, channel: envelope.channel, meta }
            }
            ServerFrame::Error { code, message } => {
                let code = serde_json::to_value(code).ok();
                let code = code.as_ref().and_then(|c| c.as_str()).unwrap_or("unknown");
                Incoming::Error { code: code.to_owned(), message, id: None }
            }
            ServerFrame::Ack { id, result } => Incoming::Ack { id, result },
            ServerFrame::Ping => Incoming::Ping,
            // Positions are not kept by this client yet: a `joined` notice needs no action.
            ServerFrame::Pong | ServerFrame::Joined { .. } => Incoming::Pong,
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

    #[test]
    fn protocol_frames_convert() {
        assert_eq!(
            Incoming::decode(r#"{"type":"hello","socketId":"k3","heartbeatMs":25000,"protocol":1}"#),
            Incoming::Hello { socket_id: "k3".into(), heartbeat_ms: 25000 }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"authenticated","socketId":"k3","uid":"5","channels":[]}"#),
            Incoming::Authenticated { socket_id: "k3".into(), uid: 5 }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"message","channel":"c","message":{"a":[1]}}"#),
            Incoming::Message {
                message: json!({"a": [1]}),
                channel: Some("c".into()),
                meta: json!({"channel": "c"})
            }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"message","channel":"c","message":{},"offset":4,"epoch":"e"}"#),
            Incoming::Message {
                message: json!({}),
                channel: Some("c".into()),
                meta: json!({"channel": "c", "offset": 4, "epoch": "e"})
            }
        );
        assert_eq!(
            Incoming::decode(r#"{"type":"message","message":{"broadcast":true}}"#),
            Incoming::Message {
                message: json!({"broadcast": true}),
                channel: None,
                meta: json!({"channel": null})
            }
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
