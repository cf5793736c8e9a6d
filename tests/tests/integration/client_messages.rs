//! Browser messages to Drupal (`message` requests, `clientMessages`) over real sockets against
//! the fake Drupal: an allowed message reaches Drupal's `/nodejs/message` with the uid, auth
//! token and socket id set by the server (forged ones overwritten) and the ack carries Drupal's
//! answer; disabled, disallowed, reserved, unauthenticated, malformed, oversized and over-rate
//! messages are refused with their code and never reach Drupal; a Drupal that is down, slow or
//! answering garbage gives `backend-unavailable` and the socket stays.

use drupal_push_protocol::ErrorCode;
use drupal_push_tests::client::Reply;
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::json;
use std::time::Duration;

async fn setup(extra: &[(&str, &str)]) -> (FakeDrupal, TestServer) {
    Setup::new()
        .user("s1", Answer::valid(1, &["nodejs_user_1"]))
        .user("s2", Answer::valid(2, &["nodejs_user_2"]))
        .set("clientMessages", "chatMessage,saveDraft")
        .settings(extra)
        .start()
        .await
}

fn ack(id: u64, result: serde_json::Value) -> Reply {
    Reply::Ack { id, result }
}

#[tokio::test]
async fn an_allowed_message_reaches_drupal_with_the_server_set_fields_and_the_ack_has_its_answer() {
    let (d, s) = setup(&[]).await;
    d.answer_message("chatMessage", Answer::Json(json!({"status": "saved", "n": [1, 2]})));
    d.answer_message("saveDraft", Answer::Json(json!("Draft saved.")));
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let forged = json!({"type": "chatMessage", "text": "hi", "uid": 99, "authToken": "s2",
                        "clientId": "someone-else", "nested": {"a": [1, null]}});
    c.send_message(forged, Some(7)).await;
    assert_eq!(c.next_reply().await, ack(7, json!({"status": "saved", "n": [1, 2]})));
    let got = d.forwarded();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m.message_type, "chatMessage");
    assert_eq!(m.uid.0, 1, "the uid is the socket's, not the one the page sent");
    assert_eq!(m.auth_token, "s1");
    assert_eq!(m.client_id.as_str(), c.socket_id);
    assert_eq!(
        serde_json::Value::Object(m.fields.clone()),
        json!({"type": "chatMessage", "text": "hi", "nested": {"a": [1, null]}})
    );

    // `messageType` names the handler before `type`; a handler may answer any JSON.
    c.send_message(json!({"messageType": "saveDraft", "type": "chatMessage", "body": "b"}), Some(8)).await;
    assert_eq!(c.next_reply().await, ack(8, json!("Draft saved.")));
    assert_eq!(d.forwarded()[1].message_type, "saveDraft");

    // Without an id the message still goes to Drupal, and nothing comes back.
    c.send_message(json!({"type": "chatMessage", "text": "quiet"}), None).await;
    d.wait_for("the message without an id", |m| format!("{m:?}").contains("quiet")).await;
    c.send_message(json!({"type": "chatMessage", "text": "loud"}), Some(9)).await;
    assert_eq!(c.next_reply().await.id(), Some(9), "nothing answered the message without an id");
    assert_eq!(d.forwarded_calls(), 4);
}

#[tokio::test]
async fn an_unhandled_type_gets_drupals_answer_and_a_drupal_8_400_is_an_error() {
    let (d, s) = setup(&[]).await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.send_message(json!({"type": "chatMessage"}), Some(1)).await;
    assert_eq!(c.next_reply().await, ack(1, json!({"error": "Not implemented"})), "Drupal 7's answer");
    d.answer_message("saveDraft", Answer::Status(400));
    c.send_message(json!({"type": "saveDraft"}), Some(2)).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(2), ErrorCode::BackendUnavailable), "{r:?}");
}

