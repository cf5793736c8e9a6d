//! Frames as the browser reads and writes them.
//!
//! Server frames: `JSON.parse` on the frame text (no copy into wasm memory), then the few
//! members the machine needs, read from the JS object; the message stays the JS object page
//! callbacks receive. See [`crate::incoming`] for why, and the browser test
//! `frames_parsed_in_js_match_the_protocol_crate` for the agreement with the protocol crate.
//!
//! Client frames: the protocol crate's [`ClientFrame`] serialised by serde-wasm-bindgen into a
//! plain JS object, then `JSON.stringify`: the same JSON as `ClientFrame::encode` (a browser
//! test checks it byte for byte) without linking serde_json's writer and its float tables.

use crate::incoming::Incoming;
use crate::page::get;
use drupal_push_protocol::ClientFrame;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse` taking the JS string as it came from the WebSocket.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// `JSON.stringify`, keeping the result a JS string.
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;
}

/// The JSON text of a client frame, as a JS string.
pub fn encode(frame: &ClientFrame) -> Result<JsValue, JsValue> {
    let object = frame.serialize(&serde_wasm_bindgen::Serializer::json_compatible())?;
    json_stringify(&object)
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
        Some(n) => (n >= 0.0 && n.fract() == 0.0 && n < 9.0e15).then_some(n as u64),
        None => drupal_push_protocol::Uid::parse(&v.as_string()?).map(|uid| uid.0),
    }
}

/// The [`Incoming`] view of a parsed frame.
pub fn from_object(frame: &JsValue) -> Incoming<JsValue> {
    let text = |key: &str| get(frame, key).as_string();
    let kind = text("type").unwrap_or_default();
    let invalid = |what: &str| Incoming::Invalid([&kind, " frame without ", what].concat());
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
            m => Incoming::Message(m),
        },
        "error" => Incoming::Error {
            code: text("code").unwrap_or_else(|| "unknown".into()),
            message: text("message").unwrap_or_default(),
        },
        "ping" => Incoming::Ping,
        "pong" => Incoming::Pong,
        _ => Incoming::Invalid(["unknown frame type '", &kind, "'"].concat()),
    }
}
