//! History and recovery over real sockets: a client whose connection was cut comes back with
//! its positions and gets exactly the messages it missed, in order, once, then live ones; when
//! that is impossible (a gap beyond the history, an expired history, a restarted server,
//! history off) it is told so per stream, with nothing replayed for that stream.

use drupal_push_protocol::frames::Envelope;
use drupal_push_tests::client::{Positions, track};
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

fn setup_of(extra: &[(&str, &str)]) -> Setup {
    Setup::new().user("u1", Answer::valid(1, &["news"])).settings(extra)
}

async fn setup(extra: &[(&str, &str)]) -> (FakeDrupal, TestServer) {
    setup_of(extra).start().await
}

/// Connects `u1` for the first time; returns the client and its start positions.
async fn first_connect(s: &TestServer) -> (TestClient, Positions) {
    let (c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], None).await;
    assert!(ack.recovered.is_empty());
    (c, ack.streams)
}

/// Reads `n` messages, tracking positions; returns their envelopes.
async fn read(c: &mut TestClient, positions: &mut Positions, n: usize) -> Vec<Envelope> {
    let mut got = Vec::new();
    for _ in 0..n {
        let env = c.next_envelope().await;
        track(positions, &env);
        got.push(env);
    }
    got
}

fn ids(envelopes: &[Envelope], stream: &str) -> Vec<u64> {
    envelopes
        .iter()
        .filter(|e| e.stream_key() == Some(stream))
        .map(|e| e.message["i"].as_u64().expect("i"))
        .collect()
}

#[tokio::test]
async fn a_cut_client_gets_exactly_what_it_missed_in_order_then_live_messages() {
    let (_d, s) = setup(&[("historySize", "200")]).await;
    let (mut c, mut positions) = first_connect(&s).await;
    s.post("publish", json!({"channel": "news", "i": 1000})).await;
    read(&mut c, &mut positions, 1).await;
    c.cut();
    for i in 0..100u64 {
        let body =
            if i % 2 == 0 { json!({"channel": "news", "i": i}) } else { json!({"broadcast": true, "i": i}) };
        s.post("publish", body).await;
    }
    let (mut c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered, BTreeMap::from([("*".into(), true), ("news".into(), true)]));
    assert!(ack.streams.is_empty(), "recovered streams keep the client's positions");
    let missed = read(&mut c, &mut positions, 100).await;
    assert_eq!(ids(&missed, "news"), (0..100).step_by(2).collect::<Vec<_>>());
    assert_eq!(ids(&missed, "*"), (1..100).step_by(2).collect::<Vec<_>>());
    s.post("publish", json!({"channel": "news", "i": 2000})).await;
    let live = c.next_envelope().await;
    assert_eq!(live.message["i"], 2000, "then live messages, nothing twice");
    assert_eq!(live.offset, Some(positions["news"].offset + 1));
}

#[tokio::test]
async fn publishes_racing_the_reconnect_are_neither_lost_nor_doubled() {
    let (_d, s) = setup(&[("historySize", "1000")]).await;
    let (c, positions) = first_connect(&s).await;
    c.cut();
    let start = positions["news"].offset;
    let url = s.url("/nodejs/publish");
    let published = Arc::new(AtomicU64::new(0));
    let count = published.clone();
    let publisher = tokio::spawn(async move {
        let http = drupal_push_tests::http_client();
        for i in 0..300u64 {
            http.post(&url)
                .header("NodejsServiceKey", SERVICE_KEY)
                .body(json!({"channel": "news", "i": i}).to_string())
                .send()
                .await
                .expect("publish");
            count.fetch_add(1, Relaxed);
        }
    });
    // Reconnect while the publisher is busy: some messages are replayed, the rest come live.
    drupal_push_tests::wait_until("a third of the messages published", || published.load(Relaxed) >= 100)
        .await;
    let mut positions = positions;
    let (mut c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered.get("news"), Some(&true));
    let got = read(&mut c, &mut positions, 300).await;
    publisher.await.unwrap();
    assert_eq!(ids(&got, "news"), (0..300).collect::<Vec<_>>(), "every message once, in order");
    let offsets: Vec<u64> = got.iter().map(|e| e.offset.unwrap()).collect();
    assert_eq!(offsets, (start + 1..=start + 300).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_gap_beyond_the_history_size_is_reported_for_that_stream_only() {
    let (_d, s) = setup(&[("historySize", "5")]).await;
    let (c, mut positions) = first_connect(&s).await;
    c.cut();
    for i in 0..10u64 {
        s.post("publish", json!({"channel": "news", "i": i})).await;
    }
    s.post("publish", json!({"broadcast": true, "i": 99})).await;
    let (mut c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered, BTreeMap::from([("*".into(), true), ("news".into(), false)]));
    assert_eq!(ack.streams["news"].offset, positions["news"].offset + 10, "start again at the top");
    ack.update(&mut positions);
    let replayed = c.next_envelope().await;
    assert_eq!((replayed.stream_key(), replayed.message["i"].as_u64()), (Some("*"), Some(99)));
    s.post("publish", json!({"channel": "news", "i": 10})).await;
    let next = c.next_envelope().await;
    assert_eq!(next.message["i"], 10, "no partial replay of news: the next message is live");
}

#[tokio::test]
async fn an_expired_history_is_not_recovered() {
    let (_d, s) = setup(&[("historyTtlSecs", "1")]).await;
    let (c, positions) = first_connect(&s).await;
    c.cut();
    s.post("publish", json!({"channel": "news", "i": 1})).await;
    // The history window is one second: come back after it.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (_c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered.get("news"), Some(&false));
}

#[tokio::test]
async fn a_restarted_server_cannot_recover_anything() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("u1", Answer::valid(1, &["news"]));
    let mut s1 = TestServer::start(&d).await;
    let (c, positions) = first_connect(&s1).await;
    c.cut();
    s1.shutdown().await.unwrap();
    let s2 = TestServer::start(&d).await;
    let (_c, ack) = TestClient::connect_at(&s2.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered, BTreeMap::from([("*".into(), false), ("news".into(), false)]));
    assert_ne!(ack.streams["news"].epoch, positions["news"].epoch, "a new epoch");
}

#[tokio::test]
async fn with_history_off_nothing_is_recorded_or_replayed() {
    let (_d, s) = setup(&[("historySize", "0")]).await;
    let (c, positions) = first_connect(&s).await;
    assert!(positions.is_empty(), "no positions without history");
    c.cut();
    s.post("publish", json!({"channel": "news", "i": 1})).await;
    let made_up = Positions::from([(
        "news".to_string(),
        drupal_push_protocol::frames::Position { offset: 0, epoch: "e".into() },
    )]);
    let (mut c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&made_up)).await;
    assert_eq!(ack.recovered, BTreeMap::from([("news".into(), false)]));
    s.post("publish", json!({"channel": "news", "i": 2})).await;
    let env = c.next_envelope().await;
    assert_eq!((env.message["i"].as_u64(), env.offset), (Some(2), None), "live only, without a position");
}

