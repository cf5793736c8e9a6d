//! One simulated browser: a task that connects (from a chosen 127.0.0.x source address), speaks
//! drupal-push's protocol, socket.io 2 / engine.io v3 or Pusher 7, authenticates, answers
//! heartbeats and records every bench message it receives in its [`Fleet`]. Hot path: a
//! substring search for the stamp, no JSON parse.

use crate::fleet::{Fleet, Local, Proto, find_stamp};
use crate::pusher::{self, Incoming};
use crate::wire::{WsConn, close_code};
use drupal_push_protocol::frames::Authenticate;
use drupal_push_protocol::{ClientFrame, ServerFrame};
use serde_json::json;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_util::sync::CancellationToken;

/// Longest wait for the TCP connect and the WebSocket upgrade.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs client `idx` until `cancel` fires or the server ends the connection.
pub async fn run(fleet: Arc<Fleet>, idx: usize, cancel: CancellationToken) {
    let ws = tokio::select! {
        r = tokio::time::timeout(CONNECT_TIMEOUT, connect(&fleet, idx)) => match r {
            Ok(Ok(ws)) => ws,
            Ok(Err(e)) => {
                fleet.mark_failed(idx, e);
                return;
            }
            Err(_) => {
                fleet.mark_failed(idx, "connect: timed out".into());
                return;
            }
        },
        () = cancel.cancelled() => return,
    };
    let mut client =
        Client { fleet, idx, local: Local::default(), done: false, ping_every: None, arm_ping: false };
    client.serve(ws, cancel).await;
}

async fn connect(fleet: &Fleet, idx: usize) -> Result<WsConn, String> {
    let spec = &fleet.spec;
    let endpoint = fleet.endpoint(idx);
    let tcp = dial(endpoint.addr, spec.sources.get(idx % spec.sources.len().max(1)).copied())
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    WsConn::connect(tcp, &endpoint.url).await
}

/// Next source port to try when binding to a chosen source address: handing out ports
/// ourselves keeps `bind` O(1) (with port 0 the kernel searches the range for every socket,
/// which made 19k connects 7x slower).
static NEXT_PORT: AtomicU32 = AtomicU32::new(0);
const FIRST_PORT: u32 = 10_000;
const PORTS: u32 = 55_000;

/// A TCP connection to `addr`, from `source` when given (else the kernel picks the source, which
/// gives about 28k connections per destination on this machine).
async fn dial(addr: SocketAddr, source: Option<std::net::IpAddr>) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        return Ok(tcp);
    };
    let mut last = None;
    for _ in 0..32 {
        let port = FIRST_PORT + NEXT_PORT.fetch_add(1, Relaxed) % PORTS;
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        if let Err(e) = socket.bind(SocketAddr::new(ip, port as u16)) {
            last = Some(e);
            continue;
        }
        match socket.connect(addr).await {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) if matches!(e.kind(), ErrorKind::AddrInUse | ErrorKind::AddrNotAvailable) => {
                last = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ErrorKind::AddrNotAvailable.into()))
}

/// What a client does after a frame.
enum Step {
    Send(String),
    /// Get the Pusher subscription of socket `.0` signed by the backend, then subscribe.
    Authorize(String),
}

struct Client {
    fleet: Arc<Fleet>,
    idx: usize,
    local: Local,
    /// Already counted as failed.
    done: bool,
    /// Send a ping after sending nothing for this long: drupal-push's `heartbeatMs` (from
    /// `hello`), engine.io's `pingInterval` (from `open`). Both servers count only what the
    /// client sends as a sign of life.
    ping_every: Option<Duration>,
    /// Something was sent (or the period became known): restart the ping timer.
    arm_ping: bool,
}

