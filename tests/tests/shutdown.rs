//! Graceful shutdown: every client is told 1001 (reconnect soon) and `run` returns.

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};

#[tokio::test]
async fn shutdown_closes_clients_with_1001_and_returns() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("a", Answer::valid(1, &["c"]));
    let mut s = TestServer::start(&d).await;
    let mut authed = TestClient::connect_auth(&s.ws_url(), "a").await;
    let mut waiting = TestClient::connect(&s.ws_url()).await;
    let ws_url = s.ws_url();
    let stopping = tokio::spawn(async move { s.shutdown().await });
    assert_eq!(authed.expect_close().await, Some(1001));
    assert_eq!(waiting.expect_close().await, Some(1001));
    stopping.await.unwrap().expect("run returns Ok after a graceful shutdown");
    assert!(tokio_tungstenite::connect_async(ws_url).await.is_err(), "the listener is closed");
}
