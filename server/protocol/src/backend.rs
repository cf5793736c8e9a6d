//! The server -> Drupal callback: `POST {backend}/nodejs/message`, form-encoded with
//! `messageJson` (one [`BackendMessage`] as JSON) and `serviceKey` (spec 2.1, 2.2), and the
//! answer Drupal gives to `authenticate` ([`AuthAnswer`], spec 2.4). Besides its own messages
//! the server forwards the `message` requests of browsers ([`ForwardedMessage`]), which Drupal
//! dispatches to `hook_nodejs_message_callback` handlers by their `messageType`.

use crate::frames::Authenticate;
use crate::names::{SocketId, Uid};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Form field holding the JSON message.
pub const FORM_MESSAGE_FIELD: &str = "messageJson";
/// Form field holding the service key.
pub const FORM_SERVICE_KEY_FIELD: &str = "serviceKey";

/// A message the server posts to Drupal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "messageType")]
pub enum BackendMessage {
    /// Is this auth token a valid session, and what may it see?
    #[serde(rename = "authenticate")]
    Authenticate(AuthenticateRequest),
    /// A user's first socket authenticated.
    #[serde(rename = "userOnline")]
    UserOnline { uid: Uid },
    /// A user's last socket has been gone for the grace period.
    #[serde(rename = "userOffline")]
    UserOffline { uid: Uid },
    /// A browser's message for a Drupal handler, any other `messageType`.
    #[serde(untagged)]
    Forwarded(ForwardedMessage),
}

/// The `messageType` values the server itself sends; a browser may not send messages of these
/// types to Drupal.
pub const RESERVED_MESSAGE_TYPES: [&str; 3] = ["authenticate", "userOnline", "userOffline"];

/// A browser's `message` request as Drupal receives it: the browser's members, with
/// `messageType` (the browser's `messageType`, else its `type`) and the members the server sets
/// from the socket, which the browser cannot forge: `uid`, `authToken` and `clientId` (the
/// socket id), named as in the server's own messages so that a handler can pass the message to
/// `nodejs_auth_check()` to re-check the session. Members of those names the browser sent are
/// replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardedMessage {
    pub message_type: String,
    pub uid: Uid,
    pub auth_token: String,
    pub client_id: SocketId,
    /// The browser's other members, verbatim.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Members of a forwarded message that the server sets.
const FORWARD_RESERVED: [&str; 4] = ["messageType", "uid", "authToken", "clientId"];

/// Why a browser's message cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// The message is not a JSON object.
    NotAnObject,
    /// Neither `messageType` nor `type` is a non-empty string.
    NoType,
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ForwardError::NotAnObject => "the message must be a JSON object",
            ForwardError::NoType => {
                "the message needs a messageType (or type) string naming its Drupal handler"
            }
        })
    }
}

impl ForwardedMessage {
    /// The message type a browser's message names: its `messageType`, else its `type`.
    pub fn type_of(message: &Value) -> Result<&str, ForwardError> {
        let object = message.as_object().ok_or(ForwardError::NotAnObject)?;
        let named = |key| object.get(key).and_then(Value::as_str).filter(|t| !t.is_empty());
        named("messageType").or_else(|| named("type")).ok_or(ForwardError::NoType)
    }

    /// Builds the message Drupal gets from a browser's `message` and its socket's identity.
    pub fn new(
        message: Value,
        uid: Uid,
        auth_token: &str,
        client_id: SocketId,
    ) -> Result<ForwardedMessage, ForwardError> {
        let message_type = Self::type_of(&message)?.to_owned();
        let Value::Object(mut fields) = message else { return Err(ForwardError::NotAnObject) };
        for key in FORWARD_RESERVED {
            fields.remove(key);
        }
        Ok(ForwardedMessage { message_type, uid, auth_token: auth_token.to_owned(), client_id, fields })
    }
}

/// The client's `authenticate` frame plus the socket id, as Drupal expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateRequest {
    pub auth_token: String,
    #[serde(default)]
    pub content_tokens: BTreeMap<String, String>,
    pub client_id: SocketId,
    /// Other members the client sent; passed through as the original did.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Members of the authenticate message the server sets itself; a client cannot override them.
const RESERVED: [&str; 4] = ["authToken", "contentTokens", "clientId", "messageType"];

impl AuthenticateRequest {
    pub fn new(auth: &Authenticate, client_id: SocketId) -> Self {
        let extra = auth
            .extra
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        AuthenticateRequest {
            auth_token: auth.auth_token.clone(),
            content_tokens: auth.content_tokens.clone(),
            client_id,
            extra,
        }
    }
}

impl BackendMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("backend messages always serialize")
    }
}

