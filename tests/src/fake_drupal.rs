//! The fake Drupal of the tests: the server crate's shared fake
//! (`drupal_push_server::fake_drupal`) served over real HTTP (or HTTPS) on 127.0.0.1:0,
//! recording every message. Unscripted tokens are invalid.

use drupal_push_protocol::backend::{BackendMessage, ForwardedMessage};
pub use drupal_push_server::fake_drupal::Answer;
use drupal_push_server::fake_drupal::FakeDrupal as Core;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// A running fake Drupal; stops when dropped.
pub struct FakeDrupal {
    core: Core,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
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
        let core = Core::new(service_key, Arc::new(|_: &str| Answer::Invalid), true);
        let app = core.router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake drupal");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = match tls {
            None => tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
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
        FakeDrupal { core, addr, task, stop: Some(stop) }
    }

    /// Stops serving (plain HTTP fakes): the port refuses connections and the connections the
    /// server keeps open are closed, as when Drupal's web server goes down.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(crate::WAIT, &mut self.task).await.expect("the fake Drupal stops in time").ok();
    }

    /// Scripts the answer to browser messages of `message_type` (its Drupal handler).
    pub fn answer_message(&self, message_type: &str, answer: Answer) {
        self.core.answer_message(message_type, answer);
    }

    /// The browser messages the server forwarded so far.
    pub fn forwarded(&self) -> Vec<ForwardedMessage> {
        self.messages()
            .into_iter()
            .filter_map(|m| match m {
                BackendMessage::Forwarded(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    /// Number of browser messages forwarded so far.
    pub fn forwarded_calls(&self) -> usize {
        self.core.counts().forwarded.load(Relaxed) as usize
    }

    /// Scripts the answer for `token`. Unscripted tokens are invalid.
    pub fn answer(&self, token: &str, answer: Answer) {
        self.core.answer(token, answer);
    }

    /// Makes `userOnline` and `userOffline` take this long each before they are recorded and
    /// answered (a busy Drupal writing its presence table).
    pub fn delay_notices(&self, online: Duration, offline: Duration) {
        self.core.delay_notices(online, offline);
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<BackendMessage> {
        self.core.messages()
    }

    /// Numbers of `userOnline` and `userOffline` received.
    pub fn notice_counts(&self) -> (usize, usize) {
        let c = self.core.counts();
        (c.online.load(Relaxed) as usize, c.offline.load(Relaxed) as usize)
    }

    /// Whether `message` has been received.
    pub fn has_received(&self, message: &BackendMessage) -> bool {
        self.core.messages().contains(message)
    }

    /// Number of `authenticate` calls received.
    pub fn auth_calls(&self) -> usize {
        self.core.counts().authenticate.load(Relaxed) as usize
    }

    /// Requests that carried a wrong service key.
    pub fn bad_key_calls(&self) -> usize {
        self.core.counts().bad_key.load(Relaxed) as usize
    }

    /// Waits until a received message satisfies `pred`, failing after [`crate::WAIT`].
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&BackendMessage) -> bool) -> BackendMessage {
        match self.core.wait_for(crate::WAIT, pred).await {
            Some(m) => m,
            None => panic!("timed out waiting for the backend to receive {what}; got {:?}", self.messages()),
        }
    }
}
