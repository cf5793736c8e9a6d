//! What a browser may ask of the server besides receiving (PROTOCOL.md, "Client requests"):
//! messages for Drupal's `/nodejs/message` (`clientMessages`, a list of message types) and
//! publishes to client-writable channels (`clientWritableChannels`, channel patterns), within
//! per-socket limits (`clientRequestRatePerSocket`, `clientRequestBurstPerSocket`,
//! `clientRequestMaxBytes`). Both are off by default.
//!
//! What a publish may carry ([`Policy::check_publish`]): members reach other pages, whose
//! `runCallbacks` (the module's nodejs.js, and our client's dispatch with the same rules) acts
//! on `callback`, `presenceNotification`, `contentChannelNotification` and `clientSocketId`.
//! The last three are refused (`reserved-member`): they are the server's and Drupal's to set. A
//! `callback` must name only callbacks of `clientPublishCallbacks` (`callback-not-allowed`);
//! without one the server sets `callback: []`, which runs no callback at all: otherwise the
//! module's fallback would run *every* callback of the page (`nodejsNotify` renders
//! `data.body` as HTML). Channel listeners (`onChannel`) get every publish either way.
//!
//! [`Policy`] is built once from the configuration's [`PolicyRules`] (which it validates); each
//! socket that sends a request gets a token bucket ([`take_per_socket`]), created on its first
//! request so that sockets that never send one pay nothing for it. Both kinds of request draw on the same
//! bucket: the limit is on what one socket makes the server do, whatever it asks.

use crate::edge::limits::{TokenBucket, take_per_socket};
use crate::error::ConfigError;
use drupal_push_protocol::ErrorCode;
use drupal_push_protocol::backend::RESERVED_MESSAGE_TYPES;
use drupal_push_protocol::frames::{CALLBACK, RESERVED_PUBLISH_MEMBERS, SERVER_CALLBACKS};
use drupal_push_protocol::names::MAX_CHANNEL_NAME_LEN;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::time::Instant;

/// The message types a browser may send to Drupal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Types {
    None,
    /// `["*"]`: every type but the reserved ones.
    Any,
    Only(HashSet<String>),
}

/// A refusal: the `error` frame's code and text.
pub type Refusal = (ErrorCode, String);

/// The configuration's keys for client requests, as written: [`Policy::new`] checks them.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRules<'a> {
    /// `clientMessages`.
    pub messages: &'a [String],
    /// `clientWritableChannels`.
    pub writable_channels: &'a [String],
    /// `clientPublishCallbacks`.
    pub publish_callbacks: &'a [String],
    /// `clientRequestRatePerSocket`.
    pub rate_per_socket: f64,
    /// `clientRequestBurstPerSocket`.
    pub burst_per_socket: u32,
    /// `clientRequestMaxBytes`.
    pub max_bytes: usize,
}

/// The server's rules for client requests.
#[derive(Debug, Clone)]
pub struct Policy {
    types: Types,
    writable: Vec<String>,
    /// `clientPublishCallbacks`.
    callbacks: HashSet<String>,
    rate: f64,
    burst: f64,
    max_bytes: usize,
}

