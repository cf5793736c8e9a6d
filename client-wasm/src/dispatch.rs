//! Dispatch decisions of `Drupal.Nodejs.runCallbacks(message)`, as the module's nodejs.js makes
//! them (spec 4.2):
//!
//! 1. a message whose `clientSocketId` is this page's socket id is skipped (the page caused it);
//! 2. a truthy `callback` (a name or a list of names) runs exactly those entries of
//!    `Drupal.Nodejs.callbacks`; a single name is first wrapped into a one-element array on the
//!    message object itself;
//! 3. else a defined `presenceNotification` runs every `presenceCallbacks` entry;
//! 4. else a defined `contentChannelNotification` runs every
//!    `contentChannelNotificationCallbacks` entry;
//! 5. else every entry of `callbacks` runs.
//!
//! After those rules, and whatever they decided, the listeners of drupal-push run
//! ([`listeners`]): `Drupal.Nodejs.channelCallbacks` whose pattern matches the envelope's
//! `channel` ([`channel_matches`]: the exact name, or a prefix ending in `*`), or, for a
//! broadcast (no envelope channel, `broadcast` truthy), `Drupal.Nodejs.onBroadcast` functions.
//! The self-skip of rule 1 applies to them too.
//!
//! This module only decides; the browser glue looks the registries up at dispatch time (so
//! callbacks registered late are found) and calls them. [`MessageView`] is the part of a message
//! the decision reads, built from JSON here and from a JS object by the glue; it is taken before
//! the module's rules run, since rule 2 changes the message.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
#[cfg(feature = "std")]
use serde_json::Value;

/// The `callback` member of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackField {
    /// Missing or falsy (`null`, `false`, `0`, `""`).
    Absent,
    /// A single name (it gets wrapped into an array).
    One(String),
    /// A list of names (or another truthy value, which names nothing).
    Many(Vec<String>),
}

/// What the dispatch decision looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub callback: CallbackField,
    /// `presenceNotification` is present (even `null` counts as defined).
    pub presence_notification: bool,
    /// `contentChannelNotification` is present.
    pub content_channel_notification: bool,
    /// `clientSocketId` when it is a string.
    pub client_socket_id: Option<String>,
    /// `broadcast` is truthy (Drupal published it to everyone).
    pub broadcast: bool,
}

/// Which drupal-push listeners a delivered message reaches, after the module's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listeners {
    /// None: the page's own message, or a server notice without a channel (presence,
    /// `clientAuthenticated`).
    None,
    /// `channelCallbacks` whose pattern matches this channel.
    Channel(String),
    /// `onBroadcast` functions.
    Broadcast,
}

/// Whether a `channelCallbacks` key matches `channel`: the same name, or, when the key ends in
/// `*`, a channel starting with what comes before it (`chat_*`; `*` alone matches every
/// channel, never a broadcast).
pub fn channel_matches(pattern: &str, channel: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => channel.starts_with(prefix),
        None => pattern == channel,
    }
}

/// The listeners of a message that arrived in an envelope with this `channel`.
pub fn listeners(channel: Option<&str>, message: &MessageView, own_socket_id: Option<&str>) -> Listeners {
    listeners_for(channel, message.broadcast, message.client_socket_id.as_deref(), own_socket_id)
}

/// [`listeners`] from the two members of the message it reads: `broadcast` (truthy) and
/// `clientSocketId` (`sender`, when a string).
pub fn listeners_for(
    channel: Option<&str>,
    broadcast: bool,
    sender: Option<&str>,
    own_socket_id: Option<&str>,
) -> Listeners {
    if is_own(sender, own_socket_id) {
        return Listeners::None;
    }
    match channel {
        Some(channel) => Listeners::Channel(channel.into()),
        None if broadcast => Listeners::Broadcast,
        None => Listeners::None,
    }
}

fn is_own(sender: Option<&str>, own_socket_id: Option<&str>) -> bool {
    matches!((own_socket_id, sender), (Some(own), Some(from)) if !own.is_empty() && own == from)
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The message came from this page's own action.
    SelfSkip,
    /// Only the named `callbacks`; `wrap` says the single name must be turned into an array on
    /// the message before the callbacks see it.
    Named { names: Vec<String>, wrap: bool },
    /// Every `presenceCallbacks` entry.
    Presence,
    /// Every `contentChannelNotificationCallbacks` entry.
    ContentChannel,
    /// Every `callbacks` entry.
    All,
}

