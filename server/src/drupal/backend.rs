//! The HTTP client for Drupal's `/nodejs/message` callback (spec 2): `authenticate` for new
//! auth tokens, `userOnline`/`userOffline` notices. Requests are form-encoded (`messageJson`,
//! `serviceKey`), optionally with HTTP basic auth, over http or https (certificate checks per
//! `backend.strictSSL`). Redirects are not followed: they mean a misconfigured `backend.*`
//! (spec 7.18), and the error says where Drupal pointed.
//!
//! Under load: at most `backend.concurrency` requests run at once. Authentications that find
//! every slot busy wait in a queue of at most `backend.queueLength`, for as long as it takes
//! (only the request itself has a timeout, `backend.timeoutMs`); one more than the queue holds
//! is refused at once, so its client backs off (close 4100) instead of waiting without bound.
//! The queue is shared fairly between client addresses ([`crate::edge::fair_slots`]): each address
//! may hold `backend.queueSharePerAddress` of it, and freed slots go to the waiting addresses in
//! turn. Concurrent authentications of one auth token (tabs of one session, a reconnect storm)
//! make one Drupal call and share its answer; tokens Drupal refused are remembered for
//! `authRejectCacheSecs` ([`crate::edge::reject_cache`]). Presence notices are queued per user in
//! [`crate::drupal::notices`] and do not count against the queue. The REST API never waits on any of
//! this: only WebSocket authentication, the notices and browser messages call Drupal.
//!
//! Browser messages (`clientMessages`, [`Backend::forward`]) have request slots of their own
//! (`backend.messageConcurrency`, waiting in a queue of `backend.messageQueueLength`; why: see
//! ARCHITECTURE.md, Decisions). A full message queue refuses the message at once
//! (`backend-unavailable`), never an authentication.

use crate::drupal::notices::NoticeQueues;
use crate::edge::fair_slots::{FairSlots, Lane, Refused};
use crate::edge::proxy::UntrustedForwarders;
use crate::edge::reject_cache::RejectCache;
use crate::error::BackendError;
use crate::ops::metrics::Metrics;
use base64::Engine;
use drupal_push_protocol::backend::{
    AuthAnswer, AuthAnswerError, AuthenticateRequest, BackendMessage, FORM_MESSAGE_FIELD,
    FORM_SERVICE_KEY_FIELD, ForwardedMessage,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit, watch};

/// The shared answer of one authentication call.
type AuthResult = Result<Arc<AuthAnswer>, BackendError>;
/// Where the followers of a call wait for its answer (`None` until it arrives).
type Flight = watch::Receiver<Option<AuthResult>>;

#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: String,
    service_key: String,
    authorization: Option<String>,
    /// Slots of authentications and notices, shared fairly between client addresses.
    slots: FairSlots,
    /// Set while the queue (or an address's share of it) refuses, so that a storm logs one
    /// line, not one per client.
    refusing: AtomicBool,
    share_refusing: AtomicBool,
    /// For the hint in the share-refusal line (a reverse proxy missing from `trustedProxies`).
    untrusted: UntrustedForwarders,
    /// Auth tokens Drupal refused lately.
    rejected: RejectCache,
    /// Slots of browser messages.
    message_slots: Slots,
    /// Authentication calls in flight, by auth token.
    flights: Mutex<HashMap<String, Flight>>,
    notices: NoticeQueues,
    /// Authentication and notice slots in all (for `in_flight`).
    concurrency: usize,
    queue_length: usize,
    metrics: Arc<Metrics>,
}

/// Request slots, and a bounded queue of callers waiting for one.
struct Slots {
    slots: Semaphore,
    /// Callers waiting for a slot now, and at most.
    queued: AtomicUsize,
    queue_length: usize,
    /// Set while the queue refuses, so that a storm logs one line, not one per client.
    refusing: AtomicBool,
    /// What a full queue refuses, for the log line.
    refused: &'static str,
}

