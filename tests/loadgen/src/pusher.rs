//! The Pusher protocol (version 7) as Sockudo speaks it, for the load generator: the app's
//! credentials, the signatures (a private channel's `auth` string, the signed query string of the
//! HTTP API), and the client frames.
//!
//! * WebSocket: `ws://HOST:PORT/app/<key>?protocol=7`. The server opens with
//!   `pusher:connection_established` (its `data` is a JSON *string* holding `socket_id` and
//!   `activity_timeout`); the client sends `pusher:subscribe` (with `auth` for a `private-`
//!   channel) and gets `pusher_internal:subscription_succeeded`; either side may send
//!   `pusher:ping`, answered by `pusher:pong`.
//! * Private channels: the page asks its own backend (here the fake Drupal's `/pusher/auth`)
//!   for `auth = "<key>:" + hex(HMAC-SHA256(secret, "<socket_id>:<channel>"))`.
//! * HTTP API: `POST /apps/<id>/events` with `auth_key`, `auth_timestamp`, `auth_version=1.0`,
//!   `body_md5` and `auth_signature = hex(HMAC-SHA256(secret, "POST\n<path>\n<sorted query>"))`.

use serde_json::{Value, json};

pub const APP_ID: &str = "bench";
pub const APP_KEY: &str = "bench-app-key";
pub const APP_SECRET: &str = "bench-app-secret";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256_hex(secret: &str, text: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex(ring::hmac::sign(&key, text.as_bytes()).as_ref())
}

/// The `auth` member of a `pusher:subscribe` to private channel `channel`.
pub fn channel_auth(key: &str, secret: &str, socket_id: &str, channel: &str) -> String {
    format!("{key}:{}", hmac_sha256_hex(secret, &format!("{socket_id}:{channel}")))
}

/// The signed query string of an HTTP API request (`method` `path` with `body`) at `timestamp`
/// (Unix seconds).
pub fn signed_query(
    key: &str,
    secret: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: u64,
) -> String {
    // Already in the sorted order the signature needs.
    let mut query = format!("auth_key={key}&auth_timestamp={timestamp}&auth_version=1.0");
    if !body.is_empty() {
        query.push_str(&format!("&body_md5={:x}", md5::compute(body)));
    }
    let signature = hmac_sha256_hex(secret, &format!("{method}\n{path}\n{query}"));
    format!("{query}&auth_signature={signature}")
}

/// The body of `POST /apps/<id>/events`: Pusher carries the event's data as a JSON string.
pub fn event_body(channel: &str, data: &Value) -> String {
    json!({"name": "bench", "channels": [channel], "data": data.to_string()}).to_string()
}

/// What the client makes of a server frame.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// `pusher:connection_established`: the socket id and the activity timeout, seconds.
    Established {
        socket_id: String,
        activity_timeout: u64,
    },
    Subscribed,
    Ping,
    Pong,
    /// `pusher:error` or `pusher:subscription_error`, with its text.
    Error(String),
    Other(String),
}

pub fn decode(text: &str) -> Incoming {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Incoming::Other(format!("not JSON: {}", short(text)));
    };
    // `data` is a JSON string in protocol 7; accept an object too.
    let data = match &frame["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
        other => other.clone(),
    };
    match frame["event"].as_str().unwrap_or("") {
        "pusher:connection_established" => match data["socket_id"].as_str() {
            Some(id) => Incoming::Established {
                socket_id: id.to_owned(),
                activity_timeout: data["activity_timeout"].as_u64().unwrap_or(120),
            },
            None => Incoming::Error(format!("connection_established without socket_id: {}", short(text))),
        },
        "pusher_internal:subscription_succeeded" => Incoming::Subscribed,
        "pusher:ping" => Incoming::Ping,
        "pusher:pong" => Incoming::Pong,
        "pusher:error" | "pusher:subscription_error" => Incoming::Error(short(text)),
        _ => Incoming::Other(short(text)),
    }
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}

pub fn subscribe(channel: &str, auth: Option<&str>) -> String {
    let mut data = json!({"channel": channel});
    if let Some(auth) = auth {
        data["auth"] = Value::String(auth.to_owned());
    }
    json!({"event": "pusher:subscribe", "data": data}).to_string()
}

pub fn ping() -> String {
    json!({"event": "pusher:ping", "data": {}}).to_string()
}

pub fn pong() -> String {
    json!({"event": "pusher:pong", "data": {}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked examples of Pusher's authentication documentation.
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";

    #[test]
    fn private_channel_auth_matches_the_documented_example() {
        assert_eq!(
            channel_auth(KEY, SECRET, "1234.1234", "private-foobar"),
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
    }

    #[test]
    fn api_signature_matches_the_documented_example() {
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let query = signed_query(KEY, SECRET, "POST", "/apps/3/events", body.as_bytes(), 1_353_088_179);
        assert_eq!(
            query,
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
        let get = signed_query(KEY, SECRET, "GET", "/apps/3/channels", b"", 1_353_088_179);
        assert!(!get.contains("body_md5"), "{get}");
    }

    #[test]
    fn frames_are_decoded() {
        let established = r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}"#;
        assert_eq!(
            decode(established),
            Incoming::Established { socket_id: "123.456".into(), activity_timeout: 30 }
        );
        let ok = r#"{"event":"pusher_internal:subscription_succeeded","channel":"bench","data":"{}"}"#;
        assert_eq!(decode(ok), Incoming::Subscribed);
        assert_eq!(decode(r#"{"event":"pusher:ping","data":{}}"#), Incoming::Ping);
        assert!(matches!(decode(r#"{"event":"pusher:error","data":{"code":4001}}"#), Incoming::Error(_)));
        assert!(matches!(decode("nope"), Incoming::Other(_)));
        let sub: Value = serde_json::from_str(&subscribe("private-bench", Some("k:s"))).unwrap();
        assert_eq!(
            sub,
            json!({"event": "pusher:subscribe", "data": {"channel": "private-bench", "auth": "k:s"}})
        );
    }

    #[test]
    fn event_data_is_a_json_string() {
        let body: Value = serde_json::from_str(&event_body("bench", &json!({"a": 1}))).unwrap();
        assert_eq!(body["data"], Value::String(r#"{"a":1}"#.into()));
        assert_eq!(body["channels"], json!(["bench"]));
    }
}
