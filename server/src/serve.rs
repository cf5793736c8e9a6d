//! The HTTP/1.1 accept loop (instead of `axum::serve`).
//!
//! axum's server runs connections through hyper-util's HTTP/1-or-2 detection, which wraps each
//! socket in a private type; a WebSocket upgrade then cannot hand back the `TcpStream`, and the
//! direct writes of [`crate::outbox`] (publishers writing to the socket themselves) would need
//! a copy through a socket pair. Drupal and browsers speak HTTP/1.1 here, so this loop serves
//! every connection with hyper's HTTP/1 connection and upgrades, whose upgraded I/O is the
//! `TokioIo<TcpStream>` the connection task takes back. Each request carries the peer address
//! as axum's `ConnectInfo`. On `stop`, the loop stops accepting, asks every open HTTP
//! connection to finish its request and close, and waits for them (upgraded WebSockets are the
//! connection tasks' and the drain's business).

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// How long HTTP requests in progress may take to finish once shutdown began.
const REQUEST_DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` completes.
pub async fn serve<L>(mut listener: L, router: Router, stop: impl Future<Output = ()>)
where
    L: Listener<Addr = SocketAddr>,
{
    let (closing, closed) = watch::channel(false);
    let connections = TaskTracker::new();
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req)
        });
        let mut closed = closed.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = closed.wait_for(|c| *c) => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    connections.close();
    if tokio::time::timeout(REQUEST_DRAIN, connections.wait()).await.is_err() {
        tracing::warn!("HTTP requests still running after the shutdown period");
    }
}
