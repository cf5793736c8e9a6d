//! One WebSocket connection: the read loop, the authentication handshake, heartbeats, and the
//! writes the socket could not take at once.
//!
//! Each connection is one task ([`run`]). Publishers write to its socket directly through its
//! [`Outbox`]; the task reads client frames ([`codec`]), writes what the outbox had to queue
//! when the socket becomes writable, drives the pending authentication and its timer (auth
//! timeout, heartbeat timeout, next ping, write stall). Everything the engine must hear about
//! this socket (its arrival, its departure) is said by this task, in that order, so the
//! engine's counts never see a departure before its arrival; a kick or a logout only closes the
//! outbox, and the task's own departure follows.
//!
//! Files: `upgrade.rs` (the opening handshake), `socket.rs` (the byte stream), `codec.rs`
//! (frames), `auth.rs` (the authentication steps), `requests.rs` (a browser's messages for
//! Drupal and publishes), `outbox.rs` (the socket's write side: direct writes, the bounded
//! queue, the slow-consumer rule), `client_requests.rs` (the policy of what a browser may send
//! besides `authenticate`, which `requests.rs` carries out).

mod auth;
pub mod client_requests;
pub mod codec;
pub mod outbox;
mod requests;
pub mod socket;
pub mod upgrade;

use crate::App;
use crate::conn::outbox::{Flush, Outbox};
use crate::engine::Member;
use crate::hub::ConnId;
use crate::ops::metrics::ClosedBy;
use bytes::Bytes;
use codec::{Incoming, Reader};
use drupal_push_protocol::frames::ClientRequest;
use drupal_push_protocol::{ClientFrame, CloseCode, ErrorCode, PROTOCOL_VERSION, ServerFrame, SocketId};
use socket::Socket;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// How long to wait for the client's close reply after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// The codes RFC 6455 (7.1.5) reports for a close frame without a code, and for a connection
/// that ended without a close frame; counted as such in `drupal_push_closes_total`.
const NO_STATUS: u16 = 1005;
const ABNORMAL: u16 = 1006;
/// Reads per wake-up before other events get a turn.
const READS_PER_TURN: usize = 16;
/// Messages per wake-up past which no more is read: tiny frames (6-byte pings) would otherwise
/// make one turn's 64 KiB a list of ten thousand messages.
const MESSAGES_PER_TURN: usize = 256;

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Close with this code.
    Close(CloseCode),
    /// The client sent a close frame: answer it.
    ClientClosed(Option<u16>),
    /// The socket is gone or unusable; nothing more to send.
    Gone,
}

/// What a connection is configured with.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// `authTimeoutMs`: the time a socket has to send `authenticate`.
    pub auth_timeout: Duration,
    /// `heartbeatIntervalMs`: a socket quiet this long is pinged.
    pub heartbeat_interval: Duration,
    /// `heartbeatTimeoutMs`: a socket not heard from this long is closed.
    pub heartbeat_timeout: Duration,
    /// `writeTimeoutMs`: a write that does not complete in this time closes the socket.
    pub write_timeout: Duration,
    /// `maxFrameSize`, bytes.
    pub max_frame_size: usize,
    /// `wsReadBufferSize`, bytes.
    pub ws_read_buffer_size: usize,
    /// `tokenJoinRatePerSocket` (0: no limit), `tokenJoinBurstPerSocket`.
    pub token_join_rate: f64,
    pub token_join_burst: u32,
    /// `maxQueuedMessages`, `maxQueuedBytes`.
    pub outbox: outbox::Limits,
    /// What browsers may send besides `authenticate`: messages for Drupal, channel publishes.
    pub requests: client_requests::Policy,
}

