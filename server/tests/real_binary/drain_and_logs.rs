//! The real `drupal-push` binary on shutdown and in its logs: SIGTERM closes the WebSockets
//! with 1001 spread over `drainWindowMs` and exits 0, a second SIGTERM closes the rest at once;
//! logs written to a pipe carry no terminal escape codes; `logFormat = "json"` writes one JSON
//! object per line, and a refused origin is named in a log line; a Redis URL is logged without
//! its password.

use futures_util::StreamExt;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const WAIT: Duration = Duration::from_secs(15);

struct Server {
    child: Child,
    ws_url: String,
    stderr: Option<std::thread::JoinHandle<()>>,
    /// What the process wrote to stderr so far.
    log: Arc<Mutex<Vec<u8>>>,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// Starts the binary with `extra` TOML lines, stderr to a pipe that is read to the end.
fn start(name: &str, extra: &str) -> Server {
    let dir = std::env::temp_dir().join(format!("drupal-push-ops-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("drupal-push.toml");
    std::fs::write(&path, format!("host = \"127.0.0.1\"\nport = 0\nserviceKey = \"ops-key\"\n{extra}\n"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_drupal-push"))
        .arg(&path)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn drupal-push");
    let mut err = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let stderr = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("drupal-push listening on ").expect("the listening line").to_owned();
    Server {
        child,
        ws_url: format!("{}/ws", base.replace("http://", "ws://")),
        stderr: Some(stderr),
        log,
        dir,
    }
}

impl Server {
    fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "drupal-push did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process has written to stderr until now.
    fn log_so_far(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Everything written to stderr (after the process exited).
    fn stderr(&mut self) -> String {
        self.stderr.take().unwrap().join().unwrap();
        let bytes = self.log.lock().unwrap().clone();
        assert!(!bytes.contains(&0x1b), "an escape byte in the log: {}", String::from_utf8_lossy(&bytes));
        String::from_utf8(bytes).expect("UTF-8 logs")
    }
}

/// Connects `n` WebSockets and reads their hello; each then waits in a task for its close and
/// returns the code and when it came.
async fn clients_awaiting_close(url: &str, n: usize) -> Vec<tokio::task::JoinHandle<(Option<u16>, Instant)>> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        assert!(matches!(hello, Some(Ok(Message::Text(_)))));
        tasks.push(tokio::spawn(async move {
            loop {
                match tokio::time::timeout(WAIT * 2, ws.next()).await.expect("a close in time") {
                    Some(Ok(Message::Close(f))) => return (f.map(|f| u16::from(f.code)), Instant::now()),
                    Some(Ok(_)) => continue,
                    _ => return (None, Instant::now()),
                }
            }
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_spreads_the_closes_over_the_drain_window_and_exits_0() {
    let mut server = start("drain", "drainWindowMs = 3000");
    let clients = clients_awaiting_close(&server.ws_url, 10).await;
    server.sigterm();
    let mut times = Vec::new();
    for c in clients {
        let (code, at) = c.await.unwrap();
        assert_eq!(code, Some(1001));
        times.push(at);
    }
    let spread = times.iter().max().unwrap().duration_since(*times.iter().min().unwrap());
    // Nine gaps of about 333 ms: loosely, far from all at once.
    assert!(spread >= Duration::from_millis(1500), "closes spread over {spread:?} only");
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_closes_the_rest_at_once() {
    let mut server = start("hurry", "drainWindowMs = 600000");
    let clients = clients_awaiting_close(&server.ws_url, 10).await;
    let first_signal = Instant::now();
    server.sigterm();
    // The first socket is closed as soon as the drain starts; the next one is due a minute
    // later.
    let (first, _, rest) = futures_util::future::select_all(clients).await;
    assert_eq!(first.unwrap().0, Some(1001));
    server.sigterm();
    for c in rest {
        assert_eq!(c.await.unwrap().0, Some(1001));
    }
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(status.success(), "{status:?}");
    assert!(
        first_signal.elapsed() < Duration::from_secs(60),
        "the second signal did not cut the drain short"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_pipe_carry_no_colour_codes() {
    let mut server = start("colour", "");
    clients_awaiting_close(&server.ws_url, 1).await;
    server.sigterm();
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(status.success());
    let log = server.stderr();
    assert!(log.contains("drupal-push serving"), "{log}");
    assert!(log.contains("allowedOrigins: not set"), "the start-up warning: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_name_a_refused_origin() {
    let mut server = start("json", "logFormat = \"json\"\nallowedOrigins = [\"https://www.example.com\"]");
    let mut request = server.ws_url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("Origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    server.sigterm();
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(status.success());
    let log = server.stderr();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["message"] == "drupal-push serving"), "{log}");
    let refused =
        lines.iter().find(|l| l["origin"] == "https://evil.example").expect("a line naming the origin");
    assert_eq!(refused["level"], "WARN", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("allowedOrigins"), "{refused}");
}

/// Security review (issue 24, finding 7): with Redis unreachable, the node logged `redis.url`
/// with its password on every retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_redis_is_logged_without_its_password() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = start(
        "redis-url",
        &format!("engine = \"redis\"\n[redis]\nurl = \"redis://:s3cret-pass@127.0.0.1:{port}/0\""),
    );
    let deadline = Instant::now() + WAIT;
    while !server.log_so_far().contains("cannot subscribe") {
        assert!(Instant::now() < deadline, "no log line about Redis: {}", server.log_so_far());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.sigterm();
    tokio::task::block_in_place(|| server.wait_exit());
    let log = server.stderr();
    assert!(!log.contains("s3cret-pass"), "the password is in the log: {log}");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "the log names the Redis host: {log}");
}
