//! Request bodies: read up to `bodyParserJsonLimit` bytes within `httpHeaderTimeoutMs` (a body
//! trickling in byte by byte would hold its connection forever) and parsed as JSON whatever the
//! Content-Type says (Drupal 7 sends none: spec 9.1). An empty body is an empty object;
//! malformed JSON is a 400 and an oversized body a 413, both as JSON naming the problem
//! (the original answered HTML: spec 7.19).

use super::ApiError;
use crate::App;
use axum::extract::{FromRequest, Request};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A JSON request body, kept as the text that was sent.
pub struct JsonBody {
    /// The body verbatim (`{}` when empty).
    pub raw: Box<RawValue>,
}

impl JsonBody {
    /// Its members when it is an object, else none (the original's body parser likewise
    /// produced no parameters for anything but an object).
    pub fn members(&self) -> Map<String, Value> {
        match serde_json::from_str::<Value>(self.raw.get()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// Reads only the members `T` names (cheap for large bodies); `T::default()` when the body
    /// is not an object.
    pub fn head<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        if !self.raw.get().starts_with('{') {
            return T::default();
        }
        serde_json::from_str(self.raw.get()).unwrap_or_default()
    }
}

impl FromRequest<Arc<App>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let limit = app.settings.api.body_limit;
        let read = axum::body::to_bytes(req.into_body(), limit);
        let timeout = app.settings.http.header_timeout.as_millis() as u64;
        let bytes = tokio::time::timeout(app.settings.http.header_timeout, read)
            .await
            .map_err(|_| ApiError::BodyTimeout(timeout))?
            .map_err(|e| {
                if is_length_limit(&e) {
                    ApiError::BodyTooLarge(limit)
                } else {
                    ApiError::BodyUnreadable(e.to_string())
                }
            })?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) if t.trim().is_empty() => "{}",
            Ok(t) => t,
            Err(e) => return Err(ApiError::BodyNotUtf8(e.to_string())),
        };
        let raw: Box<RawValue> =
            serde_json::from_str(text.trim()).map_err(|e| ApiError::BadJson(e.to_string()))?;
        Ok(JsonBody { raw })
    }
}

/// Whether reading stopped at the body limit: axum wraps http-body-util's `LengthLimitError`,
/// found by walking the error's sources (by type, never by message text).
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}
