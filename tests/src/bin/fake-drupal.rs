//! `fake-drupal SERVICE_KEY`: the fake Drupal of the integration tests
//! (`drupal_push_server::fake_drupal`) as a process of its own, for the browser tests
//! (tests/browser/lib/harness.js), which run under Node and script it over HTTP. One fake
//! Drupal for every test, so the browser tests see exactly the answers the integration tests
//! see.
//!
//! Serves on 127.0.0.1:0 and prints `fake-drupal listening on http://127.0.0.1:PORT` as its
//! first line on stdout. Routes:
//! * `POST /nodejs/message`: Drupal's message handler (spec 2.3-2.4). Unscripted auth tokens are
//!   refused (`nodejsValidAuthToken: false`); a browser message of any type is answered
//!   `{"status": "handled", "messageType": …, "text": …}`, like a `hook_nodejs_message_callback`
//!   that says what it got.
//! * `POST /_fake/user` `{"token", "uid", "channels", "presenceUids"}`: `token` is a valid
//!   session of `uid` with the channels `nodejs_user_<uid>` plus `channels` (what Drupal gives a
//!   logged-in user) and that presence list; scripting a token again replaces its answer.
//! * `GET /_fake/messages`: every message received so far, in order, as Drupal got them.
//!
//! It exits when its standard input closes, so it never outlives the test run that started it.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use drupal_push_server::fake_drupal::{Answer, FakeDrupal};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct User {
    token: String,
    uid: u64,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    presence_uids: Vec<u64>,
}

async fn script_user(State(fake): State<FakeDrupal>, Json(user): Json<User>) -> Json<Value> {
    let mut channels = vec![format!("nodejs_user_{}", user.uid)];
    channels.extend(user.channels);
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    fake.answer(&user.token, Answer::watched(user.uid, &channels, &user.presence_uids));
    Json(json!({"status": "success"}))
}

async fn messages(State(fake): State<FakeDrupal>) -> Json<Value> {
    Json(serde_json::to_value(fake.messages()).unwrap_or_else(|e| json!({"error": e.to_string()})))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Some(key) = std::env::args().nth(1).filter(|k| !k.is_empty()) else {
        eprintln!("usage: fake-drupal SERVICE_KEY");
        std::process::exit(2);
    };
    let fake = FakeDrupal::new(&key, Arc::new(|_: &str| Answer::Invalid), true);
    fake.answer_message("*", Answer::Handled);
    let control = Router::new()
        .route("/_fake/user", post(script_user))
        .route("/_fake/messages", get(messages))
        .with_state(fake.clone());
    let app = fake.router().merge(control);
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-drupal: cannot listen on 127.0.0.1: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    println!("fake-drupal listening on http://127.0.0.1:{port}");
    let stdin_closed = async {
        let mut buf = [0u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        served = axum::serve(listener, app) => {
            if let Err(e) = served {
                eprintln!("fake-drupal: {e}");
                std::process::exit(1);
            }
        }
        () = stdin_closed => {}
    }
}