impl Slots {
    fn new(concurrency: usize, queue_length: usize, refused: &'static str) -> Slots {
        Slots {
            slots: Semaphore::new(concurrency),
            queued: AtomicUsize::new(0),
            queue_length,
            refusing: AtomicBool::new(false),
            refused,
        }
    }

    /// A slot, waiting in the bounded queue when all are busy; `None` when the queue is full.
    async fn acquire(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(slot) = self.slots.try_acquire() {
            return Some(slot);
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.queue_length {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            if !self.refusing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    queue_length = self.queue_length,
                    "backend queue full: {} until it drains",
                    self.refused
                );
            }
            return None;
        }
        self.refusing.store(false, Ordering::Relaxed);
        struct Leave<'a>(&'a AtomicUsize);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _in_queue = Leave(&self.queued);
        self.slots.acquire().await.ok()
    }
}

/// How to reach Drupal's `/nodejs/message` and how much to ask of it at once (`backend.*`,
/// `serviceKey`, `authRejectCache*`).
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// The message callback's URL, from `backend.scheme`, `host`, `port`, `basePath`, `messagePath`.
    pub url: String,
    /// `backend.strictSSL`.
    pub strict_ssl: bool,
    /// `backend.httpAuth`: `user:password`, empty for none.
    pub http_auth: String,
    /// `backend.timeoutMs`.
    pub timeout: Duration,
    /// `backend.concurrency`.
    pub concurrency: usize,
    /// `backend.queueLength`.
    pub queue_length: usize,
    /// Waiting authentications one client address may hold (`backend.queueSharePerAddress` of
    /// the queue, at least 1).
    pub queue_share: usize,
    /// `backend.messageConcurrency`.
    pub message_concurrency: usize,
    /// `backend.messageQueueLength`.
    pub message_queue_length: usize,
    /// `serviceKey`, sent with every call.
    pub service_key: String,
    /// `authRejectCacheSecs` (zero: off).
    pub reject_cache_ttl: Duration,
    /// `authRejectCacheMax`.
    pub reject_cache_max: usize,
}