#[tokio::test]
async fn a_channel_joined_later_is_recovered_too() {
    let (d, s) = setup(&[]).await;
    d.answer("u2", Answer::valid(2, &[]));
    let (mut c, mut positions) = first_connect(&s).await;
    assert_eq!(s.post("user/channel/add/extra/1", json!({})).await["status"], "success");
    match c.next_frame().await {
        drupal_push_protocol::ServerFrame::Joined { stream, offset, epoch } => {
            assert_eq!(stream, "extra");
            positions.insert(stream, drupal_push_protocol::frames::Position { offset, epoch });
        }
        other => panic!("expected joined, got {other:?}"),
    }
    c.cut();
    s.post("publish", json!({"channel": "extra", "i": 7})).await;
    let (mut c, ack) = TestClient::connect_at(&s.ws_url(), "u1", &[], Some(&positions)).await;
    assert_eq!(ack.recovered.get("extra"), Some(&true), "the cached record lists the channel");
    assert_eq!(c.next_message().await["i"], 7);
}

#[tokio::test]
async fn the_history_memory_cap_holds_over_ten_thousand_streams() {
    // historyMaxBytes is the memory engine's (Redis's memory is bounded by its maxmemory): this
    // test runs on the memory engine in both passes.
    let cap = 1024 * 1024;
    let (_d, s) = setup_of(&[("historyMaxBytes", "1mb")]).memory_engine().start().await;
    let blob = "x".repeat(300);
    let url = s.url("/nodejs/publish");
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let (url, blob) = (url.clone(), blob.clone());
        tasks.push(tokio::spawn(async move {
            let http = drupal_push_tests::http_client();
            for i in (worker..10_000).step_by(8) {
                let body = json!({"channel": format!("c{i}"), "blob": blob});
                http.post(&url)
                    .header("NodejsServiceKey", SERVICE_KEY)
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let h = s.get("health/check").await;
    let held = h["historyBytes"].as_u64().unwrap();
    assert!(held <= cap, "history holds {held} bytes, over the {cap}-byte cap");
    assert!(held > cap / 2, "the cap is used, not emptied: {held}");
}

#[tokio::test]
async fn a_reconnecting_watcher_learns_who_is_online_now() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("w", Answer::watched(7, &[], &[]));
    d.answer("u5", Answer::watched(5, &[], &[7]));
    d.answer("u9", Answer::watched(9, &[], &[7]));
    let s = TestServer::start_with(&d, &[("presenceGraceMs", "100")]).await;
    let (w, ack) = TestClient::connect_at(&s.ws_url(), "w", &[], None).await;
    assert_eq!(ack.online, None, "a first connection gets no presence picture");
    let positions = ack.streams;
    let u5 = TestClient::connect_auth(&s.ws_url(), "u5").await;
    w.cut();
    u5.close().await;
    let _u9 = TestClient::connect_auth(&s.ws_url(), "u9").await;
    d.wait_for(
        "userOffline 5",
        |m| matches!(m, drupal_push_protocol::backend::BackendMessage::UserOffline { uid } if uid.0 == 5),
    )
    .await;
    let (_w, ack) = TestClient::connect_at(&s.ws_url(), "w", &[], Some(&positions)).await;
    assert_eq!(
        ack.online,
        Some(vec![drupal_push_protocol::Uid(9)]),
        "5 went offline, 9 came online meanwhile"
    );
}