/// Decides where `message` goes on a page whose socket id is `own_socket_id`.
pub fn route(message: &MessageView, own_socket_id: Option<&str>) -> Route {
    if is_own(message.client_socket_id.as_deref(), own_socket_id) {
        return Route::SelfSkip;
    }
    match &message.callback {
        CallbackField::One(name) => Route::Named { names: vec![name.clone()], wrap: true },
        CallbackField::Many(names) => Route::Named { names: names.clone(), wrap: false },
        CallbackField::Absent if message.presence_notification => Route::Presence,
        CallbackField::Absent if message.content_channel_notification => Route::ContentChannel,
        CallbackField::Absent => Route::All,
    }
}

/// [`route`]'s [`Route::code`] for a message described by [`flags`] (`bits`) and its
/// `clientSocketId` (`sender`), without building the route (the browser's `runCallbacks`
/// needs only the code; this keeps the allocations of [`Route::Named`] out of the wasm).
pub fn route_code(bits: u32, sender: Option<&str>, own_socket_id: Option<&str>) -> u32 {
    let has = |flag: u32| bits & flag != 0;
    if is_own(sender, own_socket_id) {
        0
    } else if has(flags::ONE_CALLBACK) {
        1
    } else if has(flags::MANY_CALLBACKS) {
        2
    } else if has(flags::PRESENCE) {
        3
    } else if has(flags::CONTENT_CHANNEL) {
        4
    } else {
        5
    }
}

/// Bits of [`MessageView::from_flags`], as `drupal-js/src/page.js` computes them.
pub mod flags {
    /// `callback` is a truthy string.
    pub const ONE_CALLBACK: u32 = 1;
    /// `callback` is another truthy value (a list of names, or something naming nothing).
    pub const MANY_CALLBACKS: u32 = 2;
    /// `presenceNotification` is defined.
    pub const PRESENCE: u32 = 4;
    /// `contentChannelNotification` is defined.
    pub const CONTENT_CHANNEL: u32 = 8;
    /// `broadcast` is truthy.
    pub const BROADCAST: u32 = 16;
}

impl MessageView {
    /// The view the browser driver describes with [`flags`] bits and the message's
    /// `clientSocketId` (when a string). A list of names is left to the driver, which walks the
    /// message's own `callback` array after [`Route::Named`].
    pub fn from_flags(bits: u32, sender: Option<String>) -> Self {
        let has = |flag: u32| bits & flag != 0;
        let callback = if has(flags::ONE_CALLBACK) {
            CallbackField::One(String::new())
        } else if has(flags::MANY_CALLBACKS) {
            CallbackField::Many(Vec::new())
        } else {
            CallbackField::Absent
        };
        MessageView {
            callback,
            presence_notification: has(flags::PRESENCE),
            content_channel_notification: has(flags::CONTENT_CHANNEL),
            client_socket_id: sender,
            broadcast: has(flags::BROADCAST),
        }
    }
}

impl Route {
    /// The number the browser driver acts on: 0 skip, 1 the named callbacks after wrapping a
    /// single name into an array, 2 the named callbacks, 3 presence, 4 content channel, 5 all.
    pub fn code(&self) -> u32 {
        match self {
            Route::SelfSkip => 0,
            Route::Named { wrap: true, .. } => 1,
            Route::Named { wrap: false, .. } => 2,
            Route::Presence => 3,
            Route::ContentChannel => 4,
            Route::All => 5,
        }
    }
}

impl Listeners {
    /// The number the browser driver acts on: 0 none, 1 channel callbacks, 2 broadcast ones.
    pub fn code(&self) -> u32 {
        match self {
            Listeners::None => 0,
            Listeners::Channel(_) => 1,
            Listeners::Broadcast => 2,
        }
    }
}

/// JavaScript truthiness of a JSON value.
#[cfg(feature = "std")]
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A callback name as a property key: a string, or a non-negative integer as its digits
/// (other values name nothing).
#[cfg(feature = "std")]
pub fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

