//! One WebSocket connection: the upgrade, the authentication handshake, the read loop and the
//! writes.
//!
//! Each connection is one task that alone owns its socket. It waits on four things at once:
//! a frame from the client, a batch from its [`Outbox`] (which the hub fills without waiting),
//! the pending backend call of its authentication, and its timer (auth timeout, heartbeat
//! timeout, next ping). A batch is written with one flush, under `writeTimeoutMs`; a client that
//! cannot take it is closed as a slow consumer. The hub forgets the connection through a drop
//! guard on every exit path, including a client that leaves while Drupal is still being asked
//! (the original crashed there: spec 9.4).

use crate::App;
use crate::error::BackendError;
use crate::hub::{AuthRecord, ConnId, Hub};
use crate::outbox::{Batch, Outbox};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use drupal_push_protocol::backend::AuthenticateRequest;
use drupal_push_protocol::frames::Authenticate;
use drupal_push_protocol::{ClientFrame, CloseCode, ErrorCode, PROTOCOL_VERSION, ServerFrame, SocketId};
use futures_util::SinkExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// Longest auth token accepted (Drupal's are 32-character md5 hex strings).
const MAX_AUTH_TOKEN_LEN: usize = 512;
/// How long to wait for the client's close reply after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// `GET {wsPath}`: checks the handshake ([`crate::admission`]), upgrades and hands the socket
/// to a tracked connection task.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(app): State<Arc<App>>,
) -> Response {
    let client = match app.admission.admit_upgrade(peer, &headers) {
        Ok(client) => client,
        Err(refused) => return refused.into_response(),
    };
    let c = &app.config;
    let tracker = app.tracker.clone();
    ws.read_buffer_size(c.ws_read_buffer_size)
        .write_buffer_size(16 * 1024)
        .max_message_size(c.max_frame_size)
        .max_frame_size(c.max_frame_size)
        .on_failed_upgrade(|e| tracing::debug!(error = %e, "websocket upgrade failed"))
        .on_upgrade(move |socket| tracker.track_future(run(socket, peer, client, app)))
}

type AuthFuture = Pin<Box<dyn Future<Output = Result<AuthRecord, BackendError>> + Send>>;

enum Phase {
    AwaitingAuth,
    Authenticating {
        token: String,
        content_tokens: std::collections::BTreeMap<String, String>,
        call: AuthFuture,
    },
    Authenticated,
}

/// Forgets the connection in the hub however the task ends.
struct Registration {
    hub: Hub,
    id: ConnId,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.disconnect(self.id);
    }
}

async fn run(mut ws: WebSocket, peer: SocketAddr, client: IpAddr, app: Arc<App>) {
    let reg = match app.hub.register(client) {
        Ok(r) => r,
        Err(code) => {
            tracing::warn!(%peer, "connection refused: connection limit reached");
            close(&mut ws, code).await;
            return;
        }
    };
    let span = tracing::info_span!("conn", socket = %reg.socket_id, %peer, %client);
    let guard = Registration { hub: app.hub.clone(), id: reg.id };
    let conn = Connection {
        app,
        client,
        id: reg.id,
        socket_id: reg.socket_id,
        outbox: reg.outbox,
        phase: Phase::AwaitingAuth,
    };
    let end = conn.serve(&mut ws).instrument(span.clone()).await;
    // Leave the hub before the close handshake, so the socket gets nothing more meanwhile.
    drop(guard);
    match end {
        End::Close(code) => {
            span.in_scope(|| tracing::debug!(code = code.0, reason = code.reason(), "closing"));
            close(&mut ws, code).await;
        }
        End::Gone => span.in_scope(|| tracing::debug!("disconnected")),
    }
}

struct Connection {
    app: Arc<App>,
    /// The client's address (behind a trusted proxy: from `X-Forwarded-For`).
    client: IpAddr,
    id: ConnId,
    socket_id: SocketId,
    outbox: Arc<Outbox>,
    phase: Phase,
}

/// Why the loop ended.
enum End {
    /// Close with this code.
    Close(CloseCode),
    /// The socket is gone or unusable; nothing more to send.
    Gone,
}

