//! A fake of Drupal's `/nodejs/message` endpoint (spec 2.3, 2.4), shared by the demo mode, the
//! integration tests and the benchmark, so that there is one place that knows what Drupal
//! answers: [`AuthAnswer::accept`]/[`AuthAnswer::reject`] build the `authenticate` answers.
//!
//! Answers come from a script ([`FakeDrupal::answer`], per token) or else from the fake's
//! [`Rule`] (a function of the token: the demo's `demo-<uid>-…` tokens, the benchmark's
//! `bench-<gen>-<idx>`). Browser messages forwarded by the server (any other `messageType`) get
//! the answer scripted for their type ([`FakeDrupal::answer_message`]), else what Drupal 7
//! answers when no handler takes a type: `{"error":"Not implemented"}`. Every message is
//! counted; tests also record them and wait on them.
//! The browser tests run it as a process of its own (`fake-drupal`, tests/src/bin/), scripted
//! over HTTP by tests/browser/lib/harness.js.

use axum::extract::{Form, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::{
    AuthAnswer, AuthenticateRequest, BackendMessage, FORM_MESSAGE_FIELD, FORM_SERVICE_KEY_FIELD,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// How the fake answers an `authenticate` for one token.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A valid session.
    Valid { uid: u64, channels: Vec<String>, presence_uids: Vec<u64> },
    /// `nodejsValidAuthToken: false`.
    Invalid,
    /// Wait, then answer.
    Slow(Duration, Box<Answer>),
    /// An HTTP status with an empty body.
    Status(u16),
    /// A redirect with a Location header.
    Redirect(u16, String),
    /// A 200 that is not JSON.
    Garbage,
    /// `{"error": …}`.
    Error(String),
    /// This JSON (a message handler's `$response`).
    Json(Value),
    /// A message handler that says what it got: `{"status": "handled", "messageType": …,
    /// "text": …}` (the forwarded message's type and `text` member, `null` without one).
    Handled,
    /// The Drupal 7 shape: string uid, the whole user object, the service key.
    Drupal7 { uid: u64, channels: Vec<String> },
}

impl Answer {
    pub fn valid(uid: u64, channels: &[&str]) -> Answer {
        Answer::watched(uid, channels, &[])
    }

    pub fn watched(uid: u64, channels: &[&str], presence_uids: &[u64]) -> Answer {
        Answer::Valid {
            uid,
            channels: channels.iter().map(|s| s.to_string()).collect(),
            presence_uids: presence_uids.to_vec(),
        }
    }
}

/// The answer for tokens nobody scripted.
pub type Rule = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// How many messages of each kind arrived.
#[derive(Debug, Default)]
pub struct Counts {
    pub authenticate: AtomicU64,
    pub online: AtomicU64,
    pub offline: AtomicU64,
    /// Browser messages forwarded by the server.
    pub forwarded: AtomicU64,
    /// Requests with a wrong service key.
    pub bad_key: AtomicU64,
    /// Requests whose message could not be read.
    pub bad_message: AtomicU64,
}

struct Shared {
    key: String,
    /// How long `userOnline` and `userOffline` take before they are counted and answered.
    notice_delays: Mutex<(Duration, Duration)>,
    rule: Rule,
    record: bool,
    scripted: Mutex<HashMap<String, Answer>>,
    /// Answers to forwarded browser messages, by message type.
    handlers: Mutex<HashMap<String, Answer>>,
    received: Mutex<Vec<BackendMessage>>,
    counts: Counts,
    changed: Notify,
}

/// The fake; a cheap-clone handle. Serve [`FakeDrupal::router`] wherever Drupal should be.
#[derive(Clone)]
pub struct FakeDrupal {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeDrupal {
    /// A fake expecting `service_key`, answering unscripted tokens with `rule`. With `record`,
    /// every message is kept for [`FakeDrupal::messages`] (tests); without, only counted.
    pub fn new(service_key: &str, rule: Rule, record: bool) -> FakeDrupal {
        FakeDrupal {
            shared: Arc::new(Shared {
                key: service_key.to_owned(),
                notice_delays: Mutex::default(),
                rule,
                record,
                scripted: Mutex::default(),
                handlers: Mutex::default(),
                received: Mutex::default(),
                counts: Counts::default(),
                changed: Notify::new(),
            }),
        }
    }

    /// `POST /nodejs/message`.
    pub fn router(&self) -> Router {
        self.router_at("/nodejs/message")
    }

    /// The message handler at another path.
    pub fn router_at(&self, path: &str) -> Router {
        Router::new().route(path, post(handle)).with_state(self.clone())
    }

    /// Scripts the answer for `token`.
    pub fn answer(&self, token: &str, answer: Answer) {
        lock(&self.shared.scripted).insert(token.to_owned(), answer);
    }

    /// Scripts the answer to forwarded browser messages of `message_type` (its handler); `"*"`
    /// answers the types that have no handler of their own.
    pub fn answer_message(&self, message_type: &str, answer: Answer) {
        lock(&self.shared.handlers).insert(message_type.to_owned(), answer);
    }

    /// Makes `userOnline` and `userOffline` take this long each (a busy Drupal).
    pub fn delay_notices(&self, online: Duration, offline: Duration) {
        *lock(&self.shared.notice_delays) = (online, offline);
    }

    pub fn counts(&self) -> &Counts {
        &self.shared.counts
    }

    /// Every message received so far (when recording).
    pub fn messages(&self) -> Vec<BackendMessage> {
        lock(&self.shared.received).clone()
    }

    /// Waits until a received message satisfies `pred`; `None` after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&BackendMessage) -> bool,
    ) -> Option<BackendMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(m) = lock(&self.shared.received).iter().find(|m| pred(m)) {
                return Some(m.clone());
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }

    fn answer_for(&self, token: &str) -> Answer {
        let scripted = lock(&self.shared.scripted).get(token).cloned();
        scripted.unwrap_or_else(|| (self.shared.rule)(token))
    }
}

async fn handle(State(fake): State<FakeDrupal>, Form(form): Form<HashMap<String, String>>) -> Response {
    let s = &fake.shared;
    if form.get(FORM_SERVICE_KEY_FIELD) != Some(&s.key) {
        s.counts.bad_key.fetch_add(1, Relaxed);
        return Json(json!({"error": "Invalid service key."})).into_response();
    }
    let parsed = form.get(FORM_MESSAGE_FIELD).map(|text| serde_json::from_str::<BackendMessage>(text));
    let message = match parsed {
        Some(Ok(m)) => m,
        Some(Err(e)) => {
            s.counts.bad_message.fetch_add(1, Relaxed);
            return (StatusCode::BAD_REQUEST, Json(json!({"error": format!("bad messageJson: {e}")})))
                .into_response();
        }
        None => {
            s.counts.bad_message.fetch_add(1, Relaxed);
            return Json(json!({"error": "No message."})).into_response();
        }
    };
    let mut handler = None;
    let request = match &message {
        BackendMessage::Authenticate(req) => {
            s.counts.authenticate.fetch_add(1, Relaxed);
            Some(req.clone())
        }
        BackendMessage::Forwarded(m) => {
            s.counts.forwarded.fetch_add(1, Relaxed);
            let handlers = lock(&s.handlers);
            let answer = handlers.get(&m.message_type).or_else(|| handlers.get("*")).cloned();
            handler = Some(match answer {
                Some(Answer::Handled) => Answer::Json(json!({
                    "status": "handled", "messageType": m.message_type,
                    "text": m.fields.get("text").cloned().unwrap_or(Value::Null),
                })),
                Some(other) => other,
                // What Drupal 7 answers when no hook_nodejs_message_callback takes the type.
                None => Answer::Json(json!({"error": "Not implemented"})),
            });
            None
        }
        BackendMessage::UserOnline { .. } => {
            let delay = lock(&s.notice_delays).0;
            tokio::time::sleep(delay).await;
            s.counts.online.fetch_add(1, Relaxed);
            None
        }
        BackendMessage::UserOffline { .. } => {
            let delay = lock(&s.notice_delays).1;
            tokio::time::sleep(delay).await;
            s.counts.offline.fetch_add(1, Relaxed);
            None
        }
    };
    if s.record {
        lock(&s.received).push(message);
    }
    s.changed.notify_waiters();
    match (request, handler) {
        (Some(req), _) => respond(fake.answer_for(&req.auth_token), Some(&req), &s.key).await,
        (None, Some(answer)) => respond(answer, None, &s.key).await,
        (None, None) => Json(json!({"status": "success"})).into_response(),
    }
}

/// The answer's response; `req` is the authentication it answers, if it answers one (else the
/// authentication answers give what Drupal gives a type without a handler).
async fn respond(mut answer: Answer, req: Option<&AuthenticateRequest>, key: &str) -> Response {
    while let Answer::Slow(d, next) = answer {
        tokio::time::sleep(d).await;
        answer = *next;
    }
    let Some(req) = req else {
        return match answer {
            Answer::Valid { .. } | Answer::Invalid | Answer::Drupal7 { .. } => {
                Json(json!({"error": "Not implemented"})).into_response()
            }
            other => plain(other),
        };
    };
    match answer {
        Answer::Valid { uid, channels, presence_uids } => {
            Json(AuthAnswer::accept(req, Uid(uid), channels, presence_uids.into_iter().map(Uid).collect()))
                .into_response()
        }
        Answer::Drupal7 { uid, channels } => {
            let mut v = serde_json::to_value(AuthAnswer::accept(req, Uid(uid), channels, Vec::new()))
                .unwrap_or_else(|_| json!({}));
            let extra = json!({
                "uid": uid.to_string(), "name": "admin", "mail": "admin@example.org", "pass": "$S$DHASH",
                "roles": {"2": "authenticated user"}, "serviceKey": key, "contentTokens": [],
            });
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
            Json(v).into_response()
        }
        Answer::Invalid => Json(AuthAnswer::reject(req)).into_response(),
        other => plain(other),
    }
}

/// The answers that do not depend on the request.
fn plain(answer: Answer) -> Response {
    match answer {
        Answer::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
        Answer::Redirect(code, to) => {
            (StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND), [(header::LOCATION, to)])
                .into_response()
        }
        Answer::Garbage => (StatusCode::OK, "<html><body>Fatal error</body></html>").into_response(),
        Answer::Error(e) => Json(json!({"error": e})).into_response(),
        Answer::Json(v) => Json(v).into_response(),
        Answer::Slow(..)
        | Answer::Valid { .. }
        | Answer::Invalid
        | Answer::Drupal7 { .. }
        | Answer::Handled => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
