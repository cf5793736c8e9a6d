//! RFC 6455 conformance over a raw TCP socket: each protocol violation gets a close frame with
//! the code the RFC asks for (1002 protocol error, 1007 invalid payload, 1009 too big, 1003 for
//! the binary data we do not accept), and a malformed handshake a clear HTTP answer.

use drupal_push_tests::TestServer;
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A masked client frame with the given first byte (FIN, RSV, opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A raw WebSocket: upgraded by hand, reading frames by hand.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(s: &TestServer) -> Raw {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            s.config.listen.ws_path, s.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Raw { tcp, buf: Vec::new() };
        let head = raw.read_until(b"\r\n\r\n").await;
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "RFC 6455 sample accept key: {head}");
        let (op, payload) = raw.next_frame().await.expect("hello");
        assert_eq!(op, 1);
        assert!(String::from_utf8(payload).unwrap().contains("\"hello\""));
        raw
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(drupal_push_tests::WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("server answers in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn read_until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(i) = self.buf.windows(end.len()).position(|w| w == end) {
                return self.buf.drain(..i + end.len()).collect();
            }
            assert!(self.fill().await, "connection ended early");
        }
    }

    /// The next server frame (opcode, payload); `None` when the stream ends.
    async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 4 || (self.buf.len() >= 2 && self.buf[1] & 0x7f < 126) {
                let (mut len, mut at) = ((self.buf[1] & 0x7f) as usize, 2);
                if len == 126 {
                    len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                    at = 4;
                }
                if self.buf.len() >= at + len {
                    let op = self.buf[0] & 0x0f;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((op, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Sends `bytes` and returns the code of the close frame that follows (skipping others),
    /// answering it as a well-behaved client does.
    async fn close_code_after(&mut self, bytes: &[u8]) -> Option<u16> {
        self.tcp.write_all(bytes).await.unwrap();
        while let Some((op, payload)) = self.next_frame().await {
            if op == 8 {
                let _ = self.tcp.write_all(&frame(0x88, &payload[..2])).await;
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
        None
    }
}

async fn server() -> (FakeDrupal, TestServer) {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("tok", Answer::valid(1, &["c"]));
    let s = TestServer::start_with(&d, &[("maxFrameSize", "2kb")]).await;
    (d, s)
}

#[tokio::test]
async fn each_violation_is_closed_with_its_rfc_code() {
    let (_d, s) = server().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("invalid UTF-8 in a text frame", frame(0x81, &[0xff, 0xfe, 0xfd]), 1007),
        ("RSV1 set", frame(0xC1, b"{}"), 1002),
        ("unmasked client frame", vec![0x81, 0x02, b'{', b'}'], 1002),
        ("continuation with nothing to continue", frame(0x80, b"{}"), 1002),
        ("reserved opcode", frame(0x83, b""), 1002),
        ("fragmented ping", frame(0x09, b""), 1002),
        ("frame over maxFrameSize", frame(0x81, &[b' '; 3000]), 1009),
        ("binary frame", frame(0x82, b"\x00\x01"), 1003),
        ("close frame with a one-byte payload", frame(0x88, &[3]), 1002),
        ("invalid close code", frame(0x88, &999u16.to_be_bytes()), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut raw = Raw::connect(&s).await;
        assert_eq!(raw.close_code_after(&bytes).await, Some(code), "{what}");
        assert!(raw.next_frame().await.is_none(), "{what}: the connection ends after the close frame");
    }
}

#[tokio::test]
async fn fragments_pings_and_closes_are_honoured() {
    let (_d, s) = server().await;
    let mut raw = Raw::connect(&s).await;
    let auth = br#"{"type":"authenticate","authToken":"tok"}"#;
    let mut bytes = frame(0x01, &auth[..10]);
    bytes.extend(frame(0x89, b"hi"));
    bytes.extend(frame(0x80, &auth[10..]));
    raw.tcp.write_all(&bytes).await.unwrap();
    assert_eq!(
        raw.next_frame().await,
        Some((0xA, b"hi".to_vec())),
        "pong in the middle of a fragmented message"
    );
    let (op, ack) = raw.next_frame().await.unwrap();
    assert_eq!(op, 1);
    assert!(String::from_utf8(ack).unwrap().contains("\"authenticated\""));
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"bye");
    assert_eq!(raw.close_code_after(&frame(0x88, &close)).await, Some(1000), "the client's close is echoed");
}

#[tokio::test]
async fn a_request_that_is_not_an_upgrade_gets_a_clear_answer() {
    let (_d, s) = server().await;
    let http = drupal_push_tests::http_client();
    let r = http.get(s.url(&s.config.listen.ws_path)).send().await.unwrap();
    assert_eq!(r.status(), 426);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("WebSocket endpoint"), "{body}");
    let r = http
        .get(s.url(&s.config.listen.ws_path))
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "8")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 426);
    assert_eq!(r.headers()["sec-websocket-version"], "13");
}