/// Drupal's answer to `authenticate` (`nodejs_auth_check()`), read leniently: uids may be
/// strings, lists may arrive as JSON objects (PHP arrays with holes), extra members are ignored.
/// It serializes to the shape Drupal sends, so fake Drupals (the demo, the tests, the benchmark)
/// build it with [`AuthAnswer::accept`] and [`AuthAnswer::reject`] rather than by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthAnswer {
    #[serde(default)]
    pub uid: Uid,
    #[serde(default)]
    pub auth_token: Option<String>,
    #[serde(default, deserialize_with = "truthy")]
    pub nodejs_valid_auth_token: bool,
    /// Drupal echoes the socket id it was asked about (the server does not rely on it: spec 7.10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Value>,
    #[serde(default, deserialize_with = "string_list")]
    pub channels: Vec<String>,
    #[serde(default, deserialize_with = "uid_list")]
    pub presence_uids: Vec<Uid>,
    /// Drupal echoes the content tokens it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_tokens: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

/// Why an authenticate answer does not authenticate the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthAnswerError {
    /// The body is not the JSON object Drupal sends: the backend is misconfigured.
    NotJson(String),
    /// Drupal answered `{"error": …}` (for example a service-key mismatch): misconfiguration.
    Error(String),
    /// Drupal says the token is not a valid session.
    InvalidToken,
}

impl AuthAnswer {
    /// What Drupal answers for a valid session of `uid`.
    pub fn accept(
        req: &AuthenticateRequest,
        uid: Uid,
        channels: Vec<String>,
        presence_uids: Vec<Uid>,
    ) -> Self {
        AuthAnswer {
            uid,
            auth_token: Some(req.auth_token.clone()),
            nodejs_valid_auth_token: true,
            client_id: Some(Value::from(req.client_id.as_str())),
            channels,
            presence_uids,
            content_tokens: serde_json::to_value(&req.content_tokens).ok(),
            error: None,
        }
    }

    /// What Drupal answers for a token that is not a valid session.
    pub fn reject(req: &AuthenticateRequest) -> Self {
        AuthAnswer {
            uid: Uid::ANONYMOUS,
            auth_token: Some(req.auth_token.clone()),
            nodejs_valid_auth_token: false,
            client_id: Some(Value::from(req.client_id.as_str())),
            channels: Vec::new(),
            presence_uids: Vec::new(),
            content_tokens: None,
            error: None,
        }
    }

    /// Parses and judges Drupal's answer the way the original did (spec 2.4).
    pub fn parse(body: &[u8]) -> Result<AuthAnswer, AuthAnswerError> {
        let head = || String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AuthAnswerError::NotJson(format!("{e}; the answer began with {:?}", head())))?;
        if !value.is_object() {
            return Err(AuthAnswerError::NotJson(format!(
                "expected a JSON object, the answer was {:?}",
                head()
            )));
        }
        let answer: AuthAnswer = serde_json::from_value(value)
            .map_err(|e| AuthAnswerError::NotJson(format!("{e}; the answer began with {:?}", head())))?;
        if let Some(err) = &answer.error {
            if is_truthy(err) {
                let text = match err {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Err(AuthAnswerError::Error(text));
            }
        }
        if !answer.nodejs_valid_auth_token {
            return Err(AuthAnswerError::InvalidToken);
        }
        Ok(answer)
    }
}

/// JavaScript truthiness, which is how the original read Drupal's and the request's flags.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn truthy<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(is_truthy(&Value::deserialize(d)?))
}

fn list_values(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(o) => o.into_iter().map(|(_, v)| v).collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(list_values(Value::deserialize(d)?)
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect())
}