impl Policy {
    /// The rules of `rules` (the config's keys); the error names the key that is wrong.
    pub fn new(rules: &PolicyRules<'_>) -> Result<Policy, ConfigError> {
        let mut only = HashSet::new();
        let mut any = false;
        for t in rules.messages {
            if t.is_empty() {
                return Err(ConfigError::new("clientMessages", "a message type is empty"));
            }
            if RESERVED_MESSAGE_TYPES.contains(&t.as_str()) {
                return Err(ConfigError::new(
                    "clientMessages",
                    format!(
                        "{t:?} is a message type only the server sends Drupal; browsers may never send it"
                    ),
                ));
            }
            if t == "*" {
                any = true;
            } else {
                only.insert(t.clone());
            }
        }
        let types = match (any, only.is_empty()) {
            (true, _) => Types::Any,
            (false, true) => Types::None,
            (false, false) => Types::Only(only),
        };
        for p in rules.writable_channels {
            check_pattern(p).map_err(|e| ConfigError::new("clientWritableChannels", format!("{p:?} {e}")))?;
        }
        for c in rules.publish_callbacks {
            if c.is_empty() {
                return Err(ConfigError::new("clientPublishCallbacks", "a callback name is empty"));
            }
            if SERVER_CALLBACKS.contains(&c.as_str()) {
                return Err(ConfigError::new(
                    "clientPublishCallbacks",
                    format!("{c:?} is a callback only the server's own messages name"),
                ));
            }
        }
        let rate = rules.rate_per_socket;
        if !rate.is_finite() || rate < 0.0 {
            return Err(ConfigError::new(
                "clientRequestRatePerSocket",
                format!("{rate} must be a number of at least 0 (0: no limit)"),
            ));
        }
        if rate > 0.0 && rules.burst_per_socket == 0 {
            return Err(ConfigError::new(
                "clientRequestBurstPerSocket",
                "must be at least 1 when clientRequestRatePerSocket is set",
            ));
        }
        // Above maxFrameSize the frame closes the connection (1009) before it is read as a
        // request, so a larger value is harmless and simply never reached: not an error, so that
        // a small maxFrameSize needs no change here.
        if rules.max_bytes == 0 {
            return Err(ConfigError::new("clientRequestMaxBytes", "must be at least 1 byte"));
        }
        Ok(Policy {
            types,
            writable: rules.writable_channels.to_vec(),
            callbacks: rules.publish_callbacks.iter().cloned().collect(),
            rate,
            burst: f64::from(rules.burst_per_socket),
            max_bytes: rules.max_bytes,
        })
    }

    /// Whether any message type may go to Drupal.
    pub fn messages_enabled(&self) -> bool {
        self.types != Types::None
    }

    /// Whether a message of type `t` may go to Drupal.
    pub fn check_message_type(&self, t: &str) -> Result<(), Refusal> {
        if RESERVED_MESSAGE_TYPES.contains(&t) {
            return Err((
                ErrorCode::ReservedMessageType,
                format!("message type {t:?} is reserved for the server's own messages to Drupal"),
            ));
        }
        let allowed = match &self.types {
            Types::None => false,
            Types::Any => true,
            Types::Only(types) => types.contains(t),
        };
        if allowed {
            Ok(())
        } else {
            Err((ErrorCode::MessageTypeNotAllowed, format!("message type {t:?} is not in clientMessages")))
        }
    }

    /// Whether members of `channel` may publish to it.
    pub fn is_writable(&self, channel: &str) -> bool {
        self.writable.iter().any(|p| matches(p, channel))
    }

    /// Checks the members of a publish's message (see the module docs): refuses reserved
    /// members and callbacks not in `clientPublishCallbacks`, and sets `callback: []` when the
    /// message names none (missing or `null`).
    pub fn check_publish(&self, message: &mut Map<String, Value>) -> Result<(), Refusal> {
        if let Some(member) = RESERVED_PUBLISH_MEMBERS.iter().find(|m| message.contains_key(**m)) {
            return Err((
                ErrorCode::ReservedMember,
                format!(
                    "member {member:?} is set only by the server and Drupal; a page's publish may not carry it"
                ),
            ));
        }
        let allowed = |v: &Value| v.as_str().is_some_and(|name| self.callbacks.contains(name));
        match message.get(CALLBACK) {
            None | Some(Value::Null) => {
                message.insert(CALLBACK.into(), Value::Array(Vec::new()));
                Ok(())
            }
            Some(Value::Array(names)) if names.iter().all(allowed) => Ok(()),
            Some(name) if allowed(name) => Ok(()),
            Some(other) => {
                let bad = match other {
                    Value::Array(names) => names.iter().find(|n| !allowed(n)).unwrap_or(other),
                    _ => other,
                };
                Err((
                    ErrorCode::CallbackNotAllowed,
                    format!("callback {bad} is not in clientPublishCallbacks, the callbacks pages may name"),
                ))
            }
        }
    }

