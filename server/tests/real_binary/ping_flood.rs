//! Security review, finding 2: a client that never reads cannot make the server queue answers
//! without bound before it authenticates. Each test starts the real binary with
//! `maxQueuedBytes = 2 MiB` (and a frame limit too high to matter), opens a WebSocket from a
//! socket with a tiny receive buffer (so the kernel does not absorb the answers), never
//! authenticates and sends frames that each get an answer (WebSocket pings, JSON pings, bad
//! frames) worth 16 MiB of answers, reading nothing. The server's resident memory, sampled from
//! `/proc/<pid>/status` during the flood, must grow by at most twice `maxQueuedBytes`, and the
//! socket must be closed as a slow consumer (4101, counted in `/metrics`). Before the fix, pongs
//! to WebSocket pings were queued past every limit (`push_own`): the server grew by the whole
//! flood (19.7 MB here); JSON pongs and error replies were bounded, but `maxQueuedBytes` counted
//! only their bytes, not what each waiting frame costs besides, and one read turn could parse
//! ten thousand tiny frames at once (12 MB for JSON pings, 4.4 MB for bad frames).

use crate::process::{self, Server};
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const METRICS_TOKEN: &str = "ping-flood-metrics-token";
const MAX_QUEUED_BYTES: u64 = 2 << 20;
/// Bytes of answers the flood asks for: far more than `maxQueuedBytes` and than the kernel's
/// socket buffers.
const ANSWER_BYTES: u64 = 16 << 20;

fn start(name: &str) -> Server {
    // A write timeout and an auth timeout longer than the test: only the queue limits can end
    // the connection.
    let toml = format!(
        "host = \"127.0.0.1\"\nport = 0\nserviceKey = \"flood-key\"\nallowedOrigins = [\"*\"]\n\
         maxQueuedBytes = {MAX_QUEUED_BYTES}\nmaxQueuedMessages = 1000000\n\
         writeTimeoutMs = 120000\nauthTimeoutMs = 120000\nmetricsToken = \"{METRICS_TOKEN}\"\n"
    );
    process::start_toml(&format!("flood-{name}"), &toml, None)
}

/// Resident memory of process `pid`, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A client frame (masked, as clients must send them) with opcode `op`.
fn client_frame(op: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | op, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// A WebSocket opened from a socket whose receive buffer is as small as the kernel allows.
fn open_websocket(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Reads server frames until a close frame (its code) or the end of the connection (`None`).
fn read_until_close(tcp: &mut TcpStream) -> Option<u16> {
    let mut reader = BufReader::with_capacity(64 * 1024, tcp);
    loop {
        let mut head = [0u8; 2];
        reader.read_exact(&mut head).ok()?;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                reader.read_exact(&mut b).ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                reader.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).ok()?;
        if head[0] & 0x0f == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

/// Whether everything the client at `client_port` sent to the server at `server_port` was read
/// by the server: nothing waits in either socket's queue (`/proc/net/tcp`), or the connection
/// is gone.
fn all_read(client_port: u16, server_port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap(), 16).unwrap();
    let queue = |field: &str, i: usize| u64::from_str_radix(field.split(':').nth(i).unwrap(), 16).unwrap();
    table.lines().skip(1).all(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, remote) = (port(f[1]), port(f[2]));
        if (local, remote) == (client_port, server_port) {
            queue(f[4], 0) == 0 // the client's send queue
        } else if (local, remote) == (server_port, client_port) {
            queue(f[4], 1) == 0 // the server's receive queue
        } else {
            true
        }
    })
}

/// `GET /metrics`: the value of the line starting with `name`, 0 when absent.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {METRICS_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Floods a never-reading, unauthenticated socket with `frame`, each answered with
/// `answer_len` bytes, and checks the server's memory and the slow-consumer close.
fn flood(name: &str, frame: Vec<u8>, answer_len: u64) {
    let server = start(name);
    let mut tcp = open_websocket(server.addr);
    let pid = server.child.id();
    let baseline = rss(pid);
    let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(baseline)));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    // A write that cannot finish for this long means the server stopped reading this socket
    // (it is closing it); not a timing assertion.
    tcp.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let per_write = 256;
    let chunk: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * per_write).collect();
    let frames = ANSWER_BYTES / answer_len;
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < frames {
        match tcp.write_all(&chunk) {
            Ok(()) => sent += per_write as u64,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(_) => break, // reset: the server closed the socket
        }
    }
    // Still reading nothing, wait until the server has read the whole flood (it sits in the
    // kernel's buffers until then) or has closed the socket as a slow consumer.
    let slow_consumers = "drupal_push_slow_consumer_closes_total{cause=\"queue_full\"}";
    let port = tcp.local_addr().unwrap().port();
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric(server.addr, slow_consumers) == 0.0 && !all_read(port, server.addr.port()) {
        assert!(Instant::now() < deadline, "{name}: the server neither read the flood nor closed the socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    peak.fetch_max(rss(pid), Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "{name}: sent {sent} frames ({} answer bytes asked) in {:?}; server RSS {baseline} -> peak +{grew}",
        sent * answer_len,
        started.elapsed()
    );
    assert!(
        grew <= 2 * MAX_QUEUED_BYTES,
        "{name}: the server grew by {grew} bytes for a client that does not read (maxQueuedBytes {MAX_QUEUED_BYTES})"
    );
    let code = read_until_close(&mut tcp);
    assert!(matches!(code, Some(4101) | None), "{name}: closed with {code:?}");
    let closes = metric(server.addr, "drupal_push_slow_consumer_closes_total{cause=\"queue_full\"}");
    assert_eq!(closes, 1.0, "{name}: counted as a slow consumer (close code {code:?})");
}

#[test]
fn websocket_pings_from_a_client_that_does_not_read() {
    flood("ws-ping", client_frame(0x9, &[b'p'; 125]), 127);
}

#[test]
fn json_pings_from_a_client_that_does_not_read() {
    flood("json-ping", client_frame(0x1, br#"{"type":"ping"}"#), 17);
}

#[test]
fn bad_frames_from_a_client_that_does_not_read() {
    // Each is answered with a `bad-frame` error of about a hundred bytes.
    flood("bad-frame", client_frame(0x1, b"x"), 100);
}