fn uid_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Uid>, D::Error> {
    let mut uids: Vec<Uid> = list_values(Value::deserialize(d)?)
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Uid>(v).ok())
        .collect();
    uids.sort_unstable();
    uids.dedup();
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::ClientFrame;

    #[test]
    fn golden_backend_messages() {
        assert_eq!(
            BackendMessage::UserOnline { uid: Uid(5) }.to_json(),
            r#"{"messageType":"userOnline","uid":5}"#
        );
        assert_eq!(
            BackendMessage::UserOffline { uid: Uid(5) }.to_json(),
            r#"{"messageType":"userOffline","uid":5}"#
        );
        let ClientFrame::Authenticate(auth) = ClientFrame::decode(
            r#"{"type":"authenticate","authToken":"t","contentTokens":{"c":"x"},"clientId":"evil","lang":"fr"}"#,
        )
        .unwrap() else {
            panic!("not authenticate")
        };
        let msg = BackendMessage::Authenticate(AuthenticateRequest::new(&auth, SocketId("s1".into())));
        assert_eq!(
            msg.to_json(),
            r#"{"messageType":"authenticate","authToken":"t","contentTokens":{"c":"x"},"clientId":"s1","lang":"fr"}"#
        );
        let back: BackendMessage = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn golden_forwarded_messages() {
        let from_page = serde_json::json!({
            "type": "chat", "text": "hi", "uid": 1, "authToken": "forged", "clientId": "forged"
        });
        assert_eq!(ForwardedMessage::type_of(&from_page), Ok("chat"));
        let m = ForwardedMessage::new(from_page, Uid(5), "t", SocketId("s1".into())).unwrap();
        let msg = BackendMessage::Forwarded(m);
        assert_eq!(
            msg.to_json(),
            r#"{"messageType":"chat","uid":5,"authToken":"t","clientId":"s1","text":"hi","type":"chat"}"#
        );
        let back: BackendMessage = serde_json::from_str(&msg.to_json()).unwrap();
        assert_eq!(back, msg);

        let named = serde_json::json!({"messageType": "saveDraft", "type": "x"});
        let m = ForwardedMessage::new(named, Uid(0), "a", SocketId("s".into())).unwrap();
        assert_eq!(
            BackendMessage::Forwarded(m).to_json(),
            r#"{"messageType":"saveDraft","uid":0,"authToken":"a","clientId":"s","type":"x"}"#
        );
        for (bad, why) in [
            (serde_json::json!([1]), ForwardError::NotAnObject),
            (serde_json::json!("chat"), ForwardError::NotAnObject),
            (serde_json::json!({"text": "hi"}), ForwardError::NoType),
            (serde_json::json!({"type": ""}), ForwardError::NoType),
            (serde_json::json!({"messageType": 3}), ForwardError::NoType),
        ] {
            assert_eq!(ForwardedMessage::type_of(&bad), Err(why.clone()), "{bad}");
            assert_eq!(ForwardedMessage::new(bad, Uid(1), "t", SocketId("s".into())), Err(why));
        }
        // The server's own messages still decode as themselves.
        let online: BackendMessage = serde_json::from_str(r#"{"messageType":"userOnline","uid":5}"#).unwrap();
        assert_eq!(online, BackendMessage::UserOnline { uid: Uid(5) });
    }

    #[test]
    fn golden_auth_answers_as_fakes_build_them() {
        let req = AuthenticateRequest {
            auth_token: "t".into(),
            content_tokens: BTreeMap::from([("c".to_string(), "x".to_string())]),
            client_id: SocketId("s1".into()),
            extra: Map::new(),
        };
        let ok = AuthAnswer::accept(&req, Uid(5), vec!["nodejs_user_5".into()], vec![Uid(7)]);
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(
            text,
            r#"{"uid":5,"authToken":"t","nodejsValidAuthToken":true,"clientId":"s1","channels":["nodejs_user_5"],"presenceUids":[7],"contentTokens":{"c":"x"}}"#
        );
        assert_eq!(AuthAnswer::parse(text.as_bytes()).unwrap(), ok);
        let no = serde_json::to_string(&AuthAnswer::reject(&req)).unwrap();
        assert_eq!(
            no,
            r#"{"uid":0,"authToken":"t","nodejsValidAuthToken":false,"clientId":"s1","channels":[],"presenceUids":[]}"#
        );
        assert_eq!(AuthAnswer::parse(no.as_bytes()), Err(AuthAnswerError::InvalidToken));
    }

    #[test]
    fn drupal7_answer_with_string_uid_and_extra_fields() {
        let a = AuthAnswer::parse(
            br#"{"uid":"5","name":"admin","pass":"$S$hash","authToken":"t","nodejsValidAuthToken":true,
                "clientId":"s1","channels":{"0":"nodejs_user_5","2":"b"},"presenceUids":["7",9,"7"],
                "serviceKey":"secret","contentTokens":[]}"#,
        )
        .unwrap();
        assert_eq!(a.uid, Uid(5));
        assert_eq!(a.channels, vec!["nodejs_user_5".to_string(), "b".to_string()]);
        assert_eq!(a.presence_uids, vec![Uid(7), Uid(9)]);
    }

    #[test]
    fn failing_answers() {
        assert_eq!(
            AuthAnswer::parse(br#"{"uid":0,"authToken":"t","nodejsValidAuthToken":false,"clientId":"s"}"#),
            Err(AuthAnswerError::InvalidToken)
        );
        assert_eq!(
            AuthAnswer::parse(br#"{"error":"Invalid service key."}"#),
            Err(AuthAnswerError::Error("Invalid service key.".into()))
        );
        assert!(matches!(AuthAnswer::parse(b"<html>"), Err(AuthAnswerError::NotJson(_))));
        assert!(matches!(AuthAnswer::parse(b"[1]"), Err(AuthAnswerError::NotJson(_))));
        assert_eq!(AuthAnswer::parse(br#"{"uid":3}"#), Err(AuthAnswerError::InvalidToken));
    }

    #[test]
    fn truthiness_is_javascripts() {
        for (v, t) in [
            ("null", false),
            ("0", false),
            ("\"\"", false),
            ("false", false),
            ("1", true),
            ("\"0\"", true),
            ("[]", true),
            ("{}", true),
        ] {
            assert_eq!(is_truthy(&serde_json::from_str(v).unwrap()), t, "{v}");
        }
    }
}
