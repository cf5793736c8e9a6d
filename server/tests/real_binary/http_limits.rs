//! Security review, finding 3: HTTP connections that are not WebSockets cannot pile up. The
//! server was built without a timer, so hyper's header-read timeout was off: partial requests
//! and idle keep-alives were held until the process ran out of file descriptors, and then
//! Drupal's REST calls failed. Now: `httpHeaderTimeoutMs` closes a request that does not
//! arrive, `httpIdleTimeoutMs` a kept-alive connection with nothing to do, a body that does not
//! arrive is answered 408, `maxHttpConnections` and `maxHttpConnectionsPerAddress` refuse
//! connections over them at once (503), and running out of descriptors backs off instead of
//! failing. All against the real binary, over real sockets.

use crate::process::{self, Server};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const KEY: &str = "limits-key";
const METRICS_TOKEN: &str = "limits-metrics-token-0123";

/// Starts the binary with `extra` TOML lines; with `max_files`, under `ulimit -n`.
fn start(name: &str, extra: &str, max_files: Option<u32>) -> Server {
    let toml = format!(
        "host = \"127.0.0.1\"\nport = 0\nserviceKey = \"{KEY}\"\nallowedOrigins = [\"*\"]\n\
         metricsToken = \"{METRICS_TOKEN}\"\n{extra}\n"
    );
    process::start_toml(&format!("limits-{name}"), &toml, max_files)
}

/// A connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(from), 0))?;
    socket.connect(addr).await
}