impl Connection {
    async fn serve(mut self, ws: &mut WebSocket) -> End {
        let hello = ServerFrame::Hello {
            socket_id: self.socket_id.clone(),
            heartbeat_ms: self.app.config.heartbeat_interval_ms,
            protocol: PROTOCOL_VERSION,
        };
        self.outbox.push(Utf8Bytes::from(hello.encode()));
        tracing::debug!("connected");
        self.read_write_loop(ws).await
    }

    async fn read_write_loop(&mut self, ws: &mut WebSocket) -> End {
        let cfg = self.app.config.clone();
        let started = Instant::now();
        let mut last_rx = started;
        let mut last_tx = started;
        let mut last_ping = started;
        let timer = tokio::time::sleep_until(started + cfg.auth_timeout());
        tokio::pin!(timer);
        loop {
            let dead_at = match self.phase {
                Phase::AwaitingAuth => started + cfg.auth_timeout(),
                _ => last_rx + cfg.heartbeat_timeout(),
            };
            // Ping when either direction has been quiet for an interval (at most once per
            // interval), so a client that only answers pings stays alive on a busy channel.
            let quiet_since = last_tx.min(last_rx).max(last_ping);
            let wake = dead_at.min(quiet_since + cfg.heartbeat_interval());
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let authenticating = matches!(self.phase, Phase::Authenticating { .. });
            tokio::select! {
                batch = self.outbox.next() => match batch {
                    Batch::Frames(frames) => {
                        if let Err(end) = write_batch(ws, frames, cfg.write_timeout()).await {
                            return end;
                        }
                        last_tx = Instant::now();
                    }
                    Batch::Close(code) => return End::Close(code),
                },
                incoming = ws.recv() => {
                    last_rx = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(end) = self.on_text(&text) {
                                return end;
                            }
                        }
                        Some(Ok(Message::Binary(_))) => return End::Close(CloseCode::UNSUPPORTED_DATA),
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return End::Gone,
                        Some(Err(e)) => return on_read_error(e),
                    }
                }
                result = auth_call(&mut self.phase), if authenticating => {
                    if let Some(end) = self.on_auth_result(result) {
                        return end;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= dead_at {
                        return End::Close(match self.phase {
                            Phase::AwaitingAuth => CloseCode::AUTH_TIMEOUT,
                            _ => CloseCode::HEARTBEAT_TIMEOUT,
                        });
                    }
                    self.outbox.push(Utf8Bytes::from(ServerFrame::Ping.encode()));
                    last_ping = now;
                }
            }
        }
    }

    fn reply_error(&self, code: ErrorCode, message: impl Into<String>) {
        let frame = ServerFrame::Error { code, message: message.into() };
        self.outbox.push(Utf8Bytes::from(frame.encode()));
    }

    fn on_text(&mut self, text: &str) -> Option<End> {
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                self.reply_error(ErrorCode::BadFrame, e);
                return None;
            }
        };
        match frame {
            ClientFrame::Authenticate(auth) => return self.on_authenticate(auth),
            ClientFrame::JoinTokenChannel(join) => {
                if !matches!(self.phase, Phase::Authenticated) {
                    self.reply_error(
                        ErrorCode::NotAuthenticated,
                        "join-token-channel needs an authenticated socket",
                    );
                } else if let Err(e) =
                    self.app.hub.join_token_channel(self.id, &join.channel, &join.content_token)
                {
                    self.reply_error(
                        ErrorCode::InvalidContentToken,
                        format!("channel {:?}: {e}", join.channel),
                    );
                }
            }
            ClientFrame::Ping => {
                self.outbox.push(Utf8Bytes::from(ServerFrame::Pong.encode()));
            }
            ClientFrame::Pong => {}
        }
        None
    }

    fn on_authenticate(&mut self, auth: Authenticate) -> Option<End> {
        match self.phase {
            Phase::Authenticating { .. } => {
                self.reply_error(ErrorCode::AuthPending, "authentication is already being checked");
                return None;
            }
            Phase::Authenticated => {
                self.reply_error(ErrorCode::AlreadyAuthenticated, "this socket is already authenticated");
                return None;
            }
            Phase::AwaitingAuth => {}
        }
        if auth.auth_token.is_empty() || auth.auth_token.len() > MAX_AUTH_TOKEN_LEN {
            tracing::info!("authentication refused: empty or oversized auth token");
            return Some(End::Close(CloseCode::AUTH_REJECTED));
        }
        let hub = &self.app.hub;
        if let Some(record) = hub.cached_auth(&auth.auth_token) {
            return self.complete_auth(&auth.auth_token, record, &auth.content_tokens, false);
        }
        if !self.app.admission.allow_auth(self.client) {
            return Some(End::Close(CloseCode::RATE_LIMITED));
        }
        let backend = self.app.backend.clone();
        let request = AuthenticateRequest::new(&auth, self.socket_id.clone());
        self.phase = Phase::Authenticating {
            token: auth.auth_token,
            content_tokens: auth.content_tokens,
            call: Box::pin(async move { backend.authenticate(request).await }),
        };
        None
    }

    fn on_auth_result(&mut self, result: Result<AuthRecord, BackendError>) -> Option<End> {
        let Phase::Authenticating { token, content_tokens, .. } =
            std::mem::replace(&mut self.phase, Phase::AwaitingAuth)
        else {
            return None;
        };
        match result {
            Ok(record) => self.complete_auth(&token, Arc::new(record), &content_tokens, true),
            Err(BackendError::InvalidToken) => {
                tracing::info!(token = %redact(&token), "authentication refused by Drupal");
                Some(End::Close(CloseCode::AUTH_REJECTED))
            }
            Err(e @ BackendError::Busy) => {
                // The backend client logs a full queue once; one line per refused client would flood.
                tracing::debug!(error = %e, "authentication refused: backend queue full");
                Some(End::Close(e.close_code()))
            }
            Err(e) => {
                tracing::warn!(error = %e, backend = self.app.backend.url(), "authentication failed: backend trouble");
                Some(End::Close(e.close_code()))
            }
        }
    }

    fn complete_auth(
        &mut self,
        token: &str,
        record: Arc<AuthRecord>,
        content_tokens: &std::collections::BTreeMap<String, String>,
        fresh: bool,
    ) -> Option<End> {
        let uid = record.uid;
        if !self.app.hub.authenticate(self.id, token, record, content_tokens, fresh) {
            return Some(End::Gone);
        }
        self.phase = Phase::Authenticated;
        tracing::debug!(%uid, cached = !fresh, "authenticated");
        None
    }
}

