//! Content-token channels: registration, joining at auth time and later, messages, the users
//! route, disconnect notices with their grace period, rejoining after a reconnect (lost in the
//! original: spec 7.13), token binding and expiry.

use drupal_push_protocol::{ErrorCode, ServerFrame};
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::{Value, json};

async fn setup() -> (FakeDrupal, TestServer) {
    Setup::new()
        .user("s1", Answer::valid(1, &["nodejs_user_1"]))
        .user("s2", Answer::valid(2, &["nodejs_user_2"]))
        .user("anon-a", Answer::valid(0, &[]))
        .user("anon-b", Answer::valid(0, &[]))
        .start()
        .await
}

async fn token(s: &TestServer, channel: &str, token: &str, notify: bool) {
    let body = json!({"channel": channel, "token": token, "notifyOnDisconnect": notify,
                      "userData": {"name": format!("owner of {token}")}});
    assert_eq!(s.post("content/token", body).await, json!({"status": "success"}));
}

fn joined(channel: &str, token: &str, notify: bool) -> Value {
    json!({"callback": "clientJoinedTokenChannel",
           "data": {"channel": channel, "notifyOnDisconnect": notify, "userData": {"name": format!("owner of {token}")}}})
}

fn left(channel: &str, uid: u64) -> Value {
    json!({"channel": channel, "contentChannelNotification": true, "data": {"uid": uid, "type": "disconnect"}})
}

#[tokio::test]
async fn join_at_auth_then_messages_and_users() {
    let (_d, s) = setup().await;
    token(&s, "chat", "tk1", false).await;
    token(&s, "chat", "tk2", false).await;
    let (mut a, data) = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("chat", "tk1")]).await;
    assert_eq!(data["contentTokens"], json!({"chat": "tk1"}));
    assert_eq!(a.next_message().await, joined("chat", "tk1", false));
    let (mut b, _) =
        TestClient::connect_auth_with(&s.ws_url(), "s2", &[("chat", "tk2"), ("nope", "x")]).await;
    assert_eq!(b.next_message().await, joined("chat", "tk2", false));
    assert_eq!(a.next_message().await, joined("chat", "tk2", false));
    assert_eq!(
        s.post("content/token/message", json!({"channel": "chat", "callback": "cb", "data": "é"})).await,
        json!({"status": "success", "sent": 2})
    );
    for c in [&mut a, &mut b] {
        let env = c.next_envelope().await;
        assert_eq!(env.message, json!({"channel": "chat", "callback": "cb", "data": "é"}));
    }
    assert_eq!(
        s.post("content/token/users", json!({"channel": "chat"})).await,
        json!({"users": {"uids": [1, 2], "authTokens": []}})
    );
    let h = s.get("health/check").await;
    assert_eq!(h["contentTokens"]["chat"], json!({"tokens": 0, "sockets": 2}));
}

#[tokio::test]
async fn explicit_join_and_bad_tokens() {
    let (_d, s) = setup().await;
    token(&s, "room", "good", true).await;
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    a.join_token_channel("room", "wrong").await;
    match a.next_frame().await {
        ServerFrame::Error { code, message } => {
            assert_eq!(code, ErrorCode::InvalidContentToken);
            assert!(message.contains("room"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    a.join_token_channel("room", "good").await;
    assert_eq!(a.next_message().await, joined("room", "good", true));
    // Before authentication a join is refused.
    let mut pre = TestClient::connect(&s.ws_url()).await;
    pre.join_token_channel("room", "good").await;
    assert!(matches!(pre.next_frame().await, ServerFrame::Error { code: ErrorCode::NotAuthenticated, .. }));
}

#[tokio::test]
async fn a_token_belongs_to_the_session_that_used_it() {
    let (_d, s) = setup().await;
    token(&s, "room", "tk", false).await;
    let _a = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("room", "tk")]).await;
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    b.join_token_channel("room", "tk").await;
    assert!(matches!(b.next_frame().await, ServerFrame::Error { code: ErrorCode::InvalidContentToken, .. }));
}

#[tokio::test]
async fn disconnect_notice_after_grace_and_none_on_quick_rejoin() {
    let (_d, s) = setup().await;
    token(&s, "room", "t1", true).await;
    token(&s, "room", "t2", true).await;
    let (mut watcher, _) = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("room", "t1")]).await;
    assert_eq!(watcher.next_message().await, joined("room", "t1", true));
    let (leaver, _) = TestClient::connect_auth_with(&s.ws_url(), "s2", &[("room", "t2")]).await;
    assert_eq!(watcher.next_message().await, joined("room", "t2", true));
    // A reconnect with the same session and token rejoins silently.
    leaver.close().await;
    let (mut back, data) = TestClient::connect_auth_with(&s.ws_url(), "s2", &[("room", "t2")]).await;
    assert_eq!(data["contentTokens"], json!({"room": "t2"}), "rejoined after the reconnect");
    assert_eq!(s.post("content/token/message", json!({"channel": "room", "n": 1})).await["sent"], 2);
    assert_eq!(watcher.next_message().await["n"], 1, "no leave or join notice for the quick reconnect");
    assert_eq!(back.next_message().await["n"], 1);
    // Leaving for good: the notice comes after the grace period.
    back.close().await;
    assert_eq!(watcher.next_message().await, left("room", 2));
    assert_eq!(
        s.post("content/token/users", json!({"channel": "room"})).await,
        json!({"users": {"uids": [1], "authTokens": []}})
    );
}

