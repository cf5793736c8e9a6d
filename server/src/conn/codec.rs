//! The WebSocket wire format (RFC 6455 section 5) as this server needs it: server frames are
//! encoded once into ready-to-write bytes ([`text_frame`], [`close_frame`], ...), and client
//! frames are parsed incrementally by a [`Reader`] that enforces the rules of the RFC and
//! answers each violation with the close code the RFC asks for (1002 protocol error, 1007
//! invalid UTF-8, 1009 too big, 1003 for the binary data we do not accept).
//!
//! No extension is ever negotiated, so the RSV bits must be clear; client frames must be masked;
//! control frames are at most 125 bytes and never fragmented; a continuation frame needs a
//! fragmented message to continue. The reader keeps no buffer while idle: bytes are copied out of
//! the caller's read buffer only when a frame arrives split over several reads.

use bytes::{BufMut, Bytes, BytesMut};
use drupal_push_protocol::CloseCode;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// RFC 6455 close codes for protocol-level failures (the application codes live in the
/// protocol crate's [`CloseCode`]).
pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
pub const NORMAL: CloseCode = CloseCode(1000);

/// Largest control-frame payload (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// A complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Ping(Vec<u8>),
    Pong,
    /// The client's close frame: its code (none when the frame had no payload).
    Close(Option<u16>),
}

/// Why reading stopped: the close code to answer with, and what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: CloseCode,
    pub what: &'static str,
}

fn violation(code: CloseCode, what: &'static str) -> Violation {
    Violation { code, what }
}

/// Header length needed to encode a payload of `len` bytes (server frames are unmasked).
fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

fn put_header(buf: &mut BytesMut, opcode: u8, len: usize) {
    buf.put_u8(0x80 | opcode);
    match len {
        0..=125 => buf.put_u8(len as u8),
        126..=0xFFFF => {
            buf.put_u8(126);
            buf.put_u16(len as u16);
        }
        _ => {
            buf.put_u8(127);
            buf.put_u64(len as u64);
        }
    }
}

fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    put_header(&mut buf, opcode, payload.len());
    buf.put_slice(payload);
    buf.freeze()
}

/// A text frame, header included: what a publish encodes once and writes to every subscriber.
pub fn text_frame(payload: &str) -> Bytes {
    frame(OP_TEXT, payload.as_bytes())
}

/// A close frame with `code` and its reason text.
pub fn close_frame(code: CloseCode) -> Bytes {
    let reason = code.reason().as_bytes();
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.0.to_be_bytes());
    payload.extend_from_slice(reason);
    frame(OP_CLOSE, &payload)
}

/// A pong answering a ping with `payload`.
pub fn pong_frame(payload: &[u8]) -> Bytes {
    frame(OP_PONG, payload)
}

/// Close codes a client may send (RFC 6455 7.4.1 and the IANA registry): 1000-1003, 1007-1014,
/// and the ranges for libraries (3000-3999) and applications (4000-4999).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A fragmented message being assembled.
struct Partial {
    opcode: u8,
    payload: Vec<u8>,
}

/// Incremental parser of client frames. Feed it what the socket gave with [`Reader::feed`] and
/// take complete messages with the callback.
pub struct Reader {
    /// Bytes of a frame that arrived split over reads (empty, without allocation, when idle).
    pending: Vec<u8>,
    partial: Option<Partial>,
    max_message: usize,
}

impl Reader {
    pub fn new(max_message: usize) -> Reader {
        Reader { pending: Vec::new(), partial: None, max_message }
    }

    /// Parses `data` (appended to any pending bytes) and hands each complete message to `on`.
    /// Stops at the first violation, or when `on` returns false (the connection is ending).
    pub fn feed(&mut self, data: &[u8], mut on: impl FnMut(Incoming) -> bool) -> Result<(), Violation> {
        if self.pending.is_empty() {
            let used = self.parse(data, &mut on)?;
            if used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(data);
            let used = self.parse(&pending, &mut on)?;
            pending.drain(..used);
            self.pending = pending;
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = Vec::new();
        }
        Ok(())
    }

    /// Parses as many whole frames of `buf` as there are; returns the bytes consumed.
    fn parse(&mut self, buf: &[u8], on: &mut impl FnMut(Incoming) -> bool) -> Result<usize, Violation> {
        let mut at = 0;
        while let Some((frame_len, message)) = self.next_frame(&buf[at..])? {
            at += frame_len;
            if let Some(m) = message {
                if !on(m) {
                    break;
                }
            }
        }
        Ok(at)
    }