#[tokio::test]
async fn refused_messages_never_reach_drupal_and_the_socket_stays() {
    let (d, s) = setup(&[("clientRequestMaxBytes", "1kb")]).await;
    d.answer_message("chatMessage", Answer::Json(json!({"ok": true})));

    let mut anonymous = TestClient::connect(&s.ws_url()).await;
    anonymous.send_message(json!({"type": "chatMessage"}), Some(1)).await;
    let r = anonymous.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(1), ErrorCode::NotAuthenticated));

    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let refused = [
        (json!({"type": "other"}), ErrorCode::MessageTypeNotAllowed),
        (json!({"type": "authenticate", "authToken": "s2"}), ErrorCode::ReservedMessageType),
        (json!({"messageType": "userOnline", "uid": 2}), ErrorCode::ReservedMessageType),
        (json!({"type": "userOffline", "uid": 1}), ErrorCode::ReservedMessageType),
        (json!({"type": "chatMessage", "text": "x".repeat(2000)}), ErrorCode::MessageTooLarge),
        (json!({"text": "no type"}), ErrorCode::BadFrame),
        (json!({"type": 5}), ErrorCode::BadFrame),
        (json!(["chatMessage"]), ErrorCode::BadFrame),
    ];
    for (i, (message, code)) in refused.into_iter().enumerate() {
        let id = 10 + i as u64;
        c.send_message(message.clone(), Some(id)).await;
        let r = c.next_reply().await;
        assert_eq!((r.id(), r.code()), (Some(id), code), "{message}: {r:?}");
    }
    // A request that does not decode is refused with its id; one without an id without.
    c.send_raw(tokio_tungstenite::tungstenite::Message::text(r#"{"type":"message","id":30}"#)).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(30), ErrorCode::BadFrame));
    c.send_message(json!({"type": "other"}), None).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (None, ErrorCode::MessageTypeNotAllowed));

    c.send_message(json!({"type": "chatMessage", "text": "fine"}), Some(40)).await;
    assert_eq!(c.next_reply().await, ack(40, json!({"ok": true})), "the socket still works");
    assert_eq!(d.forwarded_calls(), 1, "only the allowed message reached Drupal: {:?}", d.forwarded());
}

#[tokio::test]
async fn messages_are_off_by_default() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("s1", Answer::valid(1, &[]));
    let s = TestServer::start(&d).await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.send_message(json!({"type": "chatMessage"}), Some(3)).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(3), ErrorCode::ClientMessagesDisabled));
    c.publish("nodejs_user_1", json!({}), false, Some(4)).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(4), ErrorCode::ChannelNotWritable));
    assert_eq!(d.forwarded_calls(), 0);
}

#[tokio::test]
async fn each_socket_has_its_own_rate_limit() {
    // A rate this low refills nothing during the test, so the count is exact on any machine.
    let (d, s) =
        setup(&[("clientRequestRatePerSocket", "0.001"), ("clientRequestBurstPerSocket", "3")]).await;
    d.answer_message("chatMessage", Answer::Json(json!({"ok": true})));
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    for id in 1..=5 {
        c.send_message(json!({"type": "chatMessage", "i": id}), Some(id)).await;
    }
    let mut replies = Vec::new();
    for _ in 1..=5 {
        replies.push(c.next_reply().await);
    }
    replies.sort_by_key(|r| r.id());
    for (i, r) in replies.iter().enumerate() {
        match i {
            0..=2 => assert_eq!(r, &ack(i as u64 + 1, json!({"ok": true}))),
            _ => assert_eq!((r.id(), r.code()), (Some(i as u64 + 1), ErrorCode::RateLimited)),
        }
    }
    assert_eq!(d.forwarded_calls(), 3, "the refused messages never reached Drupal");
    let mut other = TestClient::connect_auth(&s.ws_url(), "s2").await;
    other.send_message(json!({"type": "chatMessage"}), Some(1)).await;
    assert_eq!(other.next_reply().await, ack(1, json!({"ok": true})), "another socket has its own budget");
}

