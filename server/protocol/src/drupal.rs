//! Drupal-visible messages the server originates itself (spec 3.2). Page code receives them
//! through `Drupal.Nodejs` exactly like messages Drupal publishes, so their shapes are those of
//! the original server, with the leaks of spec 7.11 and 7.13 removed.

use crate::names::{SocketId, Uid};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The auth record the browser receives in `clientAuthenticated`: only what the page needs.
/// Never the service key, never Drupal 7's user-object fields (spec 7.11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAuthData {
    pub uid: Uid,
    pub auth_token: String,
    pub nodejs_valid_auth_token: bool,
    pub client_id: SocketId,
    pub channels: Vec<String>,
    pub presence_uids: Vec<Uid>,
    pub content_tokens: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Callback<'a, T: Serialize> {
    callback: &'static str,
    data: &'a T,
}

fn to_raw<T: Serialize>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("drupal messages always serialize")
}

/// `{"callback":"clientAuthenticated","data":{…}}`, sent after every successful authentication.
pub fn client_authenticated(data: &ClientAuthData) -> Box<RawValue> {
    to_raw(&Callback { callback: "clientAuthenticated", data })
}

/// Presence change of a user, as seen by the users allowed to watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceEvent {
    Online,
    Offline,
}

/// `{"presenceNotification":{"uid":5,"event":"online"}}`.
pub fn presence(uid: Uid, event: PresenceEvent) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Inner {
        uid: Uid,
        event: PresenceEvent,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Outer {
        presence_notification: Inner,
    }
    to_raw(&Outer { presence_notification: Inner { uid, event } })
}

/// `{"channel":"c","contentChannelNotification":true,"data":{"uid":5,"type":"disconnect"}}`:
/// a member of a content-token channel left (sent 2 s after its last socket left).
pub fn content_channel_disconnect(channel: &str, uid: Uid) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Data {
        uid: Uid,
        #[serde(rename = "type")]
        kind: &'static str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Msg<'a> {
        channel: &'a str,
        content_channel_notification: bool,
        data: Data,
    }
    to_raw(&Msg { channel, content_channel_notification: true, data: Data { uid, kind: "disconnect" } })
}

/// `{"callback":"clientJoinedTokenChannel","data":{…}}`: the token record Drupal stored
/// (`channel`, `notifyOnDisconnect`, `userData`, …) **without** the secret `token` itself
/// (spec 7.13: the original leaked it to every member).
pub fn client_joined_token_channel(record: &Map<String, Value>) -> Box<RawValue> {
    let filtered: Map<String, Value> =
        record.iter().filter(|(k, _)| k.as_str() != "token").map(|(k, v)| (k.clone(), v.clone())).collect();
    to_raw(&Callback { callback: "clientJoinedTokenChannel", data: &filtered })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_presence() {
        assert_eq!(
            presence(Uid(5), PresenceEvent::Online).get(),
            r#"{"presenceNotification":{"uid":5,"event":"online"}}"#
        );
        assert_eq!(
            presence(Uid(7), PresenceEvent::Offline).get(),
            r#"{"presenceNotification":{"uid":7,"event":"offline"}}"#
        );
    }

    #[test]
    fn golden_content_channel_disconnect() {
        assert_eq!(
            content_channel_disconnect("chat", Uid(5)).get(),
            r#"{"channel":"chat","contentChannelNotification":true,"data":{"uid":5,"type":"disconnect"}}"#
        );
    }

    #[test]
    fn joined_token_channel_hides_the_token() {
        let record: Map<String, Value> = serde_json::from_str(
            r#"{"token":"secret","channel":"chat","notifyOnDisconnect":true,"userData":{"name":"a"}}"#,
        )
        .unwrap();
        assert_eq!(
            client_joined_token_channel(&record).get(),
            r#"{"callback":"clientJoinedTokenChannel","data":{"channel":"chat","notifyOnDisconnect":true,"userData":{"name":"a"}}}"#
        );
    }

    #[test]
    fn golden_client_authenticated() {
        let data = ClientAuthData {
            uid: Uid(5),
            auth_token: "tok".into(),
            nodejs_valid_auth_token: true,
            client_id: SocketId("s1".into()),
            channels: vec!["nodejs_user_5".into()],
            presence_uids: vec![Uid(7)],
            content_tokens: BTreeMap::new(),
        };
        assert_eq!(
            client_authenticated(&data).get(),
            r#"{"callback":"clientAuthenticated","data":{"uid":5,"authToken":"tok","nodejsValidAuthToken":true,"clientId":"s1","channels":["nodejs_user_5"],"presenceUids":[7],"contentTokens":{}}}"#
        );
    }
}