    /// One frame from the start of `buf`: its length and the message it completes, if any;
    /// `None` when `buf` does not hold a whole frame yet.
    fn next_frame(&mut self, buf: &[u8]) -> Result<Option<(usize, Option<Incoming>)>, Violation> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        if b0 & 0x70 != 0 {
            return Err(violation(PROTOCOL_ERROR, "RSV bits set without a negotiated extension"));
        }
        if b1 & 0x80 == 0 {
            return Err(violation(PROTOCOL_ERROR, "client frame not masked"));
        }
        let is_control = opcode & 0x8 != 0;
        if !matches!(opcode, OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG) {
            return Err(violation(PROTOCOL_ERROR, "reserved opcode"));
        }
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(violation(PROTOCOL_ERROR, "payload length with the high bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if is_control && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
            return Err(violation(PROTOCOL_ERROR, "fragmented or oversized control frame"));
        }
        let so_far = self.partial.as_ref().map_or(0, |p| p.payload.len());
        if !is_control && len.saturating_add(so_far as u64) > self.max_message as u64 {
            return Err(violation(CloseCode::MESSAGE_TOO_BIG, "message over maxFrameSize"));
        }
        let len = len as usize;
        if buf.len() < at + 4 + len {
            return Ok(None);
        }
        let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        let mut payload = buf[at..at + len].to_vec();
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
        let message = self.frame(fin, opcode, payload)?;
        Ok(Some((at + len, message)))
    }

    /// Applies one unmasked frame; returns the message it completes.
    fn frame(&mut self, fin: bool, opcode: u8, payload: Vec<u8>) -> Result<Option<Incoming>, Violation> {
        match opcode {
            OP_PING => Ok(Some(Incoming::Ping(payload))),
            OP_PONG => Ok(Some(Incoming::Pong)),
            OP_CLOSE => close_payload(&payload).map(|code| Some(Incoming::Close(code))),
            OP_CONTINUATION => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(violation(PROTOCOL_ERROR, "continuation frame with nothing to continue"));
                };
                partial.payload.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let Partial { opcode, payload } = self.partial.take().expect("checked above");
                message(opcode, payload).map(Some)
            }
            _ => {
                if self.partial.is_some() {
                    return Err(violation(PROTOCOL_ERROR, "new message inside a fragmented one"));
                }
                if fin {
                    message(opcode, payload).map(Some)
                } else {
                    self.partial = Some(Partial { opcode, payload });
                    Ok(None)
                }
            }
        }
    }
}

/// A complete data message.
fn message(opcode: u8, payload: Vec<u8>) -> Result<Incoming, Violation> {
    if opcode == OP_BINARY {
        return Err(violation(CloseCode::UNSUPPORTED_DATA, "binary message (only text frames are accepted)"));
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| violation(INVALID_PAYLOAD, "text message is not valid UTF-8"))
}

/// The code of a close frame's payload (RFC 6455 5.5.1).
fn close_payload(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(violation(PROTOCOL_ERROR, "close frame with a one-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_code(code) {
                return Err(violation(PROTOCOL_ERROR, "close frame with an invalid code"));
            }
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err(violation(INVALID_PAYLOAD, "close reason is not valid UTF-8"));
            }
            Ok(Some(code))
        }
    }
}

/// What [`Reader`] made of a byte stream, for the fuzz harness ([`crate::fuzz_codec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecRun {
    /// Each complete message, as its `Debug` form (`Text("…")`, `Ping([..])`, `Pong`, `Close(..)`).
    pub messages: Vec<String>,
    /// The violation reading stopped at: its close code and what it logs.
    pub violation: Option<(u16, &'static str)>,
}