#[tokio::test]
async fn a_failing_drupal_answers_backend_unavailable_and_the_socket_stays() {
    let (mut d, s) = setup(&[]).await;
    d.answer_message("chatMessage", Answer::Garbage);
    d.answer_message("saveDraft", Answer::Slow(Duration::from_secs(3), Box::new(Answer::Json(json!(1)))));
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.send_message(json!({"type": "chatMessage"}), Some(1)).await;
    let r = c.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(1), ErrorCode::BackendUnavailable), "garbage: {r:?}");
    // Slower than backend.timeoutMs (2 s in tests).
    c.send_message(json!({"type": "saveDraft"}), Some(2)).await;
    let Reply::Error(e) = c.next_reply().await else { panic!("a timeout is an error") };
    assert_eq!((e.id, e.code), (Some(2), ErrorCode::BackendUnavailable));
    assert!(e.message.contains("in time"), "{e:?}");
    assert!(!e.message.contains("127.0.0.1"), "the backend's address is not told to browsers: {e:?}");

    d.stop().await;
    c.send_message(json!({"type": "chatMessage"}), Some(3)).await;
    let Reply::Error(e) = c.next_reply().await else { panic!("Drupal down is an error") };
    assert_eq!((e.id, e.code), (Some(3), ErrorCode::BackendUnavailable), "{e:?}");
    // The socket is still open and served.
    c.send(&drupal_push_protocol::ClientFrame::Ping).await;
    assert_eq!(c.next_frame().await, drupal_push_protocol::ServerFrame::Pong);
}

#[tokio::test]
async fn a_slow_drupal_never_stops_the_socket_from_reading() {
    let (d, s) = setup(&[("backend.timeoutMs", "10000")]).await;
    d.answer_message(
        "saveDraft",
        Answer::Slow(Duration::from_secs(2), Box::new(Answer::Json(json!("late")))),
    );
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.send_message(json!({"type": "saveDraft"}), Some(1)).await;
    c.send(&drupal_push_protocol::ClientFrame::Ping).await;
    assert_eq!(c.next_frame().await, drupal_push_protocol::ServerFrame::Pong, "answered while Drupal works");
    assert_eq!(c.next_reply().await, ack(1, json!("late")));
}

#[tokio::test]
async fn messages_waiting_for_drupal_never_delay_an_authentication() {
    // One slot for authentications, one for messages and no queue for messages. The message
    // holds its slot far longer than the test waits for anything (`WAIT`), so an authentication
    // that had to wait for it would fail the test rather than make it slow.
    let settings = [
        ("backend.concurrency", "1"),
        ("backend.messageConcurrency", "1"),
        ("backend.messageQueueLength", "0"),
        ("backend.timeoutMs", "120000"),
    ];
    let (d, s) = setup(&settings).await;
    let stuck = Answer::Slow(Duration::from_secs(100), Box::new(Answer::Json(json!("late"))));
    d.answer_message("saveDraft", stuck);
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.send_message(json!({"type": "saveDraft", "n": 1}), Some(1)).await;
    d.wait_for("the first message", |m| format!("{m:?}").contains("saveDraft")).await;

    // The message slot is taken and nothing may wait: refused at once, Drupal not called.
    c.send_message(json!({"type": "saveDraft", "n": 2}), Some(2)).await;
    let Reply::Error(e) = c.next_reply().await else { panic!("a busy message slot is an error") };
    assert_eq!((e.id, e.code), (Some(2), ErrorCode::BackendUnavailable), "{e:?}");
    assert!(e.message.contains("too many messages"), "{e:?}");
    assert_eq!(d.forwarded_calls(), 1);

    // Authentications have their own slot: a new socket authenticates while the message waits.
    let mut other = TestClient::connect_auth(&s.ws_url(), "s2").await;
    other.send_message(json!({"type": "chatMessage"}), Some(3)).await;
    let r = other.next_reply().await;
    assert_eq!(
        (r.id(), r.code()),
        (Some(3), ErrorCode::BackendUnavailable),
        "the message slot is still taken"
    );
    c.send(&drupal_push_protocol::ClientFrame::Ping).await;
    assert_eq!(c.next_frame().await, drupal_push_protocol::ServerFrame::Pong, "still waiting, still served");
}