/// Serves one upgraded connection until it ends.
/// `client` is the client's address (behind a trusted proxy: from `X-Forwarded-For`).
pub(crate) async fn run(socket: Socket, early: Bytes, peer: SocketAddr, client: IpAddr, app: Arc<App>) {
    let outbox = Arc::new(Outbox::new(socket, app.settings.conn.outbox, app.metrics.clone()));
    let (id, socket_id) = match app.hub.register(client, outbox.clone()) {
        Ok(r) => r,
        Err(code) => {
            let hint = app.admission.proxy_hint(client);
            tracing::warn!(%peer, "connection refused: connection limit reached (maxConnections or maxConnectionsPerAddress){hint}");
            app.metrics.closed(ClosedBy::Server, code.0);
            finish(&outbox, End::Close(code), &mut Reader::new(0), CLOSE_LINGER).await;
            return;
        }
    };
    let span = tracing::info_span!("conn", socket = %socket_id, %peer, %client);
    let mut conn = Connection {
        client,
        reader: Reader::new(app.settings.conn.max_frame_size),
        app,
        id,
        socket_id,
        outbox,
        phase: auth::Phase::AwaitingAuth,
        member: None,
        allowance: None,
        joins: None,
        sender: false,
    };
    let end = conn.serve(early).instrument(span.clone()).await;
    conn.leave(end).instrument(span).await;
}

struct Connection {
    app: Arc<App>,
    /// The client's address, for per-address limits.
    client: IpAddr,
    id: ConnId,
    socket_id: SocketId,
    outbox: Arc<Outbox>,
    reader: Reader,
    phase: auth::Phase,
    /// Set once the engine counted this socket's arrival, so its departure must be reported.
    member: Option<Member>,
    /// The socket's request budget, from its first request on.
    allowance: Option<Box<crate::edge::limits::TokenBucket>>,
    /// The socket's content-token join budget (`tokenJoinRatePerSocket`), from its first join on.
    joins: Option<Box<crate::edge::limits::TokenBucket>>,
    /// The hub indexes this socket by its id, since it published without echo.
    sender: bool,
}

impl Connection {
    fn send(&self, frame: &ServerFrame) {
        self.outbox.push(codec::text_frame(&frame.encode()));
    }

    fn reply_error(&self, code: ErrorCode, message: impl Into<String>) {
        self.send(&ServerFrame::Error { code, message: message.into() });
    }

    async fn serve(&mut self, early: Bytes) -> End {
        self.send(&ServerFrame::Hello {
            socket_id: self.socket_id.clone(),
            heartbeat_ms: self.app.settings.conn.heartbeat_interval.as_millis() as u64,
            protocol: PROTOCOL_VERSION,
        });
        tracing::debug!("connected");
        if !early.is_empty() {
            if let Some(end) = self.on_bytes(&early).await {
                return end;
            }
        }
        self.event_loop().await
    }

    async fn event_loop(&mut self) -> End {
        let app = self.app.clone();
        let cfg = &app.settings.conn;
        let outbox = self.outbox.clone();
        let started = Instant::now();
        let (mut last_rx, mut last_tx, mut last_ping) = (started, started, started);
        let mut stalled_since: Option<Instant> = None;
        let timer = tokio::time::sleep_until(started + cfg.auth_timeout);
        tokio::pin!(timer);
        loop {
            // `authTimeoutMs` is the time to send `authenticate`; once sent, a slow Drupal may
            // take as long as it needs while the client stays alive (`heartbeatTimeoutMs`).
            let dead_at = match self.phase {
                auth::Phase::AwaitingAuth => started + cfg.auth_timeout,
                _ => last_rx + cfg.heartbeat_timeout,
            };
            // Ping when either direction has been quiet for an interval (at most once per
            // interval), so a client that only answers pings stays alive on a busy channel.
            let quiet_since = last_tx.min(last_rx).max(last_ping);
            let mut wake = dead_at.min(quiet_since + cfg.heartbeat_interval);
            if let Some(since) = stalled_since {
                wake = wake.min(since + cfg.write_timeout);
            }
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let pending = outbox.pending();
            let authenticating = matches!(self.phase, auth::Phase::Authenticating { .. });
            tokio::select! {
                () = outbox.wait() => {
                    if let Some(code) = outbox.closing() {
                        return End::Close(code);
                    }
                    if let Some(end) = flush(&outbox, &mut stalled_since, &mut last_tx) {
                        return end;
                    }
                }
                ready = outbox.socket().writable(), if pending => {
                    if ready.is_err() {
                        return End::Gone;
                    }
                    if let Some(end) = flush(&outbox, &mut stalled_since, &mut last_tx) {
                        return end;
                    }
                }
                ready = outbox.socket().readable() => {
                    if ready.is_err() {
                        return End::Gone;
                    }
                    last_rx = Instant::now();
                    if let Some(end) = self.read().await {
                        return end;
                    }
                }
                result = auth::lookup(&mut self.phase), if authenticating => {
                    if let Some(end) = self.on_auth_lookup(result).await {
                        return end;
                    }
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= dead_at {
                        return End::Close(match self.phase {
                            auth::Phase::AwaitingAuth => CloseCode::AUTH_TIMEOUT,
                            _ => CloseCode::HEARTBEAT_TIMEOUT,
                        });
                    }
                    if stalled_since.is_some_and(|s| now >= s + cfg.write_timeout) {
                        tracing::info!("closing slow consumer: nothing could be written for writeTimeoutMs");
                        self.app.metrics.slow_consumer("write_timeout");
                        return End::Close(CloseCode::SLOW_CONSUMER);
                    }
                    if now >= quiet_since + cfg.heartbeat_interval {
                        self.send(&ServerFrame::Ping);
                        last_ping = now;
                    }
                }
            }
        }
    }

