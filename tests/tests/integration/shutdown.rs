//! Graceful shutdown: every client is told 1001 (reconnect soon), spread over `drainWindowMs`,
//! and `run` returns. The second signal of the binary is tested in `server/tests/real_binary/drain_and_logs.rs`.

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

#[tokio::test]
async fn the_drain_spreads_closes_over_the_window_and_keeps_the_api_up() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("a", Answer::valid(1, &["c"]));
    let mut s = TestServer::start_with(&d, &[("drainWindowMs", "3000")]).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(TestClient::connect_auth(&s.ws_url(), "a").await);
    }
    let (ws_url, status_url, publish_url) = (s.ws_url(), s.url("/status.json"), s.url("/nodejs/publish"));
    let stopping = tokio::spawn(async move { s.shutdown().await });
    let closes: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let code = c.expect_close().await;
                (code, std::time::Instant::now())
            })
        })
        .collect();
    // While draining, new sockets are refused with 503, and Drupal can still publish.
    let http = drupal_push_tests::http_client();
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    loop {
        let st: serde_json::Value = http.get(&status_url).send().await.unwrap().json().await.unwrap();
        if st["draining"] == true {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never draining");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    match tokio_tungstenite::connect_async(&ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected 503 while draining, got {other:?}"),
    }
    let published = http
        .post(&publish_url)
        .header("NodejsServiceKey", SERVICE_KEY)
        .body(r#"{"channel":"c","n":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    let mut times = Vec::new();
    for c in closes {
        let (code, at) = c.await.unwrap();
        assert_eq!(code, Some(1001));
        times.push(at);
    }
    let spread = times.iter().max().unwrap().duration_since(*times.iter().min().unwrap());
    // Nine gaps of about 333 ms; loosely: not all at once.
    assert!(spread >= std::time::Duration::from_millis(1500), "closes spread over {spread:?} only");
    stopping.await.unwrap().expect("run returns Ok after the drain");
}