#[tokio::test]
async fn anonymous_members_are_told_apart_by_session() {
    let (_d, s) = setup().await;
    token(&s, "lobby", "a", true).await;
    token(&s, "lobby", "b", true).await;
    let (mut a, _) = TestClient::connect_auth_with(&s.ws_url(), "anon-a", &[("lobby", "a")]).await;
    assert_eq!(a.next_message().await, joined("lobby", "a", true));
    let (b, _) = TestClient::connect_auth_with(&s.ws_url(), "anon-b", &[("lobby", "b")]).await;
    assert_eq!(a.next_message().await, joined("lobby", "b", true));
    assert_eq!(
        s.post("content/token/users", json!({"channel": "lobby"})).await,
        json!({"users": {"uids": [], "authTokens": ["anon-a", "anon-b"]}})
    );
    // Another anonymous user leaving is noticed although a is also uid 0 (spec 7.15).
    b.close().await;
    assert_eq!(a.next_message().await, left("lobby", 0));
}

#[tokio::test]
async fn kick_sends_the_disconnect_notice_at_once() {
    let (_d, s) = setup().await;
    token(&s, "room", "t1", true).await;
    token(&s, "room", "t2", true).await;
    let (mut w, _) = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("room", "t1")]).await;
    w.next_message().await;
    let (mut k, _) = TestClient::connect_auth_with(&s.ws_url(), "s2", &[("room", "t2")]).await;
    w.next_message().await;
    s.post("user/kick/2", json!({})).await;
    assert_eq!(k.expect_close().await, Some(4002));
    assert_eq!(w.next_message().await, left("room", 2));
}

/// A token in use does not expire; once its last socket left, it does after the TTL (the
/// clock of an unused token starts again when its sockets are gone).
#[tokio::test]
async fn a_token_expires_once_its_sockets_left() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("s1", Answer::valid(1, &[]));
    let s = TestServer::start_with(&d, &[("contentTokenTtlSecs", "1")]).await;
    token(&s, "room", "t", false).await;
    let (c, _) = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("room", "t")]).await;
    // Longer than the TTL, while joined: nothing to wait for, the token must just stay.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let h = s.get("health/check").await;
    assert_eq!(h["contentTokens"]["room"], json!({"tokens": 0, "sockets": 1}), "{h}");
    c.close().await;
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    while s.get("health/check").await["tokenChannels"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the token never expired after its socket left");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut again = TestClient::connect_auth(&s.ws_url(), "s1").await;
    again.join_token_channel("room", "t").await;
    assert!(matches!(
        again.next_frame().await,
        ServerFrame::Error { code: ErrorCode::InvalidContentToken, .. }
    ));
}

#[tokio::test]
async fn unused_tokens_expire() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("s1", Answer::valid(1, &[]));
    let s = TestServer::start_with(&d, &[("contentTokenTtlSecs", "1")]).await;
    token(&s, "old", "t", false).await;
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    while s.get("health/check").await["tokenChannels"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "token never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut c = TestClient::connect_auth(&s.ws_url(), "s1").await;
    c.join_token_channel("old", "t").await;
    assert!(matches!(c.next_frame().await, ServerFrame::Error { code: ErrorCode::InvalidContentToken, .. }));
    assert_eq!(
        s.post("content/token/message", json!({"channel": "old"})).await,
        json!({"error": "Invalid message"})
    );
}