    /// Reads what the socket has (a bounded number of times) and handles the frames.
    async fn read(&mut self) -> Option<End> {
        let (messages, end) = read_available(self.outbox.socket(), &mut self.reader);
        self.handle(messages, end).await
    }

    /// Parses bytes from the client and handles each complete message.
    async fn on_bytes(&mut self, data: &[u8]) -> Option<End> {
        let mut messages = Vec::new();
        let end = feed(&mut self.reader, data, &mut messages);
        self.handle(messages, end).await
    }

    /// Handles messages in order; `end` (a protocol violation, the end of the stream) comes
    /// after them.
    async fn handle(&mut self, messages: Vec<Incoming>, end: Option<End>) -> Option<End> {
        for m in messages {
            let stop = match m {
                Incoming::Text(text) => self.on_text(&text).await,
                Incoming::Ping(payload) => {
                    self.outbox.push_pong(codec::pong_frame(&payload));
                    None
                }
                Incoming::Pong => None,
                Incoming::Close(code) => Some(End::ClientClosed(code)),
            };
            if stop.is_some() {
                return stop;
            }
        }
        end
    }

    async fn on_text(&mut self, text: &str) -> Option<End> {
        let frame = match ClientFrame::decode(text) {
            Ok(f) => f,
            Err(e) => {
                match ClientRequest::decode_refused(text) {
                    Some(Ok(request)) => self.on_request(request, text.len()).await,
                    Some(Err((e, id))) => self.refuse(id, (ErrorCode::BadFrame, e)),
                    None => self.reply_error(ErrorCode::BadFrame, e),
                }
                return None;
            }
        };
        match frame {
            ClientFrame::Authenticate(a) => return self.on_authenticate(a),
            ClientFrame::JoinTokenChannel(join) => {
                self.on_join_token_channel(&join.channel, &join.content_token).await
            }
            ClientFrame::Ping => self.send(&ServerFrame::Pong),
            ClientFrame::Pong => {}
        }
        None
    }

    /// Takes the socket out of the hub and the engine, then closes it as `end` says.
    async fn leave(self, end: End) {
        if let End::Close(code) = end {
            // Nothing more may be pushed after the close frame.
            self.outbox.close(code);
        }
        let forced = matches!(self.outbox.closing(), Some(CloseCode::KICKED | CloseCode::LOGGED_OUT));
        let sender = self.sender.then_some(self.socket_id.as_str());
        let mut changes = self.app.hub.detach(self.id, forced, sender);
        if self.member.is_none() {
            changes.departures.clear();
        }
        if !changes.is_empty() {
            self.app.engine.changed(changes).await;
        }
        let metrics = &self.app.metrics;
        match end {
            End::Close(code) => {
                tracing::debug!(code = code.0, reason = code.reason(), "closing");
                metrics.closed(ClosedBy::Server, code.0);
            }
            End::ClientClosed(code) => {
                tracing::debug!(?code, "client closed");
                metrics.closed(ClosedBy::Client, code.unwrap_or(NO_STATUS));
            }
            End::Gone => {
                tracing::debug!("disconnected");
                metrics.closed(ClosedBy::Network, ABNORMAL);
            }
        }
        let mut reader = self.reader;
        finish(&self.outbox, end, &mut reader, self.app.settings.conn.write_timeout).await;
    }
}

