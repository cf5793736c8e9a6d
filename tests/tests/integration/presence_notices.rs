//! Exactly one `userOnline` and one `userOffline` per real transition, in order per user, under
//! load and behind a slow Drupal (issue 11, item 2). Counted by the fake Drupal after every
//! queued notice has been sent (`backendPendingNotices` back to 0 in `/status.json`).

use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer, wait_until_within};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// Users of the load tests: 2,000 as issue 11 asks, on the memory engine. On the Redis engine
/// (the suite's second pass) every arrival and departure is a Lua script round trip on a shared
/// 2-core machine, so the same checks run with 500 users there, within the same time limits.
fn users() -> u64 {
    if drupal_push_tests::redis::engine_is_redis() { 500 } else { 2000 }
}
/// Clients connecting or closing at the same time.
const PARALLEL: usize = 100;
const LONG: Duration = Duration::from_secs(120);

/// What each uid's notices were, in the order the fake Drupal recorded them (`+` online, `-`
/// offline).
fn notices_by_user(d: &FakeDrupal) -> HashMap<u64, String> {
    let mut by_user: HashMap<u64, String> = HashMap::new();
    for m in d.messages() {
        match m {
            BackendMessage::UserOnline { uid: Uid(u) } => by_user.entry(u).or_default().push('+'),
            BackendMessage::UserOffline { uid: Uid(u) } => by_user.entry(u).or_default().push('-'),
            BackendMessage::Authenticate(_) | BackendMessage::Forwarded(_) => {}
        }
    }
    by_user
}

fn count(d: &FakeDrupal, online: bool) -> usize {
    let (on, off) = d.notice_counts();
    if online { on } else { off }
}

/// Waits until the server has sent every notice it queued.
async fn notices_sent(s: &TestServer) {
    let deadline = tokio::time::Instant::now() + LONG;
    while s.status().await["backendPendingNotices"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "notices still pending: {}", s.status().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_count(d: &FakeDrupal, online: bool, n: usize) {
    let what = format!("{n} {}", if online { "userOnline" } else { "userOffline" });
    wait_until_within(LONG, &what, || count(d, online) >= n).await;
}

fn user_token(i: u64) -> String {
    format!("user-{i}")
}

async fn server_with_users(grace_ms: &str) -> (FakeDrupal, TestServer) {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    for i in 0..=users() {
        d.answer(&user_token(i), Answer::valid(1 + i, &[]));
    }
    // Every test client comes from 127.0.0.1; the per-address limits have their own tests.
    let s = TestServer::start_with(
        &d,
        &[("presenceGraceMs", grace_ms), ("connectionRatePerAddress", "0"), ("authRatePerAddress", "0")],
    )
    .await;
    (d, s)
}

/// Connects and authenticates users `0..users()`, `PARALLEL` at a time.
async fn connect_users(s: &TestServer) -> Vec<TestClient> {
    let url = s.ws_url();
    futures_util::stream::iter(0..users())
        .map(|i| {
            let url = url.clone();
            async move { TestClient::connect_auth(&url, &user_token(i)).await }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await
}

async fn close_all(clients: Vec<TestClient>) {
    futures_util::stream::iter(clients).for_each_concurrent(PARALLEL, TestClient::close).await;
}

#[tokio::test]
async fn users_back_within_the_grace_period_cause_no_notice() {
    let (d, s) = server_with_users("10000").await;
    let clients = connect_users(&s).await;
    wait_for_count(&d, true, users() as usize).await;
    // Every user drops and comes back (its auth is cached: no Drupal call).
    let url = s.ws_url();
    let back: Vec<TestClient> = futures_util::stream::iter(clients.into_iter().enumerate())
        .map(|(i, c)| {
            let url = url.clone();
            async move {
                c.close().await;
                TestClient::connect_auth(&url, &user_token(i as u64)).await
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    assert_eq!(back.len(), users() as usize);
    // A last user leaves after all the others came back: its grace period ends after theirs,
    // so once its userOffline is in, every other grace timer has fired too.
    TestClient::connect_auth(&url, &user_token(users())).await.close().await;
    let sentinel = Uid(1 + users());
    let sentinel_offline = BackendMessage::UserOffline { uid: sentinel };
    wait_until_within(LONG, "the sentinel's userOffline", || d.has_received(&sentinel_offline)).await;
    notices_sent(&s).await;
    assert_eq!(count(&d, false), 1, "only the sentinel went offline");
    assert_eq!(count(&d, true), users() as usize + 1, "one userOnline per user, the sentinel's too");
    assert!(notices_by_user(&d).values().all(|n| n == "+" || n == "+-"));
}

#[tokio::test]
async fn users_back_after_the_grace_period_cause_one_notice_per_transition() {
    let (d, s) = server_with_users("300").await;
    let clients = connect_users(&s).await;
    wait_for_count(&d, true, users() as usize).await;
    close_all(clients).await;
    wait_for_count(&d, false, users() as usize).await;
    let clients = connect_users(&s).await;
    wait_for_count(&d, true, 2 * users() as usize).await;
    close_all(clients).await;
    wait_for_count(&d, false, 2 * users() as usize).await;
    notices_sent(&s).await;
    let by_user = notices_by_user(&d);
    assert_eq!(by_user.len(), users() as usize);
    for (uid, notices) in by_user {
        assert_eq!(notices, "+-+-", "uid {uid}");
    }
}

#[tokio::test]
async fn an_offline_notice_never_overtakes_the_online_before_it() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    // Drupal takes a second over userOnline and answers userOffline at once: a notice sent
    // without waiting for the previous one would be recorded first.
    d.delay_notices(Duration::from_secs(1), Duration::ZERO);
    let users: Vec<u64> = (1..=20).collect();
    for u in &users {
        d.answer(&format!("u{u}"), Answer::valid(*u, &[]));
    }
    let s = TestServer::start(&d).await;
    for _round in 0..2 {
        let mut clients = Vec::new();
        for u in &users {
            clients.push(TestClient::connect_auth(&s.ws_url(), &format!("u{u}")).await);
        }
        // A kick skips the grace period: offline is decided right after online.
        for (u, c) in users.iter().zip(&mut clients) {
            s.get(&format!("user/kick/{u}")).await;
            assert_eq!(c.expect_close().await, Some(4002));
        }
    }
    wait_for_count(&d, false, 2 * users.len()).await;
    notices_sent(&s).await;
    let by_user = notices_by_user(&d);
    for u in &users {
        assert_eq!(by_user[u], "+-+-", "uid {u}: {:?}", d.messages());
    }
}
