//! `GET /metrics`: the bearer-token check and the answer in the Prometheus text format.

use crate::App;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::METRICS_PATH;

pub fn router() -> Router<Arc<App>> {
    Router::new().route(METRICS_PATH, get(scrape))
}

/// `GET /metrics`: refused without `Authorization: Bearer <metricsToken>`.
async fn scrape(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let token = app.settings.ops.metrics_token.as_bytes();
    if token.is_empty() {
        return refuse(StatusCode::NOT_FOUND, "metrics are off: set metricsToken to serve /metrics");
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if given.len() != token.len() || !bool::from(given.ct_eq(token)) {
        tracing::warn!(
            header_present = headers.contains_key(header::AUTHORIZATION),
            "metrics request refused: no or wrong bearer token (compare with metricsToken)"
        );
        let mut r = refuse(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <metricsToken>");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"drupal-push metrics\""),
        );
        return r;
    }
    let text = app.metrics.render(&crate::ops::figures::Figures::fresh(&app).await);
    (
        [
            (header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response()
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}
