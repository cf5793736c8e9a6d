//! A client that stops reading is closed as a slow consumer (4101) without slowing the publisher
//! or the other subscribers, and nothing sent to the others is lost.

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_client_that_does_not_read_is_closed_and_others_get_everything() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("fast", Answer::valid(1, &["feed"]));
    d.answer("stuck", Answer::valid(2, &["feed"]));
    let s = TestServer::start_with(&d, &[("maxQueuedMessages", "64"), ("writeTimeoutMs", "10000")]).await;
    let mut fast = TestClient::connect_auth(&s.ws_url(), "fast").await;
    let mut stuck = TestClient::connect_auth(&s.ws_url(), "stuck").await;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 400 {
            seen.push(fast.next_message().await["i"].as_u64().unwrap());
        }
        seen
    });
    let blob = "x".repeat(32 * 1024);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..400u64 {
        let t = Instant::now();
        let r = s.post("publish", json!({"channel": "feed", "i": i, "blob": blob})).await;
        assert_eq!(r["status"], "success");
        slowest = slowest.max(t.elapsed());
    }
    let seen = tokio::time::timeout(drupal_push_tests::WAIT * 3, reader).await.unwrap().unwrap();
    assert_eq!(seen, (0..400).collect::<Vec<_>>(), "the reading client lost or reordered messages");
    // Had a publish waited for the stuck socket, it would have taken the 10 s write timeout.
    assert!(slowest < Duration::from_secs(5), "a publish waited for the stuck client: {slowest:?}");
    eprintln!("400 publishes of 32 KiB in {:?}, slowest {slowest:?}", started.elapsed());
    // The stuck client, once it reads, finds the slow-consumer close after what it got.
    assert_eq!(stuck.expect_close().await, Some(4101));
    assert_eq!(s.get("health/check").await["sockets"], 0);
}