/// Feeds `chunks` in turn to one reader, as reads from a socket would, until a violation.
pub fn run_chunks(max_message: usize, chunks: &[&[u8]]) -> CodecRun {
    let mut reader = Reader::new(max_message);
    let mut run = CodecRun { messages: Vec::new(), violation: None };
    for chunk in chunks {
        let fed = reader.feed(chunk, |m| {
            run.messages.push(format!("{m:?}"));
            true
        });
        if let Err(v) = fed {
            run.violation = Some((v.code.0, v.what));
            break;
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
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

    fn read_all(reader: &mut Reader, data: &[u8]) -> Result<Vec<Incoming>, Violation> {
        let mut got = Vec::new();
        reader.feed(data, |m| {
            got.push(m);
            true
        })?;
        Ok(got)
    }

    #[test]
    fn server_frames_have_the_right_headers() {
        assert_eq!(&text_frame("hi")[..], b"\x81\x02hi");
        let long = "x".repeat(300);
        let f = text_frame(&long);
        assert_eq!(&f[..4], &[0x81, 126, 0x01, 0x2c]);
        assert_eq!(f.len(), 304);
        let huge = "y".repeat(70_000);
        let f = text_frame(&huge);
        assert_eq!(&f[..2], &[0x81, 127]);
        assert_eq!(u64::from_be_bytes(f[2..10].try_into().unwrap()), 70_000);
        assert_eq!(&close_frame(CloseCode::KICKED)[..], b"\x88\x08\x0f\xa2kicked");
        assert_eq!(&pong_frame(b"ab")[..], b"\x8a\x02ab");
    }

    #[test]
    fn reads_whole_and_split_frames() {
        let mut r = Reader::new(1 << 16);
        let mut bytes = client(0x81, b"{\"type\":\"ping\"}");
        bytes.extend(client(0x89, b"p"));
        bytes.extend(client(0x8A, b""));
        assert_eq!(
            read_all(&mut r, &bytes).unwrap(),
            vec![Incoming::Text("{\"type\":\"ping\"}".into()), Incoming::Ping(b"p".to_vec()), Incoming::Pong]
        );
        let big = "z".repeat(1000);
        let bytes = client(0x81, big.as_bytes());
        let mut got = Vec::new();
        for chunk in bytes.chunks(7) {
            got.extend(read_all(&mut r, chunk).unwrap());
        }
        assert_eq!(got, vec![Incoming::Text(big)]);
        assert_eq!(r.pending.capacity(), 0, "no buffer kept while idle");
    }

    #[test]
    fn reassembles_fragments_with_control_frames_between() {
        let mut r = Reader::new(1 << 16);
        let mut bytes = client(0x01, b"he");
        bytes.extend(client(0x89, b""));
        bytes.extend(client(0x00, b"ll"));
        bytes.extend(client(0x80, b"o"));
        assert_eq!(
            read_all(&mut r, &bytes).unwrap(),
            vec![Incoming::Ping(vec![]), Incoming::Text("hello".into())]
        );
    }

    #[test]
    fn utf8_is_checked_on_the_whole_message() {
        let mut r = Reader::new(1 << 16);
        let e = "é".as_bytes();
        let mut bytes = client(0x01, &e[..1]);
        bytes.extend(client(0x80, &e[1..]));
        assert_eq!(read_all(&mut r, &bytes).unwrap(), vec![Incoming::Text("é".into())]);
        let err = read_all(&mut Reader::new(100), &client(0x81, &[0xff, 0xfe])).unwrap_err();
        assert_eq!(err.code, INVALID_PAYLOAD);
    }

    #[test]
    fn each_violation_gets_its_rfc_code() {
        let cases: Vec<(Vec<u8>, CloseCode)> = vec![
            (client(0xC1, b"x"), PROTOCOL_ERROR),                     // RSV1
            (vec![0x81, 0x01, b'x'], PROTOCOL_ERROR),                 // unmasked
            (client(0x80, b"x"), PROTOCOL_ERROR),                     // continuation of nothing
            (client(0x83, b"x"), PROTOCOL_ERROR),                     // reserved opcode
            (client(0x09, b""), PROTOCOL_ERROR),                      // fragmented ping
            (client(0x89, &[0u8; 126]), PROTOCOL_ERROR),              // oversized ping
            (client(0x88, &[3]), PROTOCOL_ERROR),                     // one-byte close
            (client(0x88, &1005u16.to_be_bytes()), PROTOCOL_ERROR),   // reserved close code
            (client(0x88, &[0x03, 0xe8, 0xff]), INVALID_PAYLOAD),     // bad close reason
            (client(0x81, &[0xc3]), INVALID_PAYLOAD),                 // truncated UTF-8
            (client(0x82, b"bin"), CloseCode::UNSUPPORTED_DATA),      // binary
            (client(0x81, &[b'a'; 200]), CloseCode::MESSAGE_TOO_BIG), // over the limit
        ];
        for (bytes, code) in cases {
            let err = read_all(&mut Reader::new(100), &bytes).unwrap_err();
            assert_eq!(err.code, code, "{bytes:02x?}: {}", err.what);
        }
        let mut r = Reader::new(100);
        let mut bytes = client(0x01, b"a");
        bytes.extend(client(0x81, b"b"));
        assert_eq!(read_all(&mut r, &bytes).unwrap_err().code, PROTOCOL_ERROR, "text inside fragments");
        let mut r = Reader::new(100);
        let mut bytes = client(0x01, &[b'a'; 60]);
        bytes.extend(client(0x80, &[b'a'; 60]));
        assert_eq!(read_all(&mut r, &bytes).unwrap_err().code, CloseCode::MESSAGE_TOO_BIG);
    }

    #[test]
    fn close_frames_report_their_code() {
        let mut r = Reader::new(100);
        assert_eq!(read_all(&mut r, &client(0x88, b"")).unwrap(), vec![Incoming::Close(None)]);
        let mut payload = 4000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        assert_eq!(read_all(&mut r, &client(0x88, &payload)).unwrap(), vec![Incoming::Close(Some(4000))]);
    }

    #[test]
    fn stops_when_told() {
        let mut r = Reader::new(100);
        let mut bytes = client(0x81, b"a");
        bytes.extend(client(0x81, b"b"));
        let mut got = Vec::new();
        r.feed(&bytes, |m| {
            got.push(m);
            false
        })
        .unwrap();
        assert_eq!(got.len(), 1);
    }
}