/// Feeds `data` to the reader, collecting complete messages; a violation ends the connection.
fn feed(reader: &mut Reader, data: &[u8], messages: &mut Vec<Incoming>) -> Option<End> {
    match reader.feed(data, |m| {
        messages.push(m);
        true
    }) {
        Ok(()) => None,
        Err(v) => {
            tracing::info!(code = v.code.0, "closing: {}", v.what);
            Some(End::Close(v.code))
        }
    }
}

/// Reads what the socket has now, at most [`READS_PER_TURN`] times and until about
/// [`MESSAGES_PER_TURN`] messages (a synchronous function, so the read buffer lives on the
/// stack and not in every connection's future).
fn read_available(socket: &Socket, reader: &mut Reader) -> (Vec<Incoming>, Option<End>) {
    let mut buf = [0u8; 4096];
    let mut messages = Vec::new();
    for _ in 0..READS_PER_TURN {
        match socket.try_read(&mut buf) {
            Ok(0) => return (messages, Some(End::Gone)),
            Ok(n) => {
                if let Some(end) = feed(reader, &buf[..n], &mut messages) {
                    return (messages, Some(end));
                }
                if messages.len() >= MESSAGES_PER_TURN {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (messages, Some(End::Gone)),
        }
    }
    (messages, None)
}

/// Writes what the socket takes; tracks since when nothing could be written.
fn flush(outbox: &Outbox, stalled_since: &mut Option<Instant>, last_tx: &mut Instant) -> Option<End> {
    match outbox.flush() {
        Flush::Done => {
            *stalled_since = None;
            *last_tx = Instant::now();
            None
        }
        Flush::Blocked => {
            let now = Instant::now();
            *last_tx = now;
            stalled_since.get_or_insert(now);
            None
        }
        Flush::Broken => Some(End::Gone),
    }
}

/// Sends the close frame (our code, or the echo of the client's) and waits briefly for the
/// client's reply, so the code arrives before the TCP connection ends; then shuts the socket.
/// Writing the close frame may wait up to `write_timeout` (the socket of a slow consumer is
/// full: it gets its close code once it reads, or is dropped).
async fn finish(outbox: &Outbox, end: End, reader: &mut Reader, write_timeout: Duration) {
    let frame = match end {
        End::Close(code) => Some(codec::close_frame(code)),
        End::ClientClosed(code) => Some(codec::close_frame(CloseCode(code.unwrap_or(codec::NORMAL.0)))),
        End::Gone => None,
    };
    if let Some(frame) = frame {
        outbox.push_close(frame);
        let sent = async {
            loop {
                match outbox.flush() {
                    Flush::Done => return true,
                    Flush::Broken => return false,
                    Flush::Blocked => {
                        if outbox.socket().writable().await.is_err() {
                            return false;
                        }
                    }
                }
            }
        };
        let sent = tokio::time::timeout(write_timeout, sent).await.unwrap_or(false);
        if sent && matches!(end, End::Close(_)) {
            let _ = tokio::time::timeout(CLOSE_LINGER, await_close_reply(outbox.socket(), reader)).await;
        }
    }
    outbox.socket().shutdown();
}

/// Reads until the client's close frame (or the end of the stream), ignoring other frames.
async fn await_close_reply(socket: &Socket, reader: &mut Reader) {
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let (messages, end) = read_available(socket, reader);
        if end.is_some() || messages.iter().any(|m| matches!(m, Incoming::Close(_))) {
            return;
        }
    }
}
