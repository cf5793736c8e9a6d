//! Presence: online/offline notices to watchers and to Drupal, the grace period, no flapping on
//! quick reconnects, the presence-list route, kick and logout.

use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::json;

fn presence(uid: u64, event: &str) -> serde_json::Value {
    json!({"presenceNotification": {"uid": uid, "event": event}})
}

async fn setup() -> (FakeDrupal, TestServer, TestClient) {
    // 7 watches; 5 and 6 let 7 see their presence.
    let (d, s) = Setup::new()
        .user("w7", Answer::valid(7, &["nodejs_user_7"]))
        .user("u5", Answer::watched(5, &["nodejs_user_5"], &[7]))
        .user("u6", Answer::watched(6, &["nodejs_user_6"], &[7]))
        .start()
        .await;
    let w = TestClient::connect_auth(&s.ws_url(), "w7").await;
    (d, s, w)
}

fn is(m: &BackendMessage, online: bool, uid: u64) -> bool {
    match m {
        BackendMessage::UserOnline { uid: u } => online && *u == Uid(uid),
        BackendMessage::UserOffline { uid: u } => !online && *u == Uid(uid),
        _ => false,
    }
}

#[tokio::test]
async fn online_then_offline_after_the_grace_period() {
    let (d, s, mut w) = setup().await;
    let u = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    d.wait_for("userOnline 5", |m| is(m, true, 5)).await;
    let closed_at = std::time::Instant::now();
    u.close().await;
    assert_eq!(w.next_message().await, presence(5, "offline"));
    assert!(
        closed_at.elapsed() >= std::time::Duration::from_millis(300),
        "offline came before the grace period"
    );
    d.wait_for("userOffline 5", |m| is(m, false, 5)).await;
    assert_eq!(s.get("health/check").await["onlineUsers"], 1);
}

#[tokio::test]
async fn a_quick_reconnect_sends_neither_offline_nor_online() {
    let (d, s, mut w) = setup().await;
    let u = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    u.close().await;
    let _u = TestClient::connect_auth(&s.ws_url(), "u5").await;
    // 6 comes and goes after 5's reconnect: its offline notice is due after 5's grace ran out,
    // so anything sent about 5 would arrive before it.
    let v = TestClient::connect_auth(&s.ws_url(), "u6").await;
    assert_eq!(w.next_message().await, presence(6, "online"));
    v.close().await;
    assert_eq!(w.next_message().await, presence(6, "offline"));
    d.wait_for("userOffline 6", |m| is(m, false, 6)).await;
    let about_5: Vec<_> = d.messages().into_iter().filter(|m| is(m, true, 5) || is(m, false, 5)).collect();
    assert_eq!(about_5.len(), 1, "one userOnline for 5 and nothing else: {about_5:?}");
}

#[tokio::test]
async fn second_tab_does_not_announce_and_last_tab_decides_offline() {
    let (_d, s, mut w) = setup().await;
    let t1 = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    let t2 = TestClient::connect_auth(&s.ws_url(), "u5").await;
    t1.close().await;
    let v = TestClient::connect_auth(&s.ws_url(), "u6").await;
    assert_eq!(w.next_message().await, presence(6, "online"), "no second online and no offline for 5");
    v.close().await;
    assert_eq!(w.next_message().await, presence(6, "offline"));
    t2.close().await;
    assert_eq!(w.next_message().await, presence(5, "offline"));
}

#[tokio::test]
async fn presence_list_route_changes_who_is_told() {
    let (_d, s, mut w) = setup().await;
    // 5 stops letting 7 see it: 7 hears nothing about 5 any more.
    let u = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    assert_eq!(s.get("user/presence-list/5/8,9").await, json!({"status": "success"}));
    u.close().await;
    let v = TestClient::connect_auth(&s.ws_url(), "u6").await;
    assert_eq!(w.next_message().await, presence(6, "online"));
    v.close().await;
    assert_eq!(w.next_message().await, presence(6, "offline"));
}

#[tokio::test]
async fn kick_closes_every_socket_and_reports_offline_at_once() {
    let (d, s, mut w) = setup().await;
    let mut t1 = TestClient::connect_auth(&s.ws_url(), "u5").await;
    let mut t2 = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    assert_eq!(s.post("user/kick/5", json!({})).await, json!({"status": "success"}));
    assert_eq!(t1.expect_close().await, Some(4002));
    assert_eq!(t2.expect_close().await, Some(4002));
    assert_eq!(w.next_message().await, presence(5, "offline"));
    d.wait_for("userOffline 5", |m| is(m, false, 5)).await;
    assert_eq!(s.post("publish", json!({"channel": "nodejs_user_5"})).await["sent"], 0);
    // The cached answer is gone: the next connection asks Drupal again.
    let calls = d.auth_calls();
    let _again = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(d.auth_calls(), calls + 1);
}

#[tokio::test]
async fn logout_closes_that_sessions_sockets_only() {
    let (d, s, mut w) = setup().await;
    d.answer("u5-other-browser", Answer::watched(5, &["nodejs_user_5"], &[7]));
    let mut mine = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(w.next_message().await, presence(5, "online"));
    let mut other = TestClient::connect_auth(&s.ws_url(), "u5-other-browser").await;
    assert_eq!(s.get("user/logout/u5").await, json!({"status": "success"}));
    assert_eq!(mine.expect_close().await, Some(4003));
    assert_eq!(s.post("publish", json!({"channel": "nodejs_user_5", "n": 1})).await["sent"], 1);
    assert_eq!(other.next_message().await["n"], 1);
    let calls = d.auth_calls();
    let _back = TestClient::connect_auth(&s.ws_url(), "u5").await;
    assert_eq!(d.auth_calls(), calls + 1, "the logged-out token's cached answer was dropped");
}

#[tokio::test]
async fn anonymous_users_have_no_presence() {
    let (d, s, mut w) = setup().await;
    d.answer("anon", Answer::watched(0, &["public"], &[7]));
    let a = TestClient::connect_auth(&s.ws_url(), "anon").await;
    a.close().await;
    let v = TestClient::connect_auth(&s.ws_url(), "u6").await;
    assert_eq!(w.next_message().await, presence(6, "online"));
    v.close().await;
    assert_eq!(w.next_message().await, presence(6, "offline"));
    d.wait_for("userOffline 6", |m| is(m, false, 6)).await;
    assert!(!d.messages().iter().any(|m| is(m, true, 0) || is(m, false, 0)));
}
