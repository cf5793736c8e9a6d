//! [`ApiError`]: every way a REST call can fail, each with the exact answer the original
//! server gave (the strings are compatibility surface: Drupal and its tests compare them byte
//! for byte). Logical errors are HTTP 200 with JSON, because Drupal reads the `error` text only
//! from 200 answers (spec 1.5); malformed requests get a JSON 4xx, an unreachable Redis a JSON
//! 503 (never HTML, never a hang: Drupal logs non-200 answers).

use crate::error::EngineError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The longest content token accepted (Drupal's are 44-character base64 HMACs).
pub const MAX_CONTENT_TOKEN_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("Invalid service key.")]
    InvalidServiceKey,
    #[error("Required parameters are missing.")]
    MissingParameters,
    #[error("Invalid message")]
    InvalidMessage,
    #[error("Invalid uid.")]
    InvalidUid,
    #[error("Invalid channel name.")]
    InvalidChannelName,
    #[error("No active sessions for uid.")]
    NoActiveSessions,
    #[error("Non-existent channel name.")]
    NonExistentChannel,
    #[error("Channel name '{0}' already exists.")]
    ChannelExists(String),
    #[error("Invalid parameters.")]
    InvalidParameters,
    #[error("Content token too long (at most {MAX_CONTENT_TOKEN_LEN} characters).")]
    ContentTokenTooLong,
    #[error("Request body exceeds the {0}-byte limit (bodyParserJsonLimit).")]
    BodyTooLarge(usize),
    #[error("Could not read the request body: {0}")]
    BodyUnreadable(String),
    #[error("The request body did not arrive within {0} ms (httpHeaderTimeoutMs).")]
    BodyTimeout(u64),
    #[error("Request body is not UTF-8: {0}")]
    BodyNotUtf8(String),
    #[error("Request body is not valid JSON: {0}")]
    BadJson(String),
    #[error("Not Found.")]
    NotFound,
    #[error("The server cannot reach its shared state (Redis): {0}")]
    Unavailable(String),
}

/// The three shapes of the original's answers.
enum Shape {
    /// `{"error": …}` with HTTP 200 (publish, content-token routes, the key check).
    Error,
    /// `{"status": "failed", "error": …}` with HTTP 200 (action routes).
    Failed,
    /// `{"error": …}` with an HTTP error status.
    Http(StatusCode),
}

impl ApiError {
    fn shape(&self) -> Shape {
        use ApiError::*;
        match self {
            InvalidServiceKey | MissingParameters | InvalidMessage | ContentTokenTooLong => Shape::Error,
            InvalidUid | InvalidChannelName | NoActiveSessions | NonExistentChannel | ChannelExists(_)
            | InvalidParameters => Shape::Failed,
            BodyTooLarge(_) => Shape::Http(StatusCode::PAYLOAD_TOO_LARGE),
            BodyTimeout(_) => Shape::Http(StatusCode::REQUEST_TIMEOUT),
            BodyUnreadable(_) | BodyNotUtf8(_) | BadJson(_) => Shape::Http(StatusCode::BAD_REQUEST),
            NotFound => Shape::Http(StatusCode::NOT_FOUND),
            Unavailable(_) => Shape::Http(StatusCode::SERVICE_UNAVAILABLE),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::ChannelExists(name) => ApiError::ChannelExists(name),
            EngineError::NoSuchChannel => ApiError::NonExistentChannel,
            EngineError::NoActiveSessions => ApiError::NoActiveSessions,
            EngineError::InvalidParameters => ApiError::InvalidParameters,
            EngineError::NoSuchTokenChannel => ApiError::InvalidMessage,
            EngineError::Unavailable(why) => ApiError::Unavailable(why),
            EngineError::UnknownContentToken | EngineError::OtherSession => ApiError::InvalidParameters,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let text = self.to_string();
        match self.shape() {
            Shape::Error => Json(json!({"error": text})).into_response(),
            Shape::Failed => Json(json!({"status": "failed", "error": text})).into_response(),
            Shape::Http(status) => (status, Json(json!({"error": text}))).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, String) {
        let r = e.into_response();
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn compatibility_strings_and_shapes() {
        let ok = StatusCode::OK;
        let cases = [
            (ApiError::InvalidServiceKey, ok, r#"{"error":"Invalid service key."}"#),
            (ApiError::MissingParameters, ok, r#"{"error":"Required parameters are missing."}"#),
            (ApiError::InvalidMessage, ok, r#"{"error":"Invalid message"}"#),
            (ApiError::InvalidUid, ok, r#"{"error":"Invalid uid.","status":"failed"}"#),
            (ApiError::InvalidChannelName, ok, r#"{"error":"Invalid channel name.","status":"failed"}"#),
            (ApiError::NoActiveSessions, ok, r#"{"error":"No active sessions for uid.","status":"failed"}"#),
            (ApiError::NonExistentChannel, ok, r#"{"error":"Non-existent channel name.","status":"failed"}"#),
            (
                ApiError::ChannelExists("chat".into()),
                ok,
                r#"{"error":"Channel name 'chat' already exists.","status":"failed"}"#,
            ),
            (ApiError::InvalidParameters, ok, r#"{"error":"Invalid parameters.","status":"failed"}"#),
            (ApiError::NotFound, StatusCode::NOT_FOUND, r#"{"error":"Not Found."}"#),
        ];
        for (e, status, text) in cases {
            assert_eq!(body(e).await, (status, text.to_string()));
        }
    }
}
