//! A fake of Drupal's `/nodejs/message` endpoint (spec 2.3, 2.4) over real HTTP.

use axum::extract::{Form, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use drupal_push_protocol::backend::BackendMessage;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
    /// The Drupal 7 shape: string uid, the whole user object, the service key.
    Drupal7 { uid: u64, channels: Vec<String> },
}

impl Answer {
    pub fn valid(uid: u64, channels: &[&str]) -> Answer {
        Answer::Valid {
            uid,
            channels: channels.iter().map(|s| s.to_string()).collect(),
            presence_uids: Vec::new(),
        }
    }

    pub fn watched(uid: u64, channels: &[&str], presence_uids: &[u64]) -> Answer {
        Answer::Valid {
            uid,
            channels: channels.iter().map(|s| s.to_string()).collect(),
            presence_uids: presence_uids.to_vec(),
        }
    }
}

#[derive(Default)]
struct Inner {
    answers: HashMap<String, Answer>,
    received: Vec<BackendMessage>,
    bad_keys: usize,
    online_delay: Duration,
    offline_delay: Duration,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    key: String,
}

/// A running fake Drupal; stops when dropped.
pub struct FakeDrupal {
    shared: Shared,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDrupal {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDrupal {
    /// Starts on 127.0.0.1:0, expecting `service_key` in the form.
    pub async fn start(service_key: &str) -> FakeDrupal {
        Self::start_inner(service_key, None).await
    }

    /// Starts an https fake with the given PEM certificate chain and key.
    pub async fn start_tls(service_key: &str, cert_pem: &str, key_pem: &str) -> FakeDrupal {
        Self::start_inner(service_key, Some((cert_pem, key_pem))).await
    }

    async fn start_inner(service_key: &str, tls: Option<(&str, &str)>) -> FakeDrupal {
        use axum::serve::ListenerExt;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let shared =
            Shared { inner: Arc::default(), changed: Arc::new(Notify::new()), key: service_key.to_owned() };
        let app = Router::new().route("/nodejs/message", post(handle)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake drupal");
        let addr = listener.local_addr().expect("local addr");
        let task = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }),
            Some((cert, key)) => {
                let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
                let certs = CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert");
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
                let config = tokio_rustls::rustls::ServerConfig::builder()
                    .with_no_client_auth()
                    .with_single_cert(certs, key)
                    .expect("tls config");
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                let listener = drupal_push_server::tls::TlsListener::new(listener, acceptor)
                    .expect("tls listener")
                    .tap_io(|_| {});
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                })
            }
        };
        FakeDrupal { shared, addr, task }
    }

    /// Scripts the answer for `token`. Unscripted tokens are invalid.
    pub fn answer(&self, token: &str, answer: Answer) {
        self.shared.inner.lock().expect("lock").answers.insert(token.to_owned(), answer);
    }

    /// Makes `userOnline` and `userOffline` take this long each before they are recorded and
    /// answered (a busy Drupal writing its presence table).
    pub fn delay_notices(&self, online: Duration, offline: Duration) {
        let mut inner = self.shared.inner.lock().expect("lock");
        inner.online_delay = online;
        inner.offline_delay = offline;
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<BackendMessage> {
        self.shared.inner.lock().expect("lock").received.clone()
    }

    /// Numbers of `userOnline` and `userOffline` received (without copying the messages).
    pub fn notice_counts(&self) -> (usize, usize) {
        let inner = self.shared.inner.lock().expect("lock");
        let online = inner.received.iter().filter(|m| matches!(m, BackendMessage::UserOnline { .. })).count();
        let offline =
            inner.received.iter().filter(|m| matches!(m, BackendMessage::UserOffline { .. })).count();
        (online, offline)
    }

    /// Number of `authenticate` calls received.
    pub fn auth_calls(&self) -> usize {
        self.messages().iter().filter(|m| matches!(m, BackendMessage::Authenticate(_))).count()
    }

    /// Requests that carried a wrong service key.
    pub fn bad_key_calls(&self) -> usize {
        self.shared.inner.lock().expect("lock").bad_keys
    }

    /// Whether `message` has been received.
    pub fn has_received(&self, message: &BackendMessage) -> bool {
        self.shared.inner.lock().expect("lock").received.contains(message)
    }

    /// Waits until a received message satisfies `pred`, failing after [`crate::WAIT`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&BackendMessage) -> bool) -> BackendMessage {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            let changed = self.shared.changed.notified();
            if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                return m;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out waiting for the backend to receive {what}; got {:?}", self.messages());
            }
        }
    }
}

async fn handle(State(s): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("serviceKey") != Some(&s.key) {
        s.inner.lock().expect("lock").bad_keys += 1;
        return Json(json!({"error": "Invalid service key."})).into_response();
    }
    let Some(text) = form.get("messageJson") else {
        return Json(json!({"error": "No message."})).into_response();
    };
    let message: BackendMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("bad messageJson: {e}")).into_response(),
    };
    let answer = match &message {
        BackendMessage::Authenticate(req) => {
            let a = s.inner.lock().expect("lock").answers.get(&req.auth_token).cloned();
            Some((a.unwrap_or(Answer::Invalid), req.clone()))
        }
        BackendMessage::UserOnline { .. } => {
            let delay = s.inner.lock().expect("lock").online_delay;
            tokio::time::sleep(delay).await;
            None
        }
        BackendMessage::UserOffline { .. } => {
            let delay = s.inner.lock().expect("lock").offline_delay;
            tokio::time::sleep(delay).await;
            None
        }
    };
    s.inner.lock().expect("lock").received.push(message);
    s.changed.notify_waiters();
    let Some((answer, req)) = answer else {
        return Json(json!({"status": "success"})).into_response();
    };
    respond(answer, &req, &s.key).await
}

async fn respond(
    mut answer: Answer,
    req: &drupal_push_protocol::backend::AuthenticateRequest,
    key: &str,
) -> Response {
    while let Answer::Slow(d, next) = answer {
        tokio::time::sleep(d).await;
        answer = *next;
    }
    match answer {
        Answer::Valid { uid, channels, presence_uids } => Json(json!({
            "uid": uid, "authToken": req.auth_token, "nodejsValidAuthToken": true,
            "clientId": req.client_id, "channels": channels, "presenceUids": presence_uids,
            "contentTokens": req.content_tokens,
        }))
        .into_response(),
        Answer::Drupal7 { uid, channels } => Json(json!({
            "uid": uid.to_string(), "name": "admin", "mail": "admin@example.org", "pass": "$S$DHASH",
            "roles": {"2": "authenticated user"}, "authToken": req.auth_token, "nodejsValidAuthToken": true,
            "clientId": req.client_id, "channels": channels, "presenceUids": [], "serviceKey": key,
            "contentTokens": [],
        }))
        .into_response(),
        Answer::Invalid => Json(json!({
            "uid": 0, "authToken": req.auth_token, "nodejsValidAuthToken": false, "clientId": req.client_id,
        }))
        .into_response(),
        Answer::Status(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }
        Answer::Redirect(code, to) => {
            (StatusCode::from_u16(code).unwrap_or(StatusCode::FOUND), [(header::LOCATION, to)])
                .into_response()
        }
        Answer::Garbage => (StatusCode::OK, "<html><body>Fatal error</body></html>").into_response(),
        Answer::Error(e) => Json(json!({"error": e})).into_response(),
        Answer::Slow(..) => unreachable!("unwrapped above"),
    }
}
