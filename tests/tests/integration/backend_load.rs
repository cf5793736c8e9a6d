//! A slow Drupal under load (issue 11, item 1): the wait for a request slot is bounded by
//! `backend.queueLength`, not by a timer, so a Drupal that takes seconds per request still
//! authenticates everyone; connected clients keep receiving meanwhile; tabs of one session make
//! one Drupal call; a client that cannot even be queued is told to back off at once.
//!
//! The delays are the fake Drupal's; nothing here asserts how fast the server is.

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer, wait_until};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Generous limit for an authentication queued behind several waves of slow calls.
const LONG: Duration = Duration::from_secs(120);

/// Connects one client per token at once and waits until all are authenticated.
async fn authenticate_all(s: &TestServer, tokens: Vec<String>) -> Vec<TestClient> {
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let url = s.ws_url();
            tokio::spawn(async move {
                let mut c = TestClient::connect(&url).await;
                c.authenticate(&token, &[]).await;
                c.await_auth(LONG).await.unwrap_or_else(|code| panic!("{token} closed with {code:?}"));
                c
            })
        })
        .collect();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("client task"));
    }
    clients
}

/// Reads messages until `{"final": true}`; returns the `n` of every message before it.
async fn read_until_final(mut c: TestClient) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        let m = c.next_message().await;
        if m["final"] == true {
            return seen;
        }
        seen.push(m["n"].as_u64().expect("a numbered message"));
    }
}

#[tokio::test]
async fn a_5_s_drupal_authenticates_200_new_clients_while_50_connected_keep_receiving() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let slow = |uid| Answer::Slow(Duration::from_secs(5), Box::new(Answer::valid(uid, &["news"])));
    for i in 0..50 {
        d.answer(&format!("connected-{i}"), Answer::valid(1000 + i, &["news"]));
    }
    for i in 0..200 {
        d.answer(&format!("new-{i}"), slow(2000 + i));
    }
    // Default concurrency (64) and queue (5000); a request timeout of 8 s, above one call but
    // well below the 20 s the fourth wave waits for a slot: that wait is not bounded by it.
    let s = TestServer::start_with(&d, &[("backend.timeoutMs", "8000")]).await;
    let connected = authenticate_all(&s, (0..50).map(|i| format!("connected-{i}")).collect()).await;
    let readers: Vec<_> = connected.into_iter().map(|c| tokio::spawn(read_until_final(c))).collect();

    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (done, url, http) = (done.clone(), s.url("/nodejs/publish"), drupal_push_tests::http_client());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) {
                let sent: Value = http
                    .post(&url)
                    .header("NodejsServiceKey", SERVICE_KEY)
                    .json(&json!({"channel": "news", "n": n}))
                    .send()
                    .await
                    .expect("publish")
                    .json()
                    .await
                    .expect("publish answer");
                assert!(sent["sent"].as_u64().unwrap() >= 50, "{sent}");
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            n
        })
    };

    let newcomers = {
        let s_url = s.ws_url();
        tokio::spawn(async move {
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let url = s_url.clone();
                    tokio::spawn(async move {
                        let mut c = TestClient::connect(&url).await;
                        c.authenticate(&format!("new-{i}"), &[]).await;
                        c.await_auth(LONG)
                            .await
                            .unwrap_or_else(|code| panic!("new-{i} closed with {code:?}"));
                        c
                    })
                })
                .collect();
            let mut clients = Vec::new();
            for t in tasks {
                clients.push(t.await.expect("newcomer"));
            }
            clients
        })
    };
    // 64 calls in flight, the other 136 wait in the queue instead of being closed.
    wait_until("a full first wave", || d.auth_calls() == 50 + 64).await;
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    while s.status().await["backendQueuedAuthentications"] != 136 {
        assert!(tokio::time::Instant::now() < deadline, "136 queued: {}", s.status().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let newcomers = newcomers.await.expect("all 200 authenticated");
    done.store(true, Ordering::Relaxed);
    let published = publisher.await.expect("publisher");
    assert_eq!(s.post("publish", json!({"channel": "news", "final": true})).await["sent"], 250);
    for r in readers {
        let seen = r.await.expect("a connected client was disturbed");
        assert_eq!(seen, (0..published).collect::<Vec<_>>(), "every publish, in order");
    }
    for c in newcomers {
        read_until_final(c).await;
    }
    assert_eq!(d.auth_calls(), 250, "one call per token");
}

#[tokio::test]
async fn a_2_5_s_drupal_authenticates_500_clients_arriving_at_once() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    for i in 0..500 {
        let answer = Answer::valid(1 + i, &["c"]);
        d.answer(&format!("t{i}"), Answer::Slow(Duration::from_millis(2500), Box::new(answer)));
    }
    // Eight waves of 64: the last waits about 17.5 s for a slot, over the 8 s request timeout.
    let s = TestServer::start_with(&d, &[("backend.timeoutMs", "8000")]).await;
    let clients = authenticate_all(&s, (0..500).map(|i| format!("t{i}")).collect()).await;
    assert_eq!(clients.len(), 500);
    assert_eq!(s.post("publish", json!({"channel": "c", "final": true})).await["sent"], 500);
    assert_eq!(d.auth_calls(), 500);
}

#[tokio::test]
async fn tabs_of_one_session_share_one_drupal_call() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("session", Answer::Slow(Duration::from_secs(3), Box::new(Answer::valid(5, &["c"]))));
    let s = TestServer::start_with(&d, &[("backend.timeoutMs", "30000")]).await;
    let mut first = TestClient::connect(&s.ws_url()).await;
    first.authenticate("session", &[]).await;
    d.wait_for("the first call", |_| d.auth_calls() == 1).await;
    let mut tabs = Vec::new();
    for _ in 0..30 {
        let mut c = TestClient::connect(&s.ws_url()).await;
        c.authenticate("session", &[]).await;
        tabs.push(c);
    }
    // The tab whose call it was leaves; the others still get the answer.
    first.close().await;
    for c in &mut tabs {
        c.await_auth(LONG).await.expect("authenticated by the shared answer");
    }
    assert_eq!(d.auth_calls(), 1);
    assert_eq!(s.post("publish", json!({"channel": "c", "n": 1})).await["sent"], 30);
}

#[tokio::test]
async fn a_client_that_cannot_be_queued_backs_off_at_once() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    for t in ["a", "b", "c"] {
        d.answer(t, Answer::Slow(Duration::from_secs(5), Box::new(Answer::valid(1, &[]))));
    }
    let s = TestServer::start_with(
        &d,
        &[("backend.concurrency", "1"), ("backend.queueLength", "1"), ("backend.timeoutMs", "30000")],
    )
    .await;
    let mut a = TestClient::connect(&s.ws_url()).await;
    a.authenticate("a", &[]).await;
    d.wait_for("a's call", |_| d.auth_calls() == 1).await;
    let mut b = TestClient::connect(&s.ws_url()).await;
    b.authenticate("b", &[]).await;
    let deadline = tokio::time::Instant::now() + drupal_push_tests::WAIT;
    while s.status().await["backendQueuedAuthentications"] != 1 {
        assert!(tokio::time::Instant::now() < deadline, "b never queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("c", &[]).await;
    assert_eq!(c.expect_close().await, Some(4100));
    assert_eq!(d.auth_calls(), 1, "refused while a's call was still running, without asking Drupal");
    a.await_auth(LONG).await.expect("a authenticated");
    b.await_auth(LONG).await.expect("b authenticated after waiting its turn");
    assert_eq!(d.auth_calls(), 2);
}