async fn auth_call(phase: &mut Phase) -> Result<AuthRecord, BackendError> {
    match phase {
        Phase::Authenticating { call, .. } => call.await,
        _ => std::future::pending().await,
    }
}

/// The first characters of a secret, enough to correlate log lines.
pub fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}…")
}

async fn write_batch(ws: &mut WebSocket, frames: Vec<Utf8Bytes>, limit: Duration) -> Result<(), End> {
    let write = async {
        for f in frames {
            ws.feed(Message::Text(f)).await?;
        }
        ws.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => {
            tracing::info!("closing slow consumer: a write did not finish within writeTimeoutMs");
            Err(End::Close(CloseCode::SLOW_CONSUMER))
        }
    }
}

fn on_read_error(e: axum::Error) -> End {
    use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
    match e.into_inner().downcast::<WsError>() {
        Ok(err) if matches!(*err, WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
            tracing::info!("closing: client frame over maxFrameSize");
            End::Close(CloseCode::MESSAGE_TOO_BIG)
        }
        Ok(err) => {
            tracing::debug!(error = %err, "read error");
            End::Gone
        }
        Err(other) => {
            tracing::debug!(error = %other, "read error");
            End::Gone
        }
    }
}

/// Sends a close frame and waits briefly for the client's reply, so the close code arrives
/// before the TCP connection ends.
async fn close(ws: &mut WebSocket, code: CloseCode) {
    let frame = CloseFrame { code: code.0, reason: Utf8Bytes::from_static(code.reason()) };
    let linger = async {
        if ws.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        while let Some(Ok(msg)) = ws.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, linger).await;
}
