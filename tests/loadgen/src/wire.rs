//! A lean WebSocket client transport for the load generator: the upgrade by hand, then frames
//! parsed in place from one reusable buffer (no per-frame allocation, no zero-filling of the
//! read buffer, one `read` per wake-up), and masked client frames formatted by tungstenite.
//! tokio-tungstenite's stream costs about twice as much CPU per received frame, which made the
//! load generator the bottleneck of the ceiling measurement.

use bytes::{Buf, BytesMut};
use std::io::Cursor;
use std::ops::Range;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Largest frame accepted from a server.
const MAX_FRAME: usize = 1 << 20;

pub struct WsConn {
    stream: TcpStream,
    buf: BytesMut,
    out: Vec<u8>,
}

/// A complete frame at the front of the buffer.
pub struct Parsed {
    pub opcode: OpCode,
    pub payload: Range<usize>,
    len: usize,
}

impl WsConn {
    /// Performs the client upgrade for `url` (`ws://host:port/path?query`) over `stream`.
    pub async fn connect(mut stream: TcpStream, url: &str) -> Result<WsConn, String> {
        let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let key = generate_key();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| format!("upgrade: write: {}", e.kind()))?;
        let mut buf = BytesMut::with_capacity(4096);
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err("upgrade: response head too long".into());
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err("upgrade: connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("upgrade: read: {}", e.kind())),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.lines().next().unwrap_or("");
        if !status.contains(" 101 ") {
            return Err(format!("upgrade refused: {status}"));
        }
        let expected = derive_accept_key(key.as_bytes());
        let accepted = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == expected
            })
        });
        if !accepted {
            return Err("upgrade: bad Sec-WebSocket-Accept".into());
        }
        buf.advance(end);
        Ok(WsConn { stream, buf, out: Vec::with_capacity(256) })
    }

    /// Reads what the socket has; false at end of stream. Cancel-safe.
    pub async fn fill(&mut self) -> std::io::Result<bool> {
        self.buf.reserve(4096);
        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    /// The complete frame at the front of the buffer, if there is one.
    pub fn frame(&self) -> Result<Option<Parsed>, String> {
        let mut cursor = Cursor::new(&self.buf[..]);
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(|e| format!("bad frame: {e}"))?
        else {
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| "frame too long")?;
        if len > MAX_FRAME {
            return Err(format!("frame of {len} bytes"));
        }
        if header.mask.is_some() || !header.is_final {
            return Err("masked or fragmented frame from the server".into());
        }
        let start = cursor.position() as usize;
        if self.buf.len() < start + len {
            return Ok(None);
        }
        Ok(Some(Parsed { opcode: header.opcode, payload: start..start + len, len: start + len }))
    }

    pub fn payload(&self, f: &Parsed) -> &[u8] {
        &self.buf[f.payload.clone()]
    }

    /// Drops a handled frame from the buffer.
    pub fn consume(&mut self, f: Parsed) {
        self.buf.advance(f.len);
    }

    async fn send(&mut self, frame: Frame) -> std::io::Result<()> {
        let mut frame = frame;
        frame.header_mut().mask = Some(rand::random());
        self.out.clear();
        frame.format(&mut self.out).map_err(std::io::Error::other)?;
        self.stream.write_all(&self.out).await
    }

    pub async fn send_text(&mut self, text: String) -> std::io::Result<()> {
        self.send(Frame::message(text, OpCode::Data(Data::Text), true)).await
    }

    pub async fn send_pong(&mut self, payload: Vec<u8>) -> std::io::Result<()> {
        self.send(Frame::pong(payload)).await
    }

    /// Sends a close frame and shuts the socket down.
    pub async fn close(&mut self) {
        let _ = self.send(Frame::close(None)).await;
        let _ = self.stream.shutdown().await;
    }
}

/// The close code of a close frame's payload.
pub fn close_code(payload: &[u8]) -> String {
    match payload {
        [a, b, ..] => u16::from_be_bytes([*a, *b]).to_string(),
        _ => "none".into(),
    }
}
