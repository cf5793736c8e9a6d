//! Several processes of the real `drupal-push` binary on one real `redis-server` (the Redis
//! engine, issue 9): cross-node delivery in order and exactly once, cluster-wide presence with
//! exact counts of Drupal notices, the shared auth cache, kick and logout across nodes, a node
//! killed with SIGKILL, and Redis stopped and started again with and without its data.

use drupal_push_protocol::Uid;
use drupal_push_protocol::backend::BackendMessage;
use drupal_push_tests::client::{Positions, track};
use drupal_push_tests::cluster::Cluster;
use drupal_push_tests::{Answer, TestClient};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_drupal-push"))
}

/// Counts of `userOnline` and `userOffline` Drupal received for `uid`.
fn notices(c: &Cluster, uid: u64) -> (usize, usize) {
    let m = c.drupal.messages();
    let on = m.iter().filter(|m| **m == BackendMessage::UserOnline { uid: Uid(uid) }).count();
    let off = m.iter().filter(|m| **m == BackendMessage::UserOffline { uid: Uid(uid) }).count();
    (on, off)
}

async fn wait_offline(c: &Cluster, uid: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while notices(c, uid).1 == 0 {
        assert!(Instant::now() < deadline, "no userOffline for {uid} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next Drupal message carrying an `i` member (skipping content-token join notices).
async fn next_numbered(c: &mut TestClient) -> drupal_push_protocol::frames::Envelope {
    loop {
        let e = c.next_envelope().await;
        if e.message.get("i").is_some() {
            return e;
        }
        assert_eq!(e.message["callback"], "clientJoinedTokenChannel", "{}", e.message);
    }
}

/// Reads `n` messages (skipping content-token join notices), moving `positions` along;
/// returns their `i` members.
async fn read_ids(c: &mut TestClient, positions: &mut Positions, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < n {
        let e = c.next_envelope().await;
        track(positions, &e);
        if e.message["callback"] == "clientJoinedTokenChannel" {
            continue;
        }
        ids.push(e.message["i"].as_u64().unwrap_or_else(|| panic!("an i member: {}", e.message)));
    }
    ids
}

#[tokio::test]
async fn messages_posted_to_any_node_reach_every_node_in_order_exactly_once() {
    let c = Cluster::start(binary(), 3, "").await;
    c.drupal.answer("tok-a", Answer::valid(1, &["chat"]));
    c.drupal.answer("tok-b", Answer::valid(2, &["chat"]));
    c.drupal.answer("tok-c", Answer::valid(3, &[]));
    let (status, answer) = c.nodes[0].post("content/token", json!({"channel": "room", "token": "ct"})).await;
    assert_eq!((status, answer), (200, json!({"status": "success"})));
    let mut b = TestClient::connect_auth(&c.nodes[1].ws_url(), "tok-a").await;
    let mut cc = TestClient::connect_auth(&c.nodes[2].ws_url(), "tok-b").await;
    // A content token issued on node 0 is accepted by node 2.
    let (mut t, _) = TestClient::connect_auth_with(&c.nodes[2].ws_url(), "tok-c", &[("room", "ct")]).await;

    for i in 0..60u64 {
        let (status, answer) =
            c.nodes[(i % 3) as usize].post("publish", json!({"channel": "chat", "i": i})).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "success", "{answer}");
    }
    let mut pb = Positions::new();
    let mut pc = Positions::new();
    let expected: Vec<u64> = (0..60).collect();
    assert_eq!(read_ids(&mut b, &mut pb, 60).await, expected, "node 1: every message once, in order");
    assert_eq!(read_ids(&mut cc, &mut pc, 60).await, expected, "node 2: every message once, in order");
    assert_eq!(pb["chat"], pc["chat"], "one offset sequence for the channel across nodes");

    c.nodes[0].post("publish", json!({"broadcast": true, "i": 100})).await;
    for client in [&mut b, &mut cc, &mut t] {
        let e = next_numbered(client).await;
        assert_eq!((e.message["i"].as_u64(), e.stream_key()), (Some(100), Some("*")));
    }
    let (_, answer) = c.nodes[1].post("content/token/message", json!({"channel": "room", "i": 200})).await;
    assert_eq!(answer["status"], "success", "{answer}");
    let e = next_numbered(&mut t).await;
    assert_eq!(e.message["i"], 200);
    assert_eq!(e.channel.as_deref(), Some("room"));

    // Nothing more arrived anywhere: a marker published last is the next frame of each.
    c.nodes[2].post("publish", json!({"broadcast": true, "i": 300})).await;
    for client in [&mut b, &mut cc, &mut t] {
        assert_eq!(next_numbered(client).await.message["i"], 300, "no duplicate before the marker");
    }
    // Each node's socket count travels with its heartbeat (every third of nodeTimeoutMs).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = c.nodes[0].status().await;
        assert_eq!((status["nodes"].as_u64(), status["sockets"].as_u64()), (Some(3), Some(0)), "{status}");
        if status["clusterSockets"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster's sockets are counted: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn presence_is_counted_once_for_the_whole_cluster() {
    let c = Cluster::start(binary(), 2, "presenceGraceMs = 2000").await;
    // Drupal's presenceUids of user 5 name who is told about 5: user 7.
    c.drupal.answer("tab1", Answer::watched(5, &[], &[7]));
    c.drupal.answer("tab2", Answer::watched(5, &[], &[7]));
    c.drupal.answer("mover", Answer::valid(6, &[]));
    c.drupal.answer("sentinel", Answer::valid(99, &[]));
    c.drupal.answer("watcher", Answer::valid(7, &[]));

    // Two tabs of user 5 on two nodes: online once; the watcher on node 1 is told once.
    let mut w = TestClient::connect_auth(&c.nodes[1].ws_url(), "watcher").await;
    let t1 = TestClient::connect_auth(&c.nodes[0].ws_url(), "tab1").await;
    let t2 = TestClient::connect_auth(&c.nodes[1].ws_url(), "tab2").await;
    let m = w.next_message().await;
    assert_eq!(m, json!({"presenceNotification": {"event": "online", "uid": 5}}));

    // A user moving from node 0 to node 1 inside the grace period: no offline, no second online.
    let mover = TestClient::connect_auth(&c.nodes[0].ws_url(), "mover").await;
    mover.cut();
    let mover = TestClient::connect_auth(&c.nodes[1].ws_url(), "mover").await;

    t1.close().await;
    t2.close().await;
    mover.close().await;
    let sentinel = TestClient::connect_auth(&c.nodes[0].ws_url(), "sentinel").await;
    sentinel.close().await;
    wait_offline(&c, 5, Duration::from_secs(15)).await;
    wait_offline(&c, 6, Duration::from_secs(15)).await;
    // The sentinel left last on the same grace: once it is offline, every earlier decision is in.
    wait_offline(&c, 99, Duration::from_secs(15)).await;
    assert_eq!(notices(&c, 5), (1, 1), "two tabs on two nodes: one online, one offline");
    assert_eq!(notices(&c, 6), (1, 1), "a move inside the grace period is not a transition");
    assert_eq!(w.next_message().await, json!({"presenceNotification": {"event": "offline", "uid": 5}}));
}

#[tokio::test]
async fn the_auth_cache_is_shared_and_kick_and_logout_close_sockets_on_every_node() {
    let c = Cluster::start(binary(), 3, "").await;
    c.drupal.answer("kicked", Answer::valid(8, &[]));
    c.drupal.answer("leaver", Answer::valid(9, &[]));
    let _a = TestClient::connect_auth(&c.nodes[0].ws_url(), "kicked").await;
    let calls = c.drupal.auth_calls();
    // Another node authenticates the same session from the shared cache.
    let mut b = TestClient::connect_auth(&c.nodes[1].ws_url(), "kicked").await;
    assert_eq!(c.drupal.auth_calls(), calls, "a reconnect to another node uses the cached auth");
    let mut l = TestClient::connect_auth(&c.nodes[2].ws_url(), "leaver").await;

    let (_, answer) = c.nodes[0].post("user/kick/8", json!({})).await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert!(b.expect_close().await.is_some(), "node 1's socket of the kicked user is closed");
    let (_, answer) = c.nodes[1].post("user/logout/leaver", json!({})).await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert!(l.expect_close().await.is_some(), "node 2's socket of the session is closed");

    // Both caches are gone everywhere: the next authentications ask Drupal again.
    let calls = c.drupal.auth_calls();
    let _k = TestClient::connect_auth(&c.nodes[2].ws_url(), "kicked").await;
    let _l = TestClient::connect_auth(&c.nodes[0].ws_url(), "leaver").await;
    assert_eq!(c.drupal.auth_calls(), calls + 2);
}

#[tokio::test]
async fn a_killed_node_is_detected_and_its_clients_recover_on_another() {
    let mut c = Cluster::start(binary(), 2, "historySize = 200").await;
    c.drupal.answer("only-on-b", Answer::valid(11, &["news"]));
    c.drupal.answer("on-both", Answer::valid(12, &[]));
    c.drupal.answer("stays-in-room", Answer::valid(13, &[]));
    for (token, notify) in [("tk-b", true), ("tk-a", false)] {
        let body = json!({"channel": "room", "token": token, "notifyOnDisconnect": notify});
        assert_eq!(c.nodes[0].post("content/token", body).await.1, json!({"status": "success"}));
    }
    let (mut in_room, _) =
        TestClient::connect_auth_with(&c.nodes[0].ws_url(), "stays-in-room", &[("room", "tk-a")]).await;
    let (client, ack) =
        TestClient::connect_at(&c.nodes[1].ws_url(), "only-on-b", &[("room", "tk-b")], None).await;
    let mut positions = Positions::new();
    ack.update(&mut positions);
    let mut client = client;
    c.nodes[0].post("publish", json!({"channel": "news", "i": 0})).await;
    assert_eq!(read_ids(&mut client, &mut positions, 1).await, vec![0]);
    let _both_a = TestClient::connect_auth(&c.nodes[0].ws_url(), "on-both").await;
    let _both_b = TestClient::connect_auth(&c.nodes[1].ws_url(), "on-both").await;

    let killed = Instant::now();
    c.nodes[1].kill();
    drop(client);
    for i in 1..=20u64 {
        let (status, answer) = c.nodes[0].post("publish", json!({"channel": "news", "i": i})).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("success")), "{answer}");
    }
    // Documented bound: redis.nodeTimeoutMs (10 s) plus one heartbeat period (a third of it)
    // plus the grace period; asserted with a margin for a loaded machine.
    wait_offline(&c, 11, Duration::from_secs(30)).await;
    eprintln!("user of the killed node offline after {:?}", killed.elapsed());
    let status = c.nodes[0].status().await;
    assert_eq!(status["nodes"], 1, "the dead node is gone from the figures: {status}");
    assert_eq!(notices(&c, 11), (1, 1));
    assert_eq!(notices(&c, 12), (1, 0), "a user still connected elsewhere stays online");
    // Its socket left the content-token channel with the usual notice to the others.
    let mut notice = in_room.next_message().await;
    while notice["callback"] == "clientJoinedTokenChannel" {
        notice = in_room.next_message().await;
    }
    assert_eq!(
        notice,
        json!({"channel": "room", "contentChannelNotification": true, "data": {"uid": 11, "type": "disconnect"}})
    );

    let (mut client, ack) =
        TestClient::connect_at(&c.nodes[0].ws_url(), "only-on-b", &[], Some(&positions)).await;
    assert_eq!(ack.recovered.get("news"), Some(&true), "{:?}", ack.recovered);
    assert_eq!(read_ids(&mut client, &mut positions, 20).await, (1..=20).collect::<Vec<_>>());
    c.nodes[0].post("publish", json!({"channel": "news", "i": 21})).await;
    assert_eq!(read_ids(&mut client, &mut positions, 1).await, vec![21], "then live, nothing twice");
}

/// Redis goes away during traffic and comes back (`keep_data`: with its data, or empty).
async fn redis_outage(keep_data: bool) {
    let mut c = Cluster::start(binary(), 2, "historySize = 100").await;
    c.drupal.answer("stays", Answer::valid(21, &["news"]));
    c.drupal.answer("leaves", Answer::valid(22, &["news"]));
    c.drupal.answer("newcomer", Answer::valid(23, &[]));
    let mut stays = TestClient::connect_auth(&c.nodes[1].ws_url(), "stays").await;
    let (leaves, ack) = TestClient::connect_at(&c.nodes[1].ws_url(), "leaves", &[], None).await;
    let mut positions = Positions::new();
    ack.update(&mut positions);
    let mut leaves = leaves;
    c.nodes[0].post("publish", json!({"channel": "news", "i": 0})).await;
    assert_eq!(read_ids(&mut leaves, &mut positions, 1).await, vec![0]);
    assert_eq!(stays.next_message().await["i"], 0);
    leaves.cut();
    c.nodes[0].post("publish", json!({"channel": "news", "i": 1})).await;
    assert_eq!(stays.next_message().await["i"], 1);

    c.redis.stop(keep_data);
    // A publish answers a JSON error quickly; health/check answers from local figures.
    let started = Instant::now();
    let (status, answer) = c.nodes[0].post("publish", json!({"channel": "news", "i": 2})).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "a JSON error: {answer}");
    assert!(took < Duration::from_secs(4), "the error came after {took:?}");
    let (status, health) = c.nodes[1].get("health/check").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["sockets"], 1, "{health}");
    assert!(health["engineError"].is_string(), "{health}");
    let ready = reqwest::get(c.nodes[0].url("/readyz")).await.expect("readyz").status().as_u16();
    assert_eq!(ready, 503, "not ready while Redis is down");
    // A new authentication needing shared state gets the back-off close code.
    let mut n = TestClient::connect(&c.nodes[0].ws_url()).await;
    n.authenticate("newcomer", &[]).await;
    assert_eq!(n.await_auth(Duration::from_secs(10)).await, Err(Some(4100)));

    c.redis.restart().await;
    for node in &c.nodes {
        node.wait_ready().await;
    }
    // The connected socket was never dropped and gets live messages again.
    let (status, answer) = c.nodes[0].post("publish", json!({"channel": "news", "i": 3})).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("success")), "{answer}");
    assert_eq!(stays.next_message().await["i"], 3, "the socket that stayed gets live messages");

    let (mut back, ack) = TestClient::connect_at(&c.nodes[0].ws_url(), "leaves", &[], Some(&positions)).await;
    if keep_data {
        assert_eq!(ack.recovered.get("news"), Some(&true), "{:?}", ack.recovered);
        assert_eq!(read_ids(&mut back, &mut positions, 2).await, vec![1, 3]);
    } else {
        assert_eq!(
            ack.recovered.get("news"),
            Some(&false),
            "a Redis that lost its data: {:?}",
            ack.recovered
        );
        ack.update(&mut positions);
        c.nodes[1].post("publish", json!({"channel": "news", "i": 4})).await;
        assert_eq!(read_ids(&mut back, &mut positions, 1).await, vec![4], "no partial replay, then live");
        // The nodes registered their sockets again: the cluster counts them.
        let mut last;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            last = c.nodes[0].status().await;
            if last["clusterSockets"] == 2 && last["onlineUsers"] == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "sockets registered again after an empty Redis: {last}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn redis_restarted_with_its_data_loses_nothing() {
    redis_outage(true).await;
}

#[tokio::test]
async fn redis_restarted_empty_is_reported_as_lost_history() {
    redis_outage(false).await;
}

#[tokio::test]
async fn a_node_started_while_redis_is_down_waits_then_serves() {
    let mut c = Cluster::start(binary(), 1, "").await;
    c.redis.stop(false);
    c.nodes[0].restart();
    let status = c.nodes[0].status().await;
    assert_eq!(status["engineReady"], false, "{status}");
    let ready = reqwest::get(c.nodes[0].url("/readyz")).await.expect("readyz").status().as_u16();
    assert_eq!(ready, 503);
    c.redis.restart().await;
    c.nodes[0].wait_ready().await;
    c.drupal.answer("late", Answer::valid(31, &["news"]));
    let mut client = TestClient::connect_auth(&c.nodes[0].ws_url(), "late").await;
    let (_, answer) = c.nodes[0].post("publish", json!({"channel": "news", "i": 1})).await;
    assert_eq!(answer["sent"], 1, "{answer}");
    assert_eq!(client.next_message().await["i"], 1);
}
