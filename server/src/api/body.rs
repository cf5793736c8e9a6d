//! Request bodies: read up to `bodyParserJsonLimit` bytes and parsed as JSON whatever the
//! Content-Type says (Drupal 7 sends none: spec 9.1). An empty body is an empty object;
//! malformed JSON is a 400 and an oversized body a 413, both as JSON naming the problem
//! (the original answered HTML: spec 7.19).

use super::http_error;
use crate::App;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::Response;
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
    type Rejection = Response;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, Response> {
        let limit = app.config.body_parser_json_limit;
        let bytes = axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                http_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("Request body exceeds the {limit}-byte limit (bodyParserJsonLimit)."),
                )
            } else {
                http_error(StatusCode::BAD_REQUEST, format!("Could not read the request body: {e}"))
            }
        })?;
        let text = match std::str::from_utf8(&bytes) {
            Ok(t) if t.trim().is_empty() => "{}",
            Ok(t) => t,
            Err(e) => {
                return Err(http_error(StatusCode::BAD_REQUEST, format!("Request body is not UTF-8: {e}")));
            }
        };
        let raw: Box<RawValue> = serde_json::from_str(text.trim()).map_err(|e| {
            http_error(StatusCode::BAD_REQUEST, format!("Request body is not valid JSON: {e}"))
        })?;
        Ok(JsonBody { raw })
    }
}
