//! Drupal's REST API under `baseAuthPath` (`/nodejs/`): every route of spec 1.2 with the
//! original's JSON shapes and error strings. Logical errors are HTTP 200 JSON (Drupal reads the
//! `error` text only from 200 answers: spec 1.5); malformed or oversized bodies get a JSON 4xx.
//! Action routes answer GET and POST alike (Drupal 7 uses GET, 8+ POST: spec 9.2).
//!
//! Files: `body.rs` (reading bodies as JSON whatever the Content-Type, spec 9.1),
//! `key.rs` (the `NodejsServiceKey` check), `routes.rs` (the handlers), `error.rs` (every
//! failure and its compatible answer).

mod body;
mod error;
mod key;
pub(crate) mod routes;

pub use body::JsonBody;
pub use error::ApiError;

use crate::App;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::sync::Arc;

/// The routes under `baseAuthPath`, with the service-key check in front of all of them
/// (unknown paths included, like the original's `baseAuthPath + '*'` middleware).
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let base = app.settings.api.base_auth_path.trim_end_matches('/').to_owned();
    let p = |s: &str| format!("{base}/{s}");
    use routes::*;
    let router = Router::new()
        .route(&p("publish"), post(publish))
        .route(&p("user/kick/{uid}"), get(kick).post(kick))
        .route(&p("user/logout/{token}"), get(logout).post(logout))
        .route(&p("user/channel/add/{channel}/{uid}"), get(user_channel_add).post(user_channel_add))
        .route(&p("user/channel/remove/{channel}/{uid}"), get(user_channel_remove).post(user_channel_remove))
        .route(&p("user/presence-list/{uid}/{uid_list}"), get(presence_list).post(presence_list))
        .route(&p("channel/add/{channel}"), get(channel_add).post(channel_add))
        .route(&p("channel/remove/{channel}"), get(channel_remove).post(channel_remove))
        .route(&p("channel/check/{channel}"), get(channel_check).post(channel_check))
        .route(&p("health/check"), get(health_check).post(health_check))
        .route(&p("debug/toggle"), post(debug_toggle))
        .route(&p("content/token"), post(content_token))
        .route(&p("content/token/users"), post(content_token_users))
        .route(&p("content/token/message"), post(content_token_message))
        .route(&p("authtoken/channel/add/{channel}/{token}"), get(token_channel_add).post(token_channel_add))
        .route(
            &p("authtoken/channel/remove/{channel}/{token}"),
            get(token_channel_remove).post(token_channel_remove),
        )
        .route(&base, axum::routing::any(not_found))
        .route(&p(""), axum::routing::any(not_found))
        .route(&p("{*rest}"), axum::routing::any(not_found))
        .layer(axum::middleware::from_fn_with_state(app.clone(), key::check_service_key));
    // An empty key (`allowEmptyServiceKey`) lets anyone call: then only this server's own pages
    // and non-browser callers may (`open_guard`).
    let router = match app.settings.api.service_key.is_empty() {
        true => router.layer(axum::middleware::from_fn_with_state(
            crate::edge::open_guard::OpenGuard::new(&app.settings.listen.host),
            crate::edge::open_guard::check,
        )),
        false => router,
    };
    router.layer(axum::middleware::map_response(json_errors))
}

/// Gives an error answer that is not JSON the original's `{"error":…}` shape, with its status
/// and headers kept: axum's own answers (an empty 405 for a method a route does not take, a
/// plain-text 400 for a path segment that is not UTF-8 once percent-decoded) and any other
/// extractor rejection. Found by the `rest` fuzz target (server/fuzz/README.md).
pub(crate) async fn json_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status().is_success() || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let text = match text.is_empty() {
        true => format!("{}.", parts.status.canonical_reason().unwrap_or("Error")),
        false => text,
    };
    let json = (parts.status, axum::Json(serde_json::json!({"error": text}))).into_response();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.extend(json.headers().clone());
    Response::from_parts(parts, json.into_body())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Value of a JSON member as the original read it: a string, or a number written as one.
pub(crate) fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