#[cfg(feature = "std")]
impl MessageView {
    /// The view of a JSON message.
    pub fn from_json(message: &Value) -> Self {
        let callback = match message.get("callback") {
            Some(v) if !truthy(v) => CallbackField::Absent,
            None => CallbackField::Absent,
            Some(Value::String(s)) => CallbackField::One(s.clone()),
            Some(Value::Array(items)) => CallbackField::Many(items.iter().filter_map(key_of).collect()),
            Some(_) => CallbackField::Many(Vec::new()),
        };
        MessageView {
            callback,
            presence_notification: message.get("presenceNotification").is_some(),
            content_channel_notification: message.get("contentChannelNotification").is_some(),
            client_socket_id: message.get("clientSocketId").and_then(Value::as_str).map(str::to_owned),
            broadcast: message.get("broadcast").is_some_and(truthy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route_of(message: Value, own: Option<&str>) -> Route {
        route(&MessageView::from_json(&message), own)
    }

    fn named(names: &[&str], wrap: bool) -> Route {
        Route::Named { names: names.iter().map(|s| s.to_string()).collect(), wrap }
    }

    #[test]
    fn a_single_callback_name_is_wrapped() {
        assert_eq!(route_of(json!({"callback": "nodejsNotify"}), None), named(&["nodejsNotify"], true));
    }

    #[test]
    fn a_callback_list_runs_those_names_only() {
        assert_eq!(route_of(json!({"callback": ["a", "b", 3, null]}), None), named(&["a", "b", "3"], false));
        assert_eq!(route_of(json!({"callback": [2.5, -1]}), None), named(&[], false));
        assert_eq!(route_of(json!({"callback": []}), None), named(&[], false));
        assert_eq!(route_of(json!({"callback": {"x": 1}}), None), named(&[], false));
    }

    #[test]
    fn callback_wins_over_presence_and_content_notifications() {
        let m = json!({"callback": "x", "presenceNotification": {}, "contentChannelNotification": true});
        assert_eq!(route_of(m, None), named(&["x"], true));
    }

    #[test]
    fn presence_then_content_channel_then_everything() {
        let p = json!({"presenceNotification": {"uid": 5, "event": "online"}});
        assert_eq!(route_of(p, None), Route::Presence);
        let both = json!({"presenceNotification": null, "contentChannelNotification": true});
        assert_eq!(route_of(both, None), Route::Presence, "null is defined");
        let c = json!({"channel": "c", "contentChannelNotification": false});
        assert_eq!(route_of(c, None), Route::ContentChannel, "defined, even when false");
        assert_eq!(route_of(json!({"channel": "c", "data": {}}), None), Route::All);
    }

    #[test]
    fn falsy_callbacks_fall_through() {
        for falsy in [json!(""), json!(null), json!(false), json!(0)] {
            assert_eq!(route_of(json!({"callback": falsy}), None), Route::All);
        }
        assert_eq!(route_of(json!({"callback": "", "presenceNotification": {}}), None), Route::Presence);
    }

    #[test]
    fn own_messages_are_skipped_only_when_both_ids_are_known() {
        let m = json!({"callback": "x", "clientSocketId": "abc"});
        assert_eq!(route_of(m.clone(), Some("abc")), Route::SelfSkip);
        assert_eq!(route_of(m.clone(), Some("abd")), named(&["x"], true));
        assert_eq!(route_of(m, None), named(&["x"], true));
        assert_eq!(route_of(json!({"callback": "x"}), Some("abc")), named(&["x"], true));
        let empty = json!({"clientSocketId": ""});
        assert_eq!(route_of(empty, Some("")), Route::All, "empty ids never match");
        let number = json!({"clientSocketId": 5});
        assert_eq!(route_of(number, Some("5")), Route::All);
    }

    fn listeners_of(channel: Option<&str>, message: Value, own: Option<&str>) -> Listeners {
        listeners(channel, &MessageView::from_json(&message), own)
    }

    #[test]
    fn channel_patterns_match_exactly_or_by_prefix() {
        assert!(channel_matches("chat_42", "chat_42"));
        assert!(!channel_matches("chat_42", "chat_421"), "exact means exact");
        assert!(!channel_matches("chat_4", "chat_42"));
        assert!(channel_matches("chat_*", "chat_42"));
        assert!(channel_matches("chat_*", "chat_"));
        assert!(!channel_matches("chat_*", "chat"), "the prefix includes the underscore");
        assert!(!channel_matches("chat_*", "other_chat_1"));
        assert!(channel_matches("*", "anything"));
        assert!(!channel_matches("chat*_", "chat_1_"), "only a trailing star is a wildcard");
        assert!(channel_matches("chat*_", "chat*_"));
        assert!(!channel_matches("", "chat"));
    }

    #[test]
    fn channel_messages_reach_channel_listeners_broadcasts_reach_broadcast_ones() {
        let m = json!({"channel": "chat_1", "callback": "x"});
        assert_eq!(listeners_of(Some("chat_1"), m, None), Listeners::Channel("chat_1".into()));
        let b = json!({"broadcast": true, "channel": "nodejs_notify", "data": {}});
        assert_eq!(
            listeners_of(None, b.clone(), None),
            Listeners::Broadcast,
            "a broadcast has no envelope channel"
        );
        assert_eq!(
            listeners_of(Some("nodejs_notify"), b, None),
            Listeners::Channel("nodejs_notify".into()),
            "the envelope decides, not the message's own channel member"
        );
        let presence = json!({"presenceNotification": {"uid": 5, "event": "online"}});
        assert_eq!(listeners_of(None, presence, None), Listeners::None, "server notices are not broadcasts");
        let auth = json!({"callback": "clientAuthenticated", "data": {}});
        assert_eq!(listeners_of(None, auth, None), Listeners::None);
        assert_eq!(listeners_of(None, json!({"broadcast": 0}), None), Listeners::None);
    }

    #[test]
    fn self_skip_applies_to_listeners_too() {
        let m = json!({"channel": "c", "clientSocketId": "me", "broadcast": true});
        assert_eq!(listeners_of(Some("c"), m.clone(), Some("me")), Listeners::None);
        assert_eq!(listeners_of(None, m.clone(), Some("me")), Listeners::None);
        assert_eq!(listeners_of(Some("c"), m.clone(), Some("you")), Listeners::Channel("c".into()));
        assert_eq!(listeners_of(None, m, None), Listeners::Broadcast);
    }

    #[test]
    fn listeners_run_whatever_the_module_rules_decided() {
        // The module's rules and the listeners are decided from the same view, before rule 2
        // wraps a single callback name: a named callback, a presence or content-channel
        // notification and the fallback all leave the channel listeners in place.
        for (m, expected) in [
            (json!({"callback": "a"}), named(&["a"], true)),
            (json!({"callback": ["missing"]}), named(&["missing"], false)),
            (json!({"contentChannelNotification": true, "data": {}}), Route::ContentChannel),
            (json!({"data": 1}), Route::All),
        ] {
            let view = MessageView::from_json(&m);
            assert_eq!(route(&view, Some("me")), expected, "{m}");
            assert_eq!(listeners(Some("room"), &view, Some("me")), Listeners::Channel("room".into()), "{m}");
        }
    }

    #[test]
    fn the_drivers_flags_route_as_the_message_would() {
        use flags::*;
        for (m, bits) in [
            (json!({"callback": "a"}), ONE_CALLBACK),
            (json!({"callback": ["a"], "presenceNotification": {}}), MANY_CALLBACKS | PRESENCE),
            (
                json!({"presenceNotification": null, "contentChannelNotification": 1}),
                PRESENCE | CONTENT_CHANNEL,
            ),
            (json!({"contentChannelNotification": false, "broadcast": true}), CONTENT_CHANNEL | BROADCAST),
            (json!({"callback": 0, "clientSocketId": "me"}), 0),
            (json!({"clientSocketId": "you"}), 0),
        ] {
            let sender = m.get("clientSocketId").and_then(Value::as_str).map(str::to_owned);
            let view = MessageView::from_flags(bits, sender);
            let code = route(&MessageView::from_json(&m), Some("me")).code();
            assert_eq!(route(&view, Some("me")).code(), code, "{m}");
            assert_eq!(route_code(bits, view.client_socket_id.as_deref(), Some("me")), code, "{m}");
            assert_eq!(
                listeners(Some("c"), &view, Some("me")),
                listeners(Some("c"), &MessageView::from_json(&m), Some("me"))
            );
        }
        for bits in 0..32 {
            for (sender, own) in
                [(None, None), (Some("me"), Some("me")), (Some("me"), Some("")), (Some("a"), Some("b"))]
            {
                let view = MessageView::from_flags(bits, sender.map(Into::into));
                assert_eq!(
                    route_code(bits, sender, own),
                    route(&view, own).code(),
                    "{bits} {sender:?} {own:?}"
                );
            }
        }
        assert_eq!(Route::SelfSkip.code(), 0);
        assert_eq!(Route::All.code(), 5);
        assert_eq!(Listeners::Broadcast.code(), 2);
    }

    #[test]
    fn truthiness_follows_javascript() {
        assert!(!truthy(&json!(0.0)));
        assert!(truthy(&json!(-1)));
        assert!(truthy(&json!([])));
        assert!(truthy(&json!({})));
        assert!(truthy(&json!("0")));
    }
}
