//! Bad WebSocket input: every frame is validated, errors name the problem, nothing panics, and
//! the other clients carry on.

use drupal_push_protocol::{ErrorCode, ServerFrame};
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn setup() -> (FakeDrupal, TestServer) {
    Setup::new().user("a", Answer::valid(1, &["c"])).start().await
}

async fn error_for(c: &mut TestClient, text: &str) -> (ErrorCode, String) {
    c.send_raw(Message::text(text)).await;
    match c.next_frame().await {
        ServerFrame::Error { code, message } => (code, message),
        other => panic!("expected an error for {text:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_socket_stays() {
    let (_d, s) = setup().await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "a").await;
    for (text, needle) in [
        ("not json", "expected"),
        ("[1,2]", "invalid type"),
        ("{}", "missing field `type`"),
        (r#"{"type":"publish","channel":"c"}"#, "missing field `message`"),
        (r#"{"type":"nonsense"}"#, "unknown variant `nonsense`"),
        (r#"{"type":"join-token-channel","channel":"c"}"#, "contentToken"),
        (r#"{"type":"authenticate","authToken":7}"#, "invalid type"),
        ("", "EOF"),
    ] {
        let (code, message) = error_for(&mut c, text).await;
        assert_eq!(code, ErrorCode::BadFrame);
        assert!(message.contains(needle), "{text:?}: {message}");
    }
    let (code, _) = error_for(&mut c, r#"{"type":"authenticate","authToken":"a"}"#).await;
    assert_eq!(code, ErrorCode::AlreadyAuthenticated);
    assert_eq!(s.post("publish", json!({"channel": "c", "n": 1})).await["sent"], 1);
    assert_eq!(c.next_message().await["n"], 1);
}

#[tokio::test]
async fn binary_frames_close_with_1003() {
    let (_d, s) = setup().await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "a").await;
    c.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    assert_eq!(c.expect_close().await, Some(1003));
}

#[tokio::test]
async fn oversized_frames_close_with_1009() {
    let (_d, s) = setup().await;
    let mut other = TestClient::connect_auth(&s.ws_url(), "a").await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    let huge = format!(r#"{{"type":"authenticate","authToken":"{}"}}"#, "x".repeat(70 * 1024));
    c.send_raw(Message::text(huge)).await;
    assert_eq!(c.expect_close().await, Some(1009));
    assert_eq!(s.post("publish", json!({"channel": "c", "n": 1})).await["sent"], 1);
    assert_eq!(other.next_message().await["n"], 1);
}

#[tokio::test]
async fn empty_or_absurd_auth_tokens_are_refused_without_asking_drupal() {
    let (d, s) = setup().await;
    for token in [String::new(), "t".repeat(600)] {
        let mut c = TestClient::connect(&s.ws_url()).await;
        c.authenticate(&token, &[]).await;
        assert_eq!(c.expect_close().await, Some(4001));
    }
    assert_eq!(d.auth_calls(), 0);
}

#[tokio::test]
async fn connection_limits_close_with_4104() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start_with(&d, &[("maxConnectionsPerAddress", "2")]).await;
    let _a = TestClient::connect(&s.ws_url()).await;
    let b = TestClient::connect(&s.ws_url()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.unwrap();
    use futures_util::StreamExt;
    let m = tokio::time::timeout(drupal_push_tests::WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    match m {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 4104),
        other => panic!("{other:?}"),
    }
    // A freed slot can be used again.
    b.close().await;
    let _c = TestClient::connect(&s.ws_url()).await;

    let s = TestServer::start_with(&d, &[("maxConnections", "1")]).await;
    let _only = TestClient::connect(&s.ws_url()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.unwrap();
    let m = tokio::time::timeout(drupal_push_tests::WAIT, ws.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(m, Message::Close(Some(f)) if u16::from(f.code) == 4104));
}

#[tokio::test]
async fn plain_http_on_the_websocket_path_is_refused_politely() {
    let (_d, s) = setup().await;
    let resp =
        drupal_push_tests::http_client().get(s.ws_url().replace("ws://", "http://")).send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
}