    /// Checks a request frame of `len` bytes against the socket's allowance (creating it on the
    /// first request); takes a token when the size is acceptable.
    pub fn admit(
        &self,
        allowance: &mut Option<Box<TokenBucket>>,
        len: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        if !take_per_socket(allowance, self.rate, self.burst, now) {
            return Err((
                ErrorCode::RateLimited,
                format!(
                    "more than {} requests per second (bursts of {}): this one was dropped",
                    self.rate, self.burst
                ),
            ));
        }
        if len > self.max_bytes {
            return Err((
                ErrorCode::MessageTooLarge,
                format!("the request is {len} bytes, more than the {} this server accepts", self.max_bytes),
            ));
        }
        Ok(())
    }
}

/// A pattern is a channel name in which `*` stands for any run of characters.
fn check_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.len() > MAX_CHANNEL_NAME_LEN {
        return Err(format!("is longer than the {MAX_CHANNEL_NAME_LEN} characters of a channel name"));
    }
    match p.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '*')) {
        Some(c) => Err(format!("contains {c:?}; a pattern is letters a-z, digits, '_' and '*'")),
        None => Ok(()),
    }
}

/// Whether `name` matches `pattern` (`*`: any run of characters, including none).
fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileFormat, load_file_text};
    use std::time::Duration;

    fn policy(toml: &str) -> Result<Policy, String> {
        load_file_text(FileFormat::Toml, &format!("serviceKey = \"k\"\n{toml}"))
            .map(|(s, _)| s.conn.requests)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn patterns() {
        for (p, name, yes) in [
            ("chat_*", "chat_1", true),
            ("chat_*", "chat_", true),
            ("chat_*", "chat", false),
            ("chat_*", "xchat_1", false),
            ("*", "anything", true),
            ("room_*_public", "room_7_public", true),
            ("room_*_public", "room_7_private", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "exact_not", false),
        ] {
            assert_eq!(matches(p, name), yes, "{p} ~ {name}");
        }
    }

    #[test]
    fn off_by_default() {
        let p = policy("").unwrap();
        assert!(!p.messages_enabled());
        assert!(!p.is_writable("chat_1"));
        assert_eq!(p.check_message_type("chat").unwrap_err().0, ErrorCode::MessageTypeNotAllowed);
    }

    #[test]
    fn types_and_reserved_types() {
        let p = policy("clientMessages = [\"chat\", \"saveDraft\"]").unwrap();
        assert!(p.messages_enabled());
        assert!(p.check_message_type("chat").is_ok());
        assert_eq!(p.check_message_type("other").unwrap_err().0, ErrorCode::MessageTypeNotAllowed);
        let any = policy("clientMessages = [\"*\"]").unwrap();
        assert!(any.check_message_type("whatever").is_ok());
        for reserved in RESERVED_MESSAGE_TYPES {
            assert_eq!(any.check_message_type(reserved).unwrap_err().0, ErrorCode::ReservedMessageType);
        }
    }

    #[test]
    fn bad_settings_name_the_key() {
        for (toml, key) in [
            ("clientMessages = [\"userOnline\"]", "clientMessages: \"userOnline\" is a message type only"),
            ("clientMessages = [\"\"]", "clientMessages: a message type is empty"),
            ("clientWritableChannels = [\"chat-*\"]", "clientWritableChannels: \"chat-*\" contains '-'"),
            ("clientWritableChannels = [\"\"]", "clientWritableChannels: \"\" is empty"),
            ("clientRequestRatePerSocket = -1", "clientRequestRatePerSocket"),
            ("clientRequestBurstPerSocket = 0", "clientRequestBurstPerSocket"),
            ("clientRequestMaxBytes = 0", "clientRequestMaxBytes"),
            ("clientRequestMaxBytes = \"big\"", "clientRequestMaxBytes"),
            ("clientMessages = 3", "clientMessages"),
            ("clientPublishCallbacks = [\"\"]", "clientPublishCallbacks: a callback name is empty"),
            (
                "clientPublishCallbacks = [\"clientAuthenticated\"]",
                "clientPublishCallbacks: \"clientAuthenticated\" is a callback only the server",
            ),
        ] {
            let e = policy(toml).unwrap_err();
            assert!(e.contains(key), "{toml}: {e}");
        }
        policy("clientRequestRatePerSocket = 0\nclientRequestBurstPerSocket = 0").unwrap();
        policy("maxFrameSize = \"2kb\"").expect("a small maxFrameSize caps the default request size");
    }

    fn publish(p: &Policy, message: Value) -> Result<Value, ErrorCode> {
        let Value::Object(mut m) = message else { panic!("an object") };
        p.check_publish(&mut m).map(|()| Value::Object(m)).map_err(|(code, _)| code)
    }

    /// Security review finding 5: a member's publish reached the others with whatever members
    /// it had, and their pages' runCallbacks acted on them.
    #[test]
    fn a_publish_carries_no_reserved_member_and_only_allowed_callbacks() {
        use serde_json::json;
        let none = policy("").unwrap();
        let chat = policy("clientPublishCallbacks = [\"chat\", \"typing\"]").unwrap();
        for p in [&none, &chat] {
            for member in RESERVED_PUBLISH_MEMBERS {
                for value in [json!({"uid": 1, "event": "online"}), json!(null), json!("x")] {
                    let m = json!({"text": "hi", member: value});
                    assert_eq!(publish(p, m), Err(ErrorCode::ReservedMember), "{member}");
                }
            }
            assert_eq!(publish(p, json!({"data": 1})), Ok(json!({"data": 1, "callback": []})), "no callback");
            assert_eq!(publish(p, json!({"callback": null})), Ok(json!({"callback": []})));
            assert_eq!(publish(p, json!({"callback": []})), Ok(json!({"callback": []})));
            for bad in
                [json!("nodejsNotify"), json!(["chat", "nodejsNotify"]), json!(""), json!(false), json!(0)]
            {
                let m = json!({"callback": bad});
                assert_eq!(publish(p, m), Err(ErrorCode::CallbackNotAllowed), "{bad}");
            }
        }
        assert_eq!(
            publish(&none, json!({"callback": "chat"})),
            Err(ErrorCode::CallbackNotAllowed),
            "default: none"
        );
        assert_eq!(publish(&chat, json!({"callback": "chat"})), Ok(json!({"callback": "chat"})));
        assert_eq!(
            publish(&chat, json!({"callback": ["chat", "typing"]})),
            Ok(json!({"callback": ["chat", "typing"]}))
        );
        let (code, text) =
            chat.check_publish(json!({"callback": "nodejsNotify"}).as_object_mut().unwrap()).unwrap_err();
        assert_eq!(code, ErrorCode::CallbackNotAllowed);
        assert!(text.contains("\"nodejsNotify\" is not in clientPublishCallbacks"), "{text}");
    }

    #[test]
    fn rate_then_size() {
        let p = policy(
            "clientRequestRatePerSocket = 2\nclientRequestBurstPerSocket = 3\nclientRequestMaxBytes = 100",
        )
        .unwrap();
        let t = Instant::now();
        let mut a = None;
        for _ in 0..3 {
            assert!(p.admit(&mut a, 10, t).is_ok());
        }
        assert_eq!(p.admit(&mut a, 10, t).unwrap_err().0, ErrorCode::RateLimited);
        let later = t + Duration::from_millis(500);
        assert_eq!(p.admit(&mut a, 101, later).unwrap_err().0, ErrorCode::MessageTooLarge);
        assert_eq!(
            p.admit(&mut a, 100, later).unwrap_err().0,
            ErrorCode::RateLimited,
            "the large one took the token"
        );
        let no_limit = policy("clientRequestRatePerSocket = 0").unwrap();
        let mut none = None;
        for _ in 0..1000 {
            assert!(no_limit.admit(&mut none, 10, t).is_ok());
        }
        assert!(none.is_none(), "no bucket without a rate");
    }
}
