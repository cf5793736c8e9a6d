//! The ceiling: the least work a server can do to fan a message out over WebSocket on this
//! machine, so that every figure has a "machine limit" to be compared with.
//!
//! `drupal-push-bench broadcaster` listens twice on 127.0.0.1: WebSocket connections on one port
//! (a hand-rolled upgrade, then `hello` and, after the client's first frame, `authenticated`,
//! both from the protocol crate) and `POST /nodejs/publish` on the other (axum). A publish wraps
//! the body in a message envelope once, formats one WebSocket frame once (tungstenite's
//! `Frame::format`) and appends those bytes to every connection's backlog; one flusher task
//! writes each backlog with one non-blocking `write` (frames published meanwhile pile up and
//! go out together, as in drupal-push's batching writer). Only what the kernel refuses waits
//! for the connection's own task. No channels, no auth, no per-frame encoding, no logic.

use axum::Json;
use axum::routing::post;
use bytes::Bytes;
use drupal_push_protocol::{PROTOCOL_VERSION, ServerFrame, SocketId, Uid, frames};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

struct Conn {
    stream: TcpStream,
    /// Frames not written yet.
    backlog: Mutex<Vec<u8>>,
    /// In the hub's dirty list.
    queued: AtomicBool,
    /// The kernel refused bytes: the connection's task waits until it can write them.
    stuck: Notify,
}

#[derive(Default)]
struct Hub {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Connections with a backlog, in the order they got it.
    dirty: Mutex<Vec<Arc<Conn>>>,
    flush: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    /// Writes as much of the backlog as the kernel takes; false when the socket is dead.
    fn write_backlog(&self) -> bool {
        let mut backlog = lock(&self.backlog);
        while !backlog.is_empty() {
            match self.stream.try_write(&backlog) {
                Ok(n) => {
                    backlog.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.stuck.notify_one();
                    return true;
                }
                Err(_) => {
                    // The connection's task sees the error too and removes it.
                    backlog.clear();
                    return false;
                }
            }
        }
        true
    }
}

/// Writes the backlogs of dirty connections, one `write` each; frames published meanwhile pile
/// up behind and go out together on the next pass.
async fn flusher(hub: Arc<Hub>) {
    loop {
        hub.flush.notified().await;
        loop {
            let batch = std::mem::take(&mut *lock(&hub.dirty));
            if batch.is_empty() {
                break;
            }
            for conn in batch {
                conn.queued.store(false, Relaxed);
                conn.write_backlog();
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Runs the broadcaster until the process is killed.
pub async fn serve() -> anyhow::Result<()> {
    // A deep accept queue (tokio's `bind` listens with a backlog of 128).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let ws = socket.listen(4096)?;
    let api = TcpListener::bind("127.0.0.1:0").await?;
    println!("ceiling listening ws={} http={}", ws.local_addr()?, api.local_addr()?);
    let hub = Arc::new(Hub::default());
    tokio::spawn(flusher(hub.clone()));
    let app = axum::Router::new().route("/nodejs/publish", post(publish)).with_state(hub.clone());
    tokio::spawn(async move {
        use axum::serve::ListenerExt;
        let api = api.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(api, app).await;
    });
    let mut next_id = 0u64;
    loop {
        let stream = match ws.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("ceiling: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        tokio::spawn(connection(hub.clone(), stream, next_id));
    }
}

async fn publish(axum::extract::State(hub): axum::extract::State<Arc<Hub>>, body: Bytes) -> Json<Value> {
    let Ok(raw) = serde_json::from_slice::<&serde_json::value::RawValue>(&body) else {
        return Json(json!({"error": "Invalid JSON"}));
    };
    let channel = serde_json::from_str::<Value>(raw.get())
        .ok()
        .and_then(|v| v.get("channel").and_then(Value::as_str).map(str::to_owned));
    let frame = ws_frame(frames::encode_message(raw, channel.as_deref()));
    let conns = lock(&hub.conns);
    let mut dirty = lock(&hub.dirty);
    for conn in conns.values() {
        lock(&conn.backlog).extend_from_slice(&frame);
        if !conn.queued.swap(true, Relaxed) {
            dirty.push(conn.clone());
        }
    }
    let sent = conns.len();
    drop((dirty, conns));
    hub.flush.notify_one();
    Json(json!({"status": "success", "sent": sent}))
}

/// One unmasked WebSocket text frame, header and payload, ready to write.
fn ws_frame(text: String) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 10);
    Frame::message(text, OpCode::Data(Data::Text), true).format(&mut out).expect("writing to a Vec");
    out
}

async fn connection(hub: Arc<Hub>, stream: TcpStream, id: u64) {
    let mut buf = Vec::with_capacity(1024);
    let Some(rest) = handshake(&stream, &mut buf).await else { return };
    let socket_id = SocketId(format!("c{id}"));
    let hello =
        ServerFrame::Hello { socket_id: socket_id.clone(), heartbeat_ms: 25_000, protocol: PROTOCOL_VERSION };
    if write_all(&stream, &ws_frame(hello.encode())).await.is_err() {
        return;
    }
    // The first data frame is the client's `authenticate`; whatever it says, it is accepted.
    buf = rest;
    if !read_frame(&stream, &mut buf).await {
        return;
    }
    let ack = ServerFrame::Authenticated {
        socket_id,
        uid: Uid(id),
        channels: vec!["bench".into()],
        streams: Default::default(),
        recovered: Default::default(),
        online: None,
    };
    if write_all(&stream, &ws_frame(ack.encode())).await.is_err() {
        return;
    }
    let conn = Arc::new(Conn {
        stream,
        backlog: Mutex::new(Vec::new()),
        queued: AtomicBool::new(false),
        stuck: Notify::new(),
    });
    lock(&hub.conns).insert(id, conn.clone());
    drain(&conn).await;
    lock(&hub.conns).remove(&id);
}

/// Reads (and ignores) what the client sends and writes what the flusher could not, until the
/// client leaves.
async fn drain(conn: &Conn) {
    let mut sink = [0u8; 2048];
    loop {
        tokio::select! {
            r = conn.stream.readable() => {
                if r.is_err() {
                    return;
                }
                match conn.stream.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            () = conn.stuck.notified() => {
                loop {
                    if conn.stream.writable().await.is_err() || !conn.write_backlog() {
                        return;
                    }
                    if lock(&conn.backlog).is_empty() {
                        break;
                    }
                }
            }
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads more bytes into `buf`; false at end of stream or on error.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 2048];
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        match stream.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
}

/// Answers the HTTP upgrade; returns the bytes read past the request.
async fn handshake(stream: &TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 16 * 1024 || !read_more(stream, buf).await {
            return None;
        }
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
    })?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    write_all(stream, answer.as_bytes()).await.ok()?;
    Some(buf.split_off(end))
}

/// Waits until `buf` holds one whole client frame (of any kind) and removes it.
async fn read_frame(stream: &TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        let mut cursor = Cursor::new(buf.as_slice());
        if let Ok(Some((header, len))) = FrameHeader::parse(&mut cursor) {
            let total = cursor.position() as usize + len as usize;
            if buf.len() >= total {
                let _ = header;
                buf.drain(..total);
                return true;
            }
        }
        if !read_more(stream, buf).await {
            return false;
        }
    }
}
