//! The `NodejsServiceKey` check in front of every backend route (spec 1.1), in constant time
//! and without logging the key (spec 7.17).

use crate::App;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Header Drupal sends the key in (matched case-insensitively, as HTTP headers are).
pub const SERVICE_KEY_HEADER: &str = "NodejsServiceKey";

pub async fn check_service_key(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let expected = app.settings.api.service_key.as_bytes();
    let given = req.headers().get(SERVICE_KEY_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    let ok = expected.is_empty() || (given.len() == expected.len() && bool::from(given.ct_eq(expected)));
    if !ok {
        tracing::warn!(
            path = req.uri().path(),
            header_present = !given.is_empty(),
            "backend request refused: invalid service key (compare Drupal's service key with serviceKey)"
        );
        return super::ApiError::InvalidServiceKey.into_response();
    }
    next.run(req).await
}
