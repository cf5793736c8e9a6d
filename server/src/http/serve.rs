//! The HTTP/1.1 accept loop (instead of `axum::serve`: see ARCHITECTURE.md, Decisions), and the
//! timeouts of HTTP connections.
//!
//! Every connection is served with hyper's HTTP/1 connection and upgrades, whose upgraded I/O
//! is the `TokioIo<TcpStream>` the connection task takes back for the direct writes of
//! [`crate::conn::outbox`]. Each request carries the peer address as axum's `ConnectInfo`. On
//! `stop`, the loop stops accepting, asks every open HTTP connection to finish its request and
//! close, and waits for them (upgraded WebSockets are the connection tasks' and the drain's
//! business).
//!
//! Connections come from an [`Acceptor`] with their [`Permit`] ([`crate::http::http_conns`]: the
//! caps), held until the connection closes or is upgraded. No connection keeps it for long
//! without a request (security review, finding 3):
//! * `httpHeaderTimeoutMs`: hyper's header-read timeout, counted from the connection's
//!   opening or the end of the previous response, closes a connection whose request head has
//!   not fully arrived (a partial request line, headers trickling in);
//! * `httpIdleTimeoutMs`: a kept-alive connection that has answered a request and received no
//!   new one for this long is closed (gracefully: a response still being written is finished,
//!   within `writeTimeoutMs`);
//! * the request body has `httpHeaderTimeoutMs` too ([`crate::api::JsonBody`]).

use crate::http::http_conns::Permit;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long HTTP requests in progress may take to finish once shutdown began.
const REQUEST_DRAIN: Duration = Duration::from_secs(10);

/// One accepted connection, with the permit that counts it.
pub struct Accepted<Io> {
    pub io: Io,
    pub peer: SocketAddr,
    pub permit: Permit,
}

/// Where connections come from: plain TCP, or the `https` listener's TLS streams.
pub trait Acceptor: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&mut self) -> impl Future<Output = Accepted<Self::Io>> + Send;
}

/// The timeouts of HTTP connections.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    /// How long a connection closed for idleness may take to finish a response.
    pub finish: Duration,
}

/// Requests a connection's service started and finished, for its idle timeout.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    started: u64,
    finished: u64,
}

/// Counts a request as finished when its service future completes or is dropped.
struct Finished(Arc<watch::Sender<Requests>>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.send_modify(|r| r.finished += 1);
    }
}

/// Serves `router` on connections from `acceptor` until `stop` completes.
pub async fn serve<A: Acceptor>(
    mut acceptor: A,
    router: Router,
    timeouts: Timeouts,
    metrics: Arc<crate::ops::metrics::Metrics>,
    stop: impl Future<Output = ()>,
) {
    let (closing, closed) = watch::channel(false);
    let connections = TaskTracker::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(timeouts.header);
    tokio::pin!(stop);
    loop {
        let Accepted { io, peer, permit } = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = &mut stop => break,
        };
        let router = router.clone();
        let requests = Arc::new(watch::Sender::new(Requests::default()));
        let idle = idle_expired(requests.subscribe(), timeouts.idle);
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            requests.send_modify(|r| r.started += 1);
            let done = Finished(requests.clone());
            let response = router.clone().oneshot(req);
            async move {
                let _done = done;
                response.await
            }
        });
        let mut closed = closed.clone();
        let conn = http1.serve_connection(TokioIo::new(io), service).with_upgrades();
        let metrics = metrics.clone();
        connections.spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            let finish = tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        if e.is_timeout() {
                            metrics.http_timeout("header");
                        }
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = closed.wait_for(|c| *c) => None,
                () = idle => {
                    metrics.http_timeout("idle");
                    Some(timeouts.finish)
                }
            };
            conn.as_mut().graceful_shutdown();
            match finish {
                Some(limit) => {
                    let _ = tokio::time::timeout(limit, conn).await;
                }
                None => {
                    let _ = conn.await;
                }
            }
        });
    }
    drop(acceptor);
    let _ = closing.send(true);
    connections.close();
    if tokio::time::timeout(REQUEST_DRAIN, connections.wait()).await.is_err() {
        tracing::warn!("HTTP requests still running after the shutdown period");
    }
}

/// Completes once the connection has answered a request and then seen no new one for `idle`.
async fn idle_expired(mut requests: watch::Receiver<Requests>, idle: Duration) {
    loop {
        let answered = requests.wait_for(|r| r.finished > 0 && r.started == r.finished).await.map(|r| *r);
        let Ok(answered) = answered else {
            // The service is gone: so is the connection.
            return std::future::pending().await;
        };
        let next = requests.wait_for(|r| r.started != answered.started);
        if tokio::time::timeout(idle, next).await.is_err() {
            return;
        }
    }
}

/// Plain TCP connections, through the caps of [`crate::http::http_conns`].
pub struct TcpAcceptor {
    pub listener: tokio::net::TcpListener,
    pub conns: Arc<crate::http::http_conns::HttpConns>,
}

impl Acceptor for TcpAcceptor {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> Accepted<Self::Io> {
        let (io, peer, permit) = crate::http::http_conns::accept(&self.listener, &self.conns).await;
        let _ = io.set_nodelay(true);
        Accepted { io, peer, permit }
    }
}