impl Client {
    async fn serve(&mut self, mut ws: WsConn, cancel: CancellationToken) {
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        let far = Instant::now() + Duration::from_secs(86_400);
        let ping = tokio::time::sleep_until(far);
        tokio::pin!(ping);
        loop {
            if let Err(why) = self.handle_frames(&mut ws).await {
                return self.ended(why);
            }
            if std::mem::take(&mut self.arm_ping) {
                if let Some(every) = self.ping_every {
                    ping.as_mut().reset(Instant::now() + every);
                }
            }
            tokio::select! {
                biased;
                () = &mut cancelled => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
                    return;
                }
                read = ws.fill() => match read {
                    Ok(true) => {}
                    Ok(false) => return self.ended("connection ended".into()),
                    Err(e) => return self.ended(format!("read: {}", e.kind())),
                },
                () = &mut ping => {
                    // Nothing sent for a heartbeat period: drupal-push `ping` (PROTOCOL.md,
                    // Heartbeat) or engine.io v3 `2`; both servers answer.
                    let text = match self.fleet.spec.proto {
                        Proto::Ours => ClientFrame::Ping.encode(),
                        Proto::SocketIo => "2".to_owned(),
                        Proto::Pusher => pusher::ping(),
                    };
                    if let Err(e) = ws.send_text(text).await {
                        return self.ended(format!("write: {}", e.kind()));
                    }
                    self.arm_ping = true;
                }
            }
        }
    }

    /// Handles every complete frame in the buffer.
    async fn handle_frames(&mut self, ws: &mut WsConn) -> Result<(), String> {
        while let Some(frame) = ws.frame()? {
            match frame.opcode {
                OpCode::Data(Data::Text) => {
                    let text = std::str::from_utf8(ws.payload(&frame)).map_err(|_| "text frame not UTF-8")?;
                    let step = self.on_text(text);
                    ws.consume(frame);
                    let text = match step {
                        None => continue,
                        Some(Step::Send(text)) => text,
                        Some(Step::Authorize(socket_id)) => {
                            let auth = self.fleet.pusher_auth(&socket_id).await?;
                            pusher::subscribe(&self.fleet.spec.channel, Some(&auth))
                        }
                    };
                    ws.send_text(text).await.map_err(|e| format!("write: {}", e.kind()))?;
                    self.arm_ping = true;
                }
                OpCode::Control(Control::Ping) => {
                    let payload = ws.payload(&frame).to_vec();
                    ws.consume(frame);
                    ws.send_pong(payload).await.map_err(|e| format!("write: {}", e.kind()))?;
                }
                OpCode::Control(Control::Close) => {
                    return Err(format!("closed by the server, code {}", close_code(ws.payload(&frame))));
                }
                _ => ws.consume(frame),
            }
        }
        Ok(())
    }

    /// The connection ended without being asked to: a failure before the client was ready, a
    /// drop after.
    fn ended(&mut self, why: String) {
        if !std::mem::replace(&mut self.done, true) && !self.fleet.mark_failed(self.idx, why) {
            self.fleet.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Handles a text frame; returns what to do next, if anything.
    fn on_text(&mut self, text: &str) -> Option<Step> {
        if let Some(d) = find_stamp(text) {
            self.fleet.deliver(&mut self.local, d);
            return None;
        }
        match self.fleet.spec.proto {
            Proto::Ours => self.on_ours(text).map(Step::Send),
            Proto::SocketIo => self.on_socket_io(text).map(Step::Send),
            Proto::Pusher => self.on_pusher(text),
        }
    }

    fn on_pusher(&mut self, text: &str) -> Option<Step> {
        match pusher::decode(text) {
            Incoming::Established { socket_id, activity_timeout } => {
                // pusher-js pings after `activity_timeout` without traffic.
                self.ping_every = Some(Duration::from_secs(activity_timeout.max(1)));
                if self.fleet.spec.auth_url.is_some() {
                    Some(Step::Authorize(socket_id))
                } else {
                    Some(Step::Send(pusher::subscribe(&self.fleet.spec.channel, None)))
                }
            }
            Incoming::Subscribed => {
                self.fleet.mark_ready(self.idx);
                None
            }
            Incoming::Ping => Some(Step::Send(pusher::pong())),
            Incoming::Pong => None,
            Incoming::Error(e) => {
                self.fleet.note_error(format!("pusher error: {e}"));
                None
            }
            Incoming::Other(t) => {
                self.fleet.note_error(format!("unexpected frame: {t}"));
                None
            }
        }
    }

    fn on_ours(&mut self, text: &str) -> Option<String> {
        match ServerFrame::decode(text) {
            Ok(ServerFrame::Hello { heartbeat_ms, .. }) => {
                self.ping_every = Some(Duration::from_millis(heartbeat_ms.max(100)));
                let auth = Authenticate {
                    auth_token: self.fleet.token(self.idx),
                    content_tokens: Default::default(),
                    positions: None,
                    extra: Default::default(),
                };
                Some(ClientFrame::Authenticate(auth).encode())
            }
            Ok(ServerFrame::Authenticated { .. }) => {
                self.fleet.mark_ready(self.idx);
                None
            }
            Ok(ServerFrame::Ping) => Some(ClientFrame::Pong.encode()),
            Ok(ServerFrame::Error { code, message }) => {
                self.fleet.note_error(format!("error frame {code:?}: {message}"));
                None
            }
            Ok(
                ServerFrame::Message(_)
                | ServerFrame::Pong
                | ServerFrame::Joined { .. }
                | ServerFrame::Ack { .. },
            ) => None,
            Err(e) => {
                self.fleet.note_error(e);
                None
            }
        }
    }

    /// engine.io v3 packets: `0` open, `2`/`3` ping/pong, `4` message; socket.io 2 packets inside
    /// `4`: `0` connect, `1` disconnect, `2` event (`42[...]`).
    fn on_socket_io(&mut self, text: &str) -> Option<String> {
        if let Some(open) = text.strip_prefix('0') {
            let interval = serde_json::from_str::<serde_json::Value>(open)
                .ok()
                .and_then(|v| v.get("pingInterval")?.as_u64())
                .unwrap_or(25_000);
            self.ping_every = Some(Duration::from_millis(interval));
            self.arm_ping = true;
            return None;
        }
        match text {
            "40" => {
                let subscribe = json!(["subscribe", {
                    "channel": self.fleet.spec.channel,
                    "auth": {"headers": {
                        "Authorization": format!("Bearer {}", self.fleet.token(self.idx)),
                        "X-Bench-Client": format!("{}:{}", self.fleet.id, self.idx),
                    }},
                }]);
                Some(format!("42{subscribe}"))
            }
            "2" => Some("3".into()),
            "3" => None,
            t if t.starts_with("42[\"subscription_error\"") => {
                self.done = true;
                self.fleet.mark_failed(self.idx, format!("subscription error: {t}"));
                None
            }
            t => {
                self.fleet
                    .note_error(format!("unexpected packet: {}", t.chars().take(60).collect::<String>()));
                None
            }
        }
    }
}
