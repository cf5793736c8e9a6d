//! The WebSocket opening handshake (RFC 6455 section 4.2) on `GET {wsPath}`: checks the
//! request and its admission ([`crate::edge::admission`]: draining, origin, per-address rate),
//! answers 101 with the accept key, and hands the raw connection to a tracked connection task
//! once hyper lets go of it.

use super::socket::Socket;
use crate::App;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Why a request to the WebSocket endpoint is not an upgrade we can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "this is the WebSocket endpoint: send an upgrade request (Connection: Upgrade, Upgrade: websocket)"
    )]
    NotUpgrade,
    #[error("unsupported Sec-WebSocket-Version: only version 13 is spoken")]
    Version,
    #[error("missing or malformed Sec-WebSocket-Key")]
    Key,
}

impl IntoResponse for HandshakeError {
    fn into_response(self) -> Response {
        let status = match self {
            HandshakeError::NotUpgrade | HandshakeError::Version => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::Key => StatusCode::BAD_REQUEST,
        };
        let mut r = (status, axum::Json(serde_json::json!({"error": self.to_string()}))).into_response();
        r.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        r
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request.
pub fn accept_key(headers: &HeaderMap) -> Result<String, HandshakeError> {
    if !has_token(headers, header::CONNECTION, "upgrade") || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(HandshakeError::NotUpgrade);
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
        return Err(HandshakeError::Version);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or(HandshakeError::Key)?;
    use base64::Engine;
    let decoded =
        base64::engine::general_purpose::STANDARD.decode(key.as_bytes()).map_err(|_| HandshakeError::Key)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::Key);
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// `GET {wsPath}`.
pub async fn upgrade(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    let accept = match accept_key(req.headers()) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "refused a WebSocket handshake");
            return e.into_response();
        }
    };
    let client = match app.admission.admit_upgrade(peer, req.headers()) {
        Ok(client) => client,
        Err(refused) => {
            app.metrics.handshake_refused(refused.label());
            return refused.into_response();
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let tracker = app.tracker.clone();
    tracker.spawn(async move {
        match on_upgrade.await.map_err(std::io::Error::other).and_then(Socket::from_upgraded) {
            Ok((socket, early)) => super::run(socket, early, peer, client, app).await,
            Err(e) => tracing::debug!(%peer, error = %e, "websocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}