impl Backend {
    /// A client for `url` (`settings.url`, or the demo's own) with `settings`.
    /// `untrusted`: the peers seen forwarding without being trusted proxies, named in the line
    /// that says an address holds its share of the queue.
    pub fn new(
        settings: &BackendSettings,
        url: String,
        metrics: Arc<Metrics>,
        untrusted: UntrustedForwarders,
    ) -> Result<Backend, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let b = settings;
        let timeout = b.timeout;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .tls_danger_accept_invalid_certs(!b.strict_ssl)
            .pool_max_idle_per_host(b.concurrency + b.message_concurrency)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("backend: cannot build the HTTP client: {e}"))?;
        let authorization = (!b.http_auth.is_empty())
            .then(|| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&b.http_auth)));
        Ok(Backend {
            inner: Arc::new(Inner {
                client,
                url,
                service_key: b.service_key.clone(),
                authorization,
                slots: FairSlots::new(b.concurrency, b.queue_length, b.queue_share),
                refusing: AtomicBool::new(false),
                share_refusing: AtomicBool::new(false),
                untrusted,
                rejected: RejectCache::new(b.reject_cache_ttl, b.reject_cache_max),
                message_slots: Slots::new(
                    b.message_concurrency,
                    b.message_queue_length,
                    "browser messages are refused (backend-unavailable)",
                ),
                flights: Mutex::default(),
                notices: NoticeQueues::default(),
                concurrency: b.concurrency,
                queue_length: b.queue_length,
                metrics,
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The per-user queues of presence notices.
    pub fn notices(&self) -> &NoticeQueues {
        &self.inner.notices
    }

    /// Authentications waiting for a request slot now.
    pub fn queued(&self) -> usize {
        self.inner.slots.queued()
    }

    /// Requests to Drupal running now (authentications and notices).
    pub fn in_flight(&self) -> usize {
        self.inner.concurrency.saturating_sub(self.inner.slots.free())
    }

    /// Whether Drupal refused `token` less than `authRejectCacheSecs` ago.
    pub fn recently_rejected(&self, token: &str) -> bool {
        self.inner.rejected.contains(token, Instant::now())
    }

    /// Posts one presence notice, waiting for a slot as long as it takes.
    pub async fn post_notice(&self, message: &BackendMessage) -> Result<bytes::Bytes, BackendError> {
        let _slot = self.inner.slots.acquire(Lane::Notices).await.map_err(|_| BackendError::Busy)?;
        self.send(message).await
    }

    /// Posts one authentication of a client at `client` through the bounded, fair queue and
    /// returns the body of a 200 answer.
    async fn post_auth(
        &self,
        message: &BackendMessage,
        client: IpAddr,
    ) -> Result<bytes::Bytes, BackendError> {
        let inner = &self.inner;
        let _slot = match inner.slots.acquire(Lane::of(client)).await {
            Ok(slot) => {
                inner.refusing.store(false, Ordering::Relaxed);
                inner.share_refusing.store(false, Ordering::Relaxed);
                slot
            }
            Err(refused) => {
                let e = match refused {
                    Refused::QueueFull => {
                        if !inner.refusing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                queue_length = self.queue_length(),
                                "backend queue full: new authentications are closed with 4100 until it drains"
                            );
                        }
                        BackendError::Busy
                    }
                    Refused::ShareFull => {
                        if !inner.share_refusing.swap(true, Ordering::Relaxed) {
                            let hint = inner.untrusted.hint(client);
                            tracing::warn!(
                                %client,
                                "an address holds its backend.queueSharePerAddress of the backend queue: its \
                                 further authentications are closed with 4100 (logged once per storm){hint}"
                            );
                        }
                        BackendError::AddressBusy
                    }
                };
                inner.metrics.backend_error(e.kind());
                return Err(e);
            }
        };
        self.send(message).await
    }

    fn queue_length(&self) -> usize {
        self.inner.queue_length
    }

    /// Posts a browser's message to Drupal in the message slots; returns Drupal's JSON answer,
    /// whatever it is (a handler's `$response`). An answer other than 200 is an error, with
    /// Drupal's `error` text when it gave one (Drupal 8+ answers 400 `Not implemented` when no
    /// `hook_nodejs_message_callback` handles the type).
    pub async fn forward(&self, message: ForwardedMessage) -> Result<serde_json::Value, BackendError> {
        let _slot = self.inner.message_slots.acquire().await.ok_or(BackendError::MessagesBusy)?;
        let started = std::time::Instant::now();
        let sent = self.send_raw(&BackendMessage::Forwarded(message).to_json()).await;
        self.inner.metrics.backend_request("message", started.elapsed());
        let (status, body) = sent.inspect_err(|e| self.inner.metrics.backend_error(e.kind()))?;
        let answer = serde_json::from_slice::<serde_json::Value>(&body);
        if status != http::StatusCode::OK {
            let error = answer.ok().and_then(|a| a.get("error").and_then(|e| e.as_str()).map(str::to_owned));
            return Err(match error {
                Some(e) => BackendError::Drupal(format!("HTTP {}: {e}", status.as_u16())),
                None => BackendError::Status(status.as_u16()),
            });
        }
        answer.map_err(|e| {
            let head = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            BackendError::NotJson(format!("{e}; the answer began with {head:?}"))
        })
    }

    /// Sends one request (the caller holds a slot), timed and counted for `/metrics`; the body
    /// of a 200 answer.
    async fn send(&self, message: &BackendMessage) -> Result<bytes::Bytes, BackendError> {
        let request = match message {
            BackendMessage::Authenticate(_) => "authenticate",
            BackendMessage::Forwarded(_) => "message",
            _ => "notice",
        };
        let started = std::time::Instant::now();
        let result = match self.send_raw(&message.to_json()).await {
            Ok((status, _)) if status != http::StatusCode::OK => Err(BackendError::Status(status.as_u16())),
            Ok((_, body)) => Ok(body),
            Err(e) => Err(e),
        };
        let metrics = &self.inner.metrics;
        metrics.backend_request(request, started.elapsed());
        if let Err(e) = &result {
            metrics.backend_error(e.kind());
        }
        result
    }

    /// Posts `json` as `messageJson`; the status and body of any answer but a redirect.
    async fn send_raw(&self, json: &str) -> Result<(http::StatusCode, bytes::Bytes), BackendError> {
        let inner = &self.inner;
        let form = [(FORM_MESSAGE_FIELD, json), (FORM_SERVICE_KEY_FIELD, inner.service_key.as_str())];
        let mut req = inner.client.post(&inner.url).form(&form);
        if let Some(a) = &inner.authorization {
            req = req.header(http::header::AUTHORIZATION, a);
        }
        let resp = req.send().await.map_err(|e| classify(&inner.url, e))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Err(BackendError::Redirect { status: status.as_u16(), location });
        }
        let body = resp.bytes().await.map_err(|e| classify(&inner.url, e))?;
        Ok((status, body))
    }

    /// Asks Drupal whether the client's auth token is a valid session (spec 2.4). A call for a
    /// token that is already being asked about waits for that call's answer instead. The call
    /// runs in its own task, so the others still get the answer when the first client leaves;
    /// it runs to its end even when all of them left, because the usual reason to leave during
    /// a slow call is a reload, and the reloaded page then joins the call instead of queueing
    /// again (the queue bound still holds: a call is queued once).
    /// `client` is the address of the client that asks first: the call waits in its lane.
    pub async fn authenticate(
        &self,
        request: AuthenticateRequest,
        client: IpAddr,
    ) -> Result<AuthAnswer, BackendError> {
        let mut flight = {
            let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&request.auth_token) {
                Some(flight) => flight.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    flights.insert(request.auth_token.clone(), rx.clone());
                    tokio::spawn(self.clone().fly(request, client, tx));
                    rx
                }
            }
        };
        let answer = flight.wait_for(Option::is_some).await.map_err(|_| {
            BackendError::Unreachable("the authentication call ended without an answer".into())
        })?;
        match answer.as_ref().expect("waited for an answer") {
            Ok(record) => Ok(AuthAnswer::clone(record)),
            Err(e) => Err(e.clone()),
        }
    }

    /// One authentication call; publishes its answer, then retires the flight.
    async fn fly(
        self,
        request: AuthenticateRequest,
        client: IpAddr,
        answer: watch::Sender<Option<AuthResult>>,
    ) {
        let token = request.auth_token.clone();
        let result = self.ask(request, client).await.map(Arc::new);
        if let Err(BackendError::InvalidToken) = result {
            self.inner.rejected.insert(&token, Instant::now());
        }
        answer.send_replace(Some(result));
        self.inner.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&token);
    }

    async fn ask(&self, request: AuthenticateRequest, client: IpAddr) -> Result<AuthAnswer, BackendError> {
        let body = self.post_auth(&BackendMessage::Authenticate(request), client).await?;
        let error = match AuthAnswer::parse(&body) {
            Ok(a) => return Ok(a),
            Err(AuthAnswerError::InvalidToken) => return Err(BackendError::InvalidToken),
            Err(AuthAnswerError::Error(e)) => BackendError::Drupal(e),
            Err(AuthAnswerError::NotJson(e)) => BackendError::NotJson(e),
        };
        self.inner.metrics.backend_error(error.kind());
        Err(error)
    }
}

fn classify(url: &str, e: reqwest::Error) -> BackendError {
    if e.is_timeout() {
        BackendError::Timeout
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        BackendError::Unreachable(format!("{url}: {text}"))
    }
}

/// Where `userOnline`/`userOffline` go (the backend client; tests may record them).
pub trait BackendNotifier: Send + Sync + 'static {
    fn notify(&self, message: BackendMessage);
}

impl BackendNotifier for Backend {
    /// Queues `userOnline`/`userOffline` behind the user's earlier notices (see
    /// [`crate::drupal::notices`]); Drupal's answer is not needed.
    fn notify(&self, message: BackendMessage) {
        self.inner.notices.push(self, message);
    }
}