/// Reads what the server sends until it closes (or resets) the connection.
async fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` and reads one response head and its `Content-Length` body; the status.
async fn exchange(tcp: &mut TcpStream, request: &str) -> std::io::Result<(u16, String)> {
    tcp.write_all(request.as_bytes()).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                return Ok((status, body.to_owned()));
            }
        }
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
}

fn get(path: &str, headers: &str, keep_alive: bool) -> String {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!("GET {path} HTTP/1.1\r\nHost: push\r\nConnection: {connection}\r\n{headers}\r\n")
}

/// `GET /nodejs/health/check` with the key, on a connection of its own from `from`.
async fn health(from: [u8; 4], addr: SocketAddr) -> std::io::Result<(u16, String)> {
    let mut tcp = connect_from(from, addr).await?;
    exchange(&mut tcp, &get("/nodejs/health/check", &format!("NodejsServiceKey: {KEY}\r\n"), false)).await
}

/// `GET /metrics`: the value of the sample `name` (0 when absent).
async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let auth = format!("Authorization: Bearer {METRICS_TOKEN}\r\n");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let (status, body) = exchange(&mut tcp, &get("/metrics", &auth, false)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    sample(&body, name)
}

/// The value of the sample `name` in a scrape (0 when absent).
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// A health check that must succeed within `bound`, retried while it cannot (connections
/// refused or reset while the server is out of descriptors). How long it took.
async fn health_within(addr: SocketAddr, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(5), health([127, 0, 0, 1], addr)).await;
        if let Ok(Ok((200, body))) = &attempt {
            assert!(body.contains("\"status\":\"success\""), "{body}");
            return started.elapsed();
        }
        assert!(started.elapsed() < bound, "health/check did not answer within {bound:?}: {attempt:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 3,000 partial requests against a server limited to 2,048 open files: each is closed by the
/// header timeout (1 s here), the server backs off while it is out of descriptors instead of
/// failing, and `health/check` answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_requests_are_closed_and_drupal_gets_through_at_the_file_limit() {
    let mut server = start(
        "files",
        "httpHeaderTimeoutMs = 1000\nmaxHttpConnectionsPerAddress = 0\nmaxHttpConnections = 8192\n",
        Some(2048),
    );
    let addr = server.addr;
    health_within(addr, Duration::from_secs(10)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut calls = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                calls.push(health_within(addr, Duration::from_secs(30)).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            calls
        })
    };
    let attackers: Vec<_> = (0..3000u32)
        .map(|i| {
            tokio::spawn(async move {
                // Several source addresses, as a per-address cap would see them (it is off here).
                let from = [127, 0, 1, (i % 200) as u8 + 1];
                let mut tcp = connect_from(from, addr).await.ok()?;
                let connected = Instant::now();
                tcp.write_all(b"GET /nodejs/health/check HTTP/1.1\r\nHost: push\r\nNodejsServ").await.ok()?;
                let answer = read_to_close(&mut tcp).await;
                Some((connected.elapsed(), answer))
            })
        })
        .collect();
    let mut closed = Vec::new();
    for a in attackers {
        let result =
            tokio::time::timeout(Duration::from_secs(90), a).await.expect("a partial request closed");
        closed.push(result.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = poller.await.unwrap();
    let connected: Vec<_> = closed.iter().flatten().collect();
    let slowest = connected.iter().map(|(took, _)| *took).max().unwrap();
    eprintln!(
        "{} of 3000 partial requests connected, all closed, the last {slowest:?} after connecting; \
         {} health checks during the attack, the slowest {:?}",
        connected.len(),
        calls.len(),
        calls.iter().max()
    );
    assert!(connected.len() > 2500, "most partial requests reached the server: {}", connected.len());
    // Each is closed by the header timeout once accepted; some wait for a free descriptor first.
    assert!(slowest < Duration::from_secs(60), "a partial request was held for {slowest:?}");
    assert!(!calls.is_empty());
    assert!(server.child.try_wait().unwrap().is_none(), "the server survived");
    let timeouts = metric(addr, "drupal_push_http_timeouts_total{kind=\"header\"}").await;
    assert!(
        timeouts >= connected.len() as f64,
        "{timeouts} header timeouts for {} partial requests",
        connected.len()
    );
    assert!(metric(addr, "drupal_push_accept_errors_total").await > 0.0, "the descriptors did run out");
    health_within(addr, Duration::from_secs(10)).await;
}

/// A kept-alive connection that answered `GET /readyz` (so it is open and counted), or the
/// refusal it got instead.
async fn keep_alive(from: [u8; 4], addr: SocketAddr) -> Result<TcpStream, String> {
    let mut tcp = connect_from(from, addr).await.map_err(|e| e.to_string())?;
    match exchange(&mut tcp, &get("/readyz", "", true)).await {
        Ok((200, _)) => Ok(tcp),
        Ok((status, body)) => Err(format!("{status} {body}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The caps: one address over `maxHttpConnectionsPerAddress` is refused while another still
/// connects; over `maxHttpConnections` everyone is; trusted proxies (the loopback) are exempt
/// from the per-address cap; a WebSocket is no longer counted once upgraded.
#[tokio::test]
async fn connection_caps_per_address_and_in_total() {
    let server = start(
        "caps",
        "maxHttpConnections = 5\nmaxHttpConnectionsPerAddress = 2\nhttpIdleTimeoutMs = 60000\n\
         httpHeaderTimeoutMs = 60000\n",
        None,
    );
    let addr = server.addr;
    let mut ws = connect_from([127, 0, 0, 2], addr).await.unwrap();
    let upgrade = "GET /ws HTTP/1.1\r\nHost: push\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
                   Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    ws.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    ws.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");

    let a1 = keep_alive([127, 0, 0, 2], addr).await.expect("the WebSocket does not count");
    // The upgraded connection stops counting when the server hands it to the WebSocket task,
    // which may be just after the client read the 101: retry until it has.
    let deadline = Instant::now() + Duration::from_secs(10);
    let _a2 = loop {
        match keep_alive([127, 0, 0, 2], addr).await {
            Ok(tcp) => break tcp,
            Err(e) if Instant::now() < deadline => {
                eprintln!("second from .2 not yet: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("second from .2: {e}"),
        }
    };
    let refused = keep_alive([127, 0, 0, 2], addr).await.expect_err("a third from .2 is over its cap");
    eprintln!("over the per-address cap: {refused}");
    let _b1 = keep_alive([127, 0, 0, 3], addr).await.expect("another address still connects");
    let _p1 = keep_alive([127, 0, 0, 1], addr).await.expect("the loopback is a trusted proxy");
    let _p2 = keep_alive([127, 0, 0, 1], addr).await.expect("and exempt from the per-address cap");
    let full = keep_alive([127, 0, 0, 4], addr).await.expect_err("over maxHttpConnections");
    eprintln!("over the cap: {full}");

    drop(a1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let _a3 = loop {
        match keep_alive([127, 0, 0, 2], addr).await {
            Ok(tcp) => break tcp,
            Err(e) => assert!(Instant::now() < deadline, "a closed connection's place is given back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // A place for the scrape, once the server has seen the close.
    drop(_p2);
    let auth = format!("Authorization: Bearer {METRICS_TOKEN}\r\n");
    let scrape = loop {
        if let Ok(mut tcp) = keep_alive([127, 0, 0, 1], addr).await
            && let Ok((200, body)) = exchange(&mut tcp, &get("/metrics", &auth, false)).await
        {
            break body;
        }
        assert!(Instant::now() < deadline, "no place for a scrape");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let address = sample(&scrape, "drupal_push_http_connections_refused_total{reason=\"address_limit\"}");
    let total = sample(&scrape, "drupal_push_http_connections_refused_total{reason=\"limit\"}");
    assert!(address >= 1.0 && total >= 1.0, "refusals counted: address {address}, total {total}");
}

/// A kept-alive connection with nothing to do is closed after `httpIdleTimeoutMs`; a body that
/// does not arrive is answered 408 within `httpHeaderTimeoutMs`.
#[tokio::test]
async fn idle_keep_alives_and_missing_bodies_time_out() {
    let server = start("idle", "httpIdleTimeoutMs = 300\nhttpHeaderTimeoutMs = 500\n", None);
    let addr = server.addr;
    let mut idle = keep_alive([127, 0, 0, 1], addr).await.unwrap();
    let answered = Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(20), read_to_close(&mut idle)).await;
    assert!(rest.is_ok(), "an idle kept-alive connection is closed");
    eprintln!("idle connection closed {:?} after its response", answered.elapsed());
    assert_eq!(metric(addr, "drupal_push_http_timeouts_total{kind=\"idle\"}").await, 1.0);

    // A client that keeps asking keeps its connection, for longer than the idle timeout.
    let mut busy = keep_alive([127, 0, 0, 1], addr).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1000) {
        let (status, _) = exchange(&mut busy, &get("/readyz", "", true)).await.expect("still open");
        assert_eq!(status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut slow = TcpStream::connect(addr).await.unwrap();
    let post = format!(
        "POST /nodejs/publish HTTP/1.1\r\nHost: push\r\nNodejsServiceKey: {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"channel\":"
    );
    let answer = tokio::time::timeout(Duration::from_secs(20), exchange(&mut slow, &post)).await;
    let (status, body) = answer.expect("answered in time").expect("an answer");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("httpHeaderTimeoutMs"), "{body}");
}
