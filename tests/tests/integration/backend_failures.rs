//! A Drupal that is down, slow, redirecting, missing, answering garbage or errors, or refusing
//! the token: the client gets a clear close code, nothing crashes, and other clients never
//! notice.

use drupal_push_protocol::{ErrorCode, ServerFrame};
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use serde_json::json;
use std::time::Duration;

async fn close_code_for(answer: Answer) -> Option<u16> {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("t", answer);
    let s = TestServer::start_with(&d, &[("backend.timeoutMs", "500")]).await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("t", &[]).await;
    c.expect_close().await
}

#[tokio::test]
async fn invalid_token_means_do_not_reconnect() {
    assert_eq!(close_code_for(Answer::Invalid).await, Some(4001));
}

#[tokio::test]
async fn backend_trouble_means_reconnect_with_backoff() {
    for answer in [
        Answer::Status(404),
        Answer::Status(500),
        Answer::Redirect(301, "https://drupal.example/nodejs/message".into()),
        Answer::Redirect(302, "/elsewhere".into()),
        Answer::Redirect(307, "/elsewhere".into()),
        Answer::Garbage,
        Answer::Error("Invalid service key.".into()),
        Answer::Slow(Duration::from_secs(3), Box::new(Answer::valid(1, &[]))),
    ] {
        let label = format!("{answer:?}");
        assert_eq!(close_code_for(answer).await, Some(4100), "{label}");
    }
}

#[tokio::test]
async fn a_backend_that_is_down() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    // Nothing listens on the port of a listener we bound and dropped.
    let free = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let s = TestServer::start_with(&d, &[("backend.port", &port)]).await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("t", &[]).await;
    assert_eq!(c.expect_close().await, Some(4100));
    assert_eq!(s.get("health/check").await["status"], "success");
}

#[tokio::test]
async fn a_service_key_mismatch_with_drupal_is_backend_trouble() {
    let d = FakeDrupal::start("drupal-has-another-key").await;
    d.answer("t", Answer::valid(1, &[]));
    let s = TestServer::start(&d).await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("t", &[]).await;
    assert_eq!(c.expect_close().await, Some(4100));
    assert_eq!(d.bad_key_calls(), 1);
}

#[tokio::test]
async fn leaving_while_drupal_is_still_asked_crashes_nothing() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("slow", Answer::Slow(Duration::from_millis(500), Box::new(Answer::valid(1, &["c"]))));
    d.answer("ok", Answer::valid(2, &["c"]));
    let s = TestServer::start(&d).await;
    for _ in 0..5 {
        let mut c = TestClient::connect(&s.ws_url()).await;
        c.authenticate("slow", &[]).await;
        c.close().await;
    }
    // The server keeps serving, and the answers arriving for gone sockets change nothing.
    let mut ok = TestClient::connect_auth(&s.ws_url(), "ok").await;
    // The five slow ones share calls in flight for their token (at least one), plus "ok".
    d.wait_for("the slow and the ok authentication", |_| d.auth_calls() >= 2).await;
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    loop {
        let h = s.get("health/check").await;
        if h["sockets"] == 1 && h["preAuthSockets"] == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "gone sockets still counted: {h}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.post("publish", json!({"channel": "c", "n": 1})).await["sent"], 1);
    assert_eq!(ok.next_message().await["n"], 1);
}

#[tokio::test]
async fn a_slow_backend_does_not_delay_other_clients() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("slow", Answer::Slow(Duration::from_secs(5), Box::new(Answer::valid(1, &["c"]))));
    d.answer("ok", Answer::valid(2, &["c"]));
    let s = TestServer::start_with(&d, &[("backend.timeoutMs", "8000")]).await;
    let mut waiting = TestClient::connect(&s.ws_url()).await;
    waiting.authenticate("slow", &[]).await;
    let started = std::time::Instant::now();
    let mut ok = TestClient::connect_auth(&s.ws_url(), "ok").await;
    assert_eq!(s.post("publish", json!({"channel": "c", "n": 1})).await["sent"], 1);
    assert_eq!(ok.next_message().await["n"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "another client's slow backend call held this one up"
    );
    // A second authenticate while the first is pending is refused, the connection stays.
    waiting.authenticate("slow", &[]).await;
    assert!(matches!(waiting.next_frame().await, ServerFrame::Error { code: ErrorCode::AuthPending, .. }));
}

#[tokio::test]
async fn backend_answers_are_cached_and_the_cache_expires() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("t", Answer::valid(1, &[]));
    let s = TestServer::start_with(&d, &[("authCacheTtlSecs", "1")]).await;
    TestClient::connect_auth(&s.ws_url(), "t").await.close().await;
    TestClient::connect_auth(&s.ws_url(), "t").await.close().await;
    assert_eq!(d.auth_calls(), 1);
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    while s.get("health/check").await["cachedAuthTokens"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "cache never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    TestClient::connect_auth(&s.ws_url(), "t").await;
    assert_eq!(d.auth_calls(), 2, "an expired answer is asked for again");
}
