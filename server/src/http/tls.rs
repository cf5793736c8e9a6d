//! The `https` listener (`scheme = "https"` with `sslKeyPath`/`sslCertPath`, as in the original).
//! TLS handshakes run in their own tasks with a timeout, so a slow or silent client cannot hold
//! up the accept loop; each connection takes its permit ([`crate::http::http_conns`]) before the
//! handshake, and finished streams go to [`crate::http::serve`] with it.

use crate::error::StartError;
use crate::http::http_conns::HttpConns;
use crate::http::serve::{Accepted, Acceptor};
use axum::Router;
use axum::serve::Listener;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The files of the certificate chain and key, as configured.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// `sslKeyPath`.
    pub key_path: String,
    /// `sslCertPath`.
    pub cert_path: String,
    /// `sslCAPath`; empty: none.
    pub ca_path: String,
}

/// Reads the certificate chain (plus `sslCAPath` intermediates) and key into a server config.
pub fn server_config(files: &TlsFiles) -> Result<tokio_rustls::rustls::ServerConfig, StartError> {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut certs = read_certs("sslCertPath", &files.cert_path)?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!("sslCertPath: {:?} holds no PEM certificate", files.cert_path)));
    }
    if !files.ca_path.is_empty() {
        certs.extend(read_certs("sslCAPath", &files.ca_path)?);
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_path).map_err(|e| {
        StartError::Tls(format!("sslKeyPath: {:?}: {e} (an unencrypted PEM key is needed)", files.key_path))
    })?;
    tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).map_err(
        |e| StartError::Tls(format!("sslKeyPath/sslCertPath: the key does not fit the certificate: {e}")),
    )
}

fn read_certs(key: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let error = |e: &dyn std::fmt::Display| StartError::Tls(format!("{key}: {path:?}: {e}"));
    CertificateDer::pem_file_iter(path)
        .map_err(|e| error(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(&e))
}

/// Accepted, handshaken TLS connections, each with its [`Permit`](super::http_conns::Permit) (taken before the handshake).
pub struct TlsListener {
    ready: mpsc::Receiver<Accepted<TlsStream<TcpStream>>>,
    local: SocketAddr,
}

impl TlsListener {
    /// A listener without connection caps (what the tests' fake Drupal serves over TLS).
    pub fn new(listener: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        Self::with_caps(listener, acceptor, HttpConns::unlimited())
    }

    /// A listener whose connections take a permit of `conns` before their handshake.
    pub(crate) fn with_caps(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        conns: Arc<HttpConns>,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let (tcp, peer, permit) = crate::http::http_conns::accept(&listener, &conns).await;
                let _ = tcp.set_nodelay(true);
                let (acceptor, done) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(io)) => {
                            let _ = done.send(Accepted { io, peer, permit }).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl Acceptor for TlsListener {
    type Io = TlsStream<TcpStream>;

    async fn accept(&mut self) -> Accepted<Self::Io> {
        match self.ready.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }
}

/// For `axum::serve` (the tests' fake Drupal): the permit is not kept.
impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let accepted = Acceptor::accept(self).await;
        (accepted.io, accepted.peer)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `router` over TLS until `stop` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    app: &crate::App,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let tls = server_config(&app.settings.listen.tls)?;
    let listener = TlsListener::with_caps(listener, TlsAcceptor::from(Arc::new(tls)), app.http.clone())?;
    crate::http::serve::serve(listener, router, app.http_timeouts(), app.metrics.clone(), stop).await;
    Ok(())
}
