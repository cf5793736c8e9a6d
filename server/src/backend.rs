//! The HTTP client for Drupal's `/nodejs/message` callback (spec 2): `authenticate` for new
//! auth tokens, `userOnline`/`userOffline` notices. Requests are form-encoded (`messageJson`,
//! `serviceKey`), optionally with HTTP basic auth, over http or https (certificate checks per
//! `backend.strictSSL`). Every request has a timeout; at most `backend.concurrency` run at once
//! and the rest wait their turn. Redirects are not followed: they mean a misconfigured
//! `backend.*` (spec 7.18), and the error says where Drupal pointed.

use crate::config::Config;
use crate::error::BackendError;
use base64::Engine;
use drupal_push_protocol::backend::{
    AuthAnswer, AuthAnswerError, AuthenticateRequest, BackendMessage, FORM_MESSAGE_FIELD,
    FORM_SERVICE_KEY_FIELD,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Notices waiting for a free request slot at most; beyond it they are dropped (and logged),
/// so a dead backend cannot make the server accumulate tasks.
const MAX_WAITING_NOTICES: usize = 10_000;

#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    client: reqwest::Client,
    url: String,
    service_key: String,
    authorization: Option<String>,
    slots: Semaphore,
    timeout: Duration,
    waiting_notices: AtomicUsize,
}

impl Backend {
    /// A client for `url` with the backend settings of `config`.
    pub fn new(config: &Config, url: String) -> Result<Backend, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let b = &config.backend;
        let timeout = Duration::from_millis(b.timeout_ms);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .tls_danger_accept_invalid_certs(!b.strict_ssl)
            .pool_max_idle_per_host(b.concurrency)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("backend: cannot build the HTTP client: {e}"))?;
        let authorization = (!b.http_auth.is_empty())
            .then(|| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&b.http_auth)));
        Ok(Backend {
            inner: Arc::new(Inner {
                client,
                url,
                service_key: config.service_key.clone(),
                authorization,
                slots: Semaphore::new(b.concurrency),
                timeout,
                waiting_notices: AtomicUsize::new(0),
            }),
        })
    }

    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Posts one message and returns the body of a 200 answer.
    pub async fn post(&self, message: &BackendMessage) -> Result<bytes::Bytes, BackendError> {
        let inner = &self.inner;
        let _slot = tokio::time::timeout(inner.timeout, inner.slots.acquire())
            .await
            .map_err(|_| BackendError::Busy)?
            .map_err(|_| BackendError::Busy)?;
        let json = message.to_json();
        let form =
            [(FORM_MESSAGE_FIELD, json.as_str()), (FORM_SERVICE_KEY_FIELD, inner.service_key.as_str())];
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
        if status != http::StatusCode::OK {
            return Err(BackendError::Status(status.as_u16()));
        }
        resp.bytes().await.map_err(|e| classify(&inner.url, e))
    }

    /// Asks Drupal whether the client's auth token is a valid session (spec 2.4).
    pub async fn authenticate(&self, request: AuthenticateRequest) -> Result<AuthAnswer, BackendError> {
        let body = self.post(&BackendMessage::Authenticate(request)).await?;
        match AuthAnswer::parse(&body) {
            Ok(a) => Ok(a),
            Err(AuthAnswerError::InvalidToken) => Err(BackendError::InvalidToken),
            Err(AuthAnswerError::Error(e)) => Err(BackendError::Drupal(e)),
            Err(AuthAnswerError::NotJson(e)) => Err(BackendError::NotJson(e)),
        }
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
    /// Sends `userOnline`/`userOffline` in the background; Drupal's answer is not needed.
    fn notify(&self, message: BackendMessage) {
        let inner = &self.inner;
        if inner.waiting_notices.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING_NOTICES {
            inner.waiting_notices.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(?message, "backend notice dropped: too many notices wait for the backend");
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.post(&message).await {
                tracing::warn!(error = %e, ?message, "backend notice failed");
            }
            this.inner.waiting_notices.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
