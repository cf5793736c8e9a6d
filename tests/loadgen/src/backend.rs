//! The fake backends the servers under test call back: axum on 127.0.0.1, in the load
//! generator's process.
//!
//! * `POST /nodejs/message` (drupal-push, spec 2): the project's one fake Drupal
//!   (`drupal_push_server::fake_drupal`, shared with the demo and the tests), whose rule answers
//!   every token of the form `bench-{gen}-{idx}` as valid for uid `gen * 1_000_000 + idx + 1`
//!   (or 0 with `--anonymous`), member of the bench channel; it counts every message.
//! * `POST /broadcasting/auth` (laravel-echo-server's private-channel check): answers 200 and
//!   marks the client named by the `X-Bench-Client: {fleet}:{idx}` header ready, since that peer
//!   never acknowledges a subscription to the client.
//! * `POST /pusher/auth` (Sockudo's private channels; a Pusher client asks its site): signs
//!   `socket_id` + `channel_name` with the bench app's secret (see `pusher.rs`).

use crate::configs::SERVICE_KEY;
use crate::fleet::Fleet;
use crate::pusher;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Form, Json, Router};
use drupal_push_server::fake_drupal::{Answer, FakeDrupal};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// What the peers' auth endpoints have been asked (the fake Drupal counts its own).
#[derive(Default)]
pub struct Counters {
    pub peer_auth: AtomicU64,
    pub pusher_auth: AtomicU64,
    pub bad: AtomicU64,
}

pub struct Backend {
    pub counters: Counters,
    drupal: FakeDrupal,
    /// Answer uid 0 (anonymous) for every token: no presence, no `userOnline` notices.
    pub anonymous: bool,
    pub channel: String,
    /// The fleet whose peer clients the auth endpoint marks ready.
    fleet: Mutex<Option<Arc<Fleet>>>,
    pub addr: SocketAddr,
}

impl Backend {
    /// Starts the backend on an ephemeral loopback port; it serves until the process ends.
    pub async fn start(channel: &str, anonymous: bool) -> anyhow::Result<Arc<Backend>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let (bench_channel, all_anonymous) = (channel.to_owned(), anonymous);
        let rule = move |token: &str| match uid_of(token) {
            Some(uid) => Answer::valid(if all_anonymous { 0 } else { uid }, &[&bench_channel]),
            None => Answer::Invalid,
        };
        let drupal = FakeDrupal::new(SERVICE_KEY, Arc::new(rule), false);
        let backend = Arc::new(Backend {
            counters: Counters::default(),
            drupal: drupal.clone(),
            anonymous,
            channel: channel.to_owned(),
            fleet: Mutex::new(None),
            addr: listener.local_addr()?,
        });
        let app = Router::new()
            .route("/broadcasting/auth", post(peer_auth))
            .route("/pusher/auth", post(pusher_auth))
            .with_state(backend.clone())
            .merge(drupal.router());
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("fake backend stopped: {e}");
            }
        });
        Ok(backend)
    }

    pub fn set_fleet(&self, fleet: Option<Arc<Fleet>>) {
        *self.fleet.lock().unwrap_or_else(|p| p.into_inner()) = fleet;
    }

    pub fn auth_calls(&self) -> u64 {
        self.drupal.counts().authenticate.load(Relaxed)
            + self.counters.peer_auth.load(Relaxed)
            + self.counters.pusher_auth.load(Relaxed)
    }
}

/// The uid the backend gives a bench token.
pub fn uid_of(token: &str) -> Option<u64> {
    let mut parts = token.strip_prefix("bench-")?.split('-');
    let generation: u64 = parts.next()?.parse().ok()?;
    let idx: u64 = parts.next()?.parse().ok()?;
    Some(generation * 1_000_000 + idx + 1)
}

async fn peer_auth(State(b): State<Arc<Backend>>, headers: HeaderMap) -> Json<Value> {
    b.counters.peer_auth.fetch_add(1, Relaxed);
    let client = headers.get("x-bench-client").and_then(|v| v.to_str().ok()).and_then(|v| {
        let (fleet, idx) = v.split_once(':')?;
        Some((fleet.parse::<u32>().ok()?, idx.parse::<usize>().ok()?))
    });
    if let Some((fleet_id, idx)) = client {
        let fleet = b.fleet.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(f) = fleet.filter(|f| f.id == fleet_id) {
            f.mark_ready(idx);
        }
    }
    Json(json!({}))
}

async fn pusher_auth(
    State(b): State<Arc<Backend>>,
    Form(form): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    b.counters.pusher_auth.fetch_add(1, Relaxed);
    match (form.get("socket_id"), form.get("channel_name")) {
        (Some(socket_id), Some(channel)) => {
            let auth = pusher::channel_auth(pusher::APP_KEY, pusher::APP_SECRET, socket_id, channel);
            (axum::http::StatusCode::OK, Json(json!({ "auth": auth })))
        }
        _ => {
            b.counters.bad.fetch_add(1, Relaxed);
            (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({"error": "socket_id and channel_name required"})),
            )
        }
    }
}
