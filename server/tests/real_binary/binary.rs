//! The real `drupal-push` binary, started like `node app.js config`: with a TOML file and with
//! an original `nodejs.config.js`, against a small fake Drupal; and refusing a bad config.

use crate::process::{self, Server};
use axum::routing::post;
use axum::{Form, Json, Router};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(15);

/// Drupal's message handler: every token is uid 3 in channel `news`.
async fn fake_drupal() -> u16 {
    async fn handle(Form(f): Form<HashMap<String, String>>) -> Json<Value> {
        let m: Value = serde_json::from_str(&f["messageJson"]).unwrap();
        assert_eq!(f["serviceKey"], "bin-key");
        Json(json!({"uid": 3, "authToken": m["authToken"], "nodejsValidAuthToken": true,
                    "clientId": m["clientId"], "channels": ["news"], "presenceUids": []}))
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, Router::new().route("/nodejs/message", post(handle))).await });
    port
}

fn start(config: &std::path::Path) -> Server {
    process::start_file(config, None)
}

/// Sends a backend API request with the service key and reads its JSON answer.
async fn json(request: reqwest::RequestBuilder) -> Value {
    let text = request.header("NodejsServiceKey", "bin-key").send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn exercise(server: &Server) {
    let http = {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    };
    let health = json(http.get(format!("{}/nodejs/health/check", server.base()))).await;
    assert_eq!(health["status"], "success");
    let ws_url = format!("{}/ws", server.base().replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text(r#"{"type":"authenticate","authToken":"tok"}"#)).await.unwrap();
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let m = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        frames.push(serde_json::from_str::<Value>(m.to_text().unwrap()).unwrap());
    }
    assert_eq!(frames[0]["type"], "hello");
    assert_eq!(frames[1]["type"], "authenticated");
    assert_eq!(frames[2]["message"]["callback"], "clientAuthenticated");
    let sent = json(
        http.post(format!("{}/nodejs/publish", server.base()))
            .body(r#"{"channel":"news","data":{"subject":"hi"}}"#),
    )
    .await;
    assert_eq!(sent, json!({"status": "success", "sent": 1}));
    let m = tokio::time::timeout(WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    let v: Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
    assert_eq!(v["message"], json!({"channel": "news", "data": {"subject": "hi"}}));
}

fn terminate_and_wait(mut server: Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "drupal-push did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("drupal-push-bin-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn runs_from_a_toml_file_and_stops_cleanly_on_sigterm() {
    let port = fake_drupal().await;
    let dir = temp_dir("toml");
    let path = dir.join("drupal-push.toml");
    std::fs::write(
        &path,
        format!("host = \"127.0.0.1\"\nport = 0\nserviceKey = \"bin-key\"\n[backend]\nhost = \"127.0.0.1\"\nport = {port}\n"),
    )
    .unwrap();
    let server = start(&path);
    exercise(&server).await;
    // A connected client is told 1001 on shutdown.
    let ws_url = format!("{}/ws", server.base().replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let _hello = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
    let status = tokio::task::spawn_blocking(move || terminate_and_wait(server)).await.unwrap();
    let mut code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(WAIT, ws.next()).await {
        if let Message::Close(Some(f)) = m {
            code = Some(u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1001));
    assert!(status.success(), "{status:?}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn runs_from_the_original_nodejs_config_js() {
    let port = fake_drupal().await;
    let dir = temp_dir("js");
    let path = dir.join("nodejs.config.js");
    std::fs::write(
        &path,
        format!(
            "/* migrated */\nsettings = {{\n  scheme: 'http',\n  port: 0,\n  host: '127.0.0.1',\n  resource: '/socket.io',\n  \
             serviceKey: 'bin-key',\n  backend: {{\n    port: {port},\n    host: '127.0.0.1',\n    scheme: 'http',\n    \
             basePath: '',\n    messagePath: '/nodejs/message'\n  }},\n  debug: false,\n  transports: ['websocket'],\n}};\n"
        ),
    )
    .unwrap();
    let server = start(&path);
    exercise(&server).await;
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_bad_config_exits_2_naming_the_key() {
    let dir = temp_dir("bad");
    let path = dir.join("bad.toml");
    std::fs::write(&path, "serviceKey = \"k\"\n[backend]\nport = \"eighty\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_drupal-push")).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("backend.port"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_drupal-push")).args(["--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("serviceKey"));
    std::fs::remove_dir_all(dir).ok();
}
