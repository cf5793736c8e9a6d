//! Frames as the browser reads and writes them.
//!
//! Server frames: `JSON.parse` on the frame text (no copy into wasm memory), then the few
//! members the machine needs, read from the JS object; the message stays the JS object page
//! callbacks receive. See [`crate::incoming`] for why, and the browser test
//! `frames_parsed_in_js_match_the_protocol_crate` for the agreement with the protocol crate.
//!
//! Client frames: an [`Out`] written as a plain JS object (members in the protocol crate's
//! order), then `JSON.stringify`: the same JSON as the crate's encoders (the browser test
//! `frames_encoded_in_js_match_the_protocol_crate` checks it byte for byte) without linking
//! serde.

use crate::incoming::Incoming;
use crate::js::{get, json_parse, json_stringify, set};
use crate::out::{Out, parse_digits, whole};
use alloc::string::String;
use js_sys::Object;
use wasm_bindgen::{JsCast, JsValue};

/// The JSON text of a client frame, as a JS string.
pub fn encode(frame: &Out<JsValue>) -> Result<JsValue, JsValue> {
    let o = Object::new();
    let kind = |name: &str| set(&o, "type", &JsValue::from_str(name));
    let text = |key: &str, value: &str| set(&o, key, &JsValue::from_str(value));
    let id = |id: &Option<u32>| {
        if let Some(id) = id {
            set(&o, "id", &JsValue::from(*id));
        }
    };
    match frame {
        Out::Authenticate { auth_token, content_tokens } => {
            kind("authenticate");
            text("authToken", auth_token);
            let tokens = Object::new();
            for (channel, token) in content_tokens.iter() {
                set(&tokens, channel, &JsValue::from_str(token));
            }
            set(&o, "contentTokens", &tokens);
        }
        Out::AuthenticateWith(data) => {
            kind("authenticate");
            if data.is_object() {
                for key in Object::keys(data.unchecked_ref::<Object>()).iter() {
                    if let Some(key) = key.as_string().filter(|k| k != "type") {
                        set(&o, &key, &get(data, &key));
                    }
                }
            }
        }
        Out::Join { channel, token } => {
            kind("join-token-channel");
            text("channel", channel);
            text("contentToken", token);
        }
        Out::Ping => kind("ping"),
        Out::Pong => kind("pong"),
        Out::Message { message, id: i } => {
            kind("message");
            set(&o, "message", message);
            id(i);
        }
        Out::Publish { channel, message, echo, id: i } => {
            kind("publish");
            text("channel", channel);
            set(&o, "message", message);
            set(&o, "echo", &JsValue::from_bool(*echo));
            id(i);
        }
    }
    json_stringify(&o)
}

/// Parses a text frame (a JS string).
pub fn parse(text: &JsValue) -> Incoming<JsValue> {
    match json_parse(text) {
        Ok(frame) if frame.is_object() => from_object(&frame),
        _ => Incoming::Invalid("not a JSON object".into()),
    }
}

/// A non-negative integer, as `u64`.
/// (A string of digits too, as Drupal 7 sends uids; parsed as an integer, never as a float,
/// which would link the float parser's tables.)
fn integer(v: &JsValue) -> Option<u64> {
    match v.as_f64() {
        Some(n) => whole(n),
        None => parse_digits(&v.as_string()?),
    }
}

/// The [`Incoming`] view of a parsed frame.
pub fn from_object(frame: &JsValue) -> Incoming<JsValue> {
    let text = |key: &str| get(frame, key).as_string();
    let kind = text("type").unwrap_or_default();
    let invalid = |what: &str| Incoming::Invalid(crate::out::cat(&[&kind, " frame without ", what]));
    match kind.as_str() {
        "hello" => match (text("socketId"), integer(&get(frame, "heartbeatMs"))) {
            (Some(socket_id), Some(heartbeat_ms)) => Incoming::Hello { socket_id, heartbeat_ms },
            _ => invalid("socketId or heartbeatMs"),
        },
        "authenticated" => {
            let uid = get(frame, "uid");
            let uid = if uid.is_null() || uid.as_bool() == Some(false) { Some(0) } else { integer(&uid) };
            match (text("socketId"), uid) {
                (Some(socket_id), Some(uid)) => Incoming::Authenticated { socket_id, uid },
                _ => invalid("socketId or uid"),
            }
        }
        "message" => match get(frame, "message") {
            m if m.is_undefined() => invalid("message"),
            message => {
                let channel: Option<String> = text("channel");
                let meta = Object::new();
                set(&meta, "channel", &channel.as_deref().map_or(JsValue::NULL, JsValue::from_str));
                for key in ["offset", "epoch"] {
                    let v = get(frame, key);
                    if !v.is_undefined() {
                        set(&meta, key, &v);
                    }
                }
                Incoming::Message { message, channel, meta: meta.into() }
            }
        },
        "ack" => match integer(&get(frame, "id")) {
            Some(id) => Incoming::Ack { id, result: get(frame, "result") },
            None => invalid("id"),
        },
        "error" => Incoming::Error {
            code: text("code").unwrap_or_else(|| "unknown".into()),
            message: text("message").unwrap_or_default(),
            id: integer(&get(frame, "id")),
        },
        "ping" => Incoming::Ping,
        "pong" => Incoming::Pong,
        _ => Incoming::Invalid(crate::out::cat(&["unknown frame type '", &kind, "'"])),
    }
}
