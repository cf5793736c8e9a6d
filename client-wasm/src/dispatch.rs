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
//! This module only decides; the browser glue looks the registries up at dispatch time (so
//! callbacks registered late are found) and calls them. [`MessageView`] is the part of a message
//! the decision reads, built from JSON here and from a JS object by the glue.

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
    if let (Some(own), Some(from)) = (own_socket_id, message.client_socket_id.as_deref())
        && !own.is_empty()
        && own == from
    {
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

/// JavaScript truthiness of a JSON value.
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
pub fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

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

    #[test]
    fn truthiness_follows_javascript() {
        assert!(!truthy(&json!(0.0)));
        assert!(truthy(&json!(-1)));
        assert!(truthy(&json!([])));
        assert!(truthy(&json!({})));
        assert!(truthy(&json!("0")));
    }
}
