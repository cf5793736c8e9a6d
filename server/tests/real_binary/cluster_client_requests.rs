//! Browser requests on several processes of the real `drupal-push` binary sharing one real
//! `redis-server` (PROTOCOL.md, "Client requests"): a publish to a client-writable channel goes
//! through the engine's publish path, so it reaches the channel's members on every node and
//! skips its sender on its own node, and each node counts its own deliveries in the ack; a
//! message for Drupal from any node reaches Drupal once with the sender's identity.

use drupal_push_protocol::{ClientFrame, ServerFrame};
use drupal_push_tests::client::Reply;
use drupal_push_tests::cluster::Cluster;
use drupal_push_tests::{Answer, TestClient};
use serde_json::json;
use std::path::Path;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_drupal-push"))
}

/// A ping answered next: nothing else was queued for the socket.
async fn nothing_queued(c: &mut TestClient) {
    c.send(&ClientFrame::Ping).await;
    assert_eq!(c.next_frame().await, ServerFrame::Pong);
}

#[tokio::test]
async fn a_publish_reaches_the_members_on_every_node_but_its_sender() {
    let settings = "clientWritableChannels = [\"chat_*\"]\nclientMessages = [\"chatMessage\"]";
    let c = Cluster::start(binary(), 2, settings).await;
    c.drupal.answer("s1", Answer::valid(1, &["chat_1"]));
    c.drupal.answer("s2", Answer::valid(2, &["chat_1"]));
    c.drupal.answer("s3", Answer::valid(3, &["chat_1"]));
    c.drupal.answer_message("chatMessage", Answer::Json(json!({"status": "saved"})));
    let (one, two) = (c.nodes[0].ws_url(), c.nodes[1].ws_url());
    let mut a = TestClient::connect_auth(&one, "s1").await;
    let mut m = TestClient::connect_auth(&one, "s3").await;
    let mut a2 = TestClient::connect_auth(&two, "s1").await; // a's session, on the other node
    let mut b = TestClient::connect_auth(&two, "s2").await;

    a.publish("chat_1", json!({"n": 1}), false, Some(1)).await;
    assert_eq!(a.next_reply().await, Reply::sent(1, 1), "the ack counts the node's own sockets: m");
    for member in [&mut m, &mut a2, &mut b] {
        assert_eq!(member.next_message().await, a.sent_by_me(json!({"n": 1}), 1));
    }

    b.publish("chat_1", json!({"n": 2}), false, Some(2)).await;
    assert_eq!(b.next_reply().await, Reply::sent(2, 1), "a2 on b's node; b skipped");
    for member in [&mut a, &mut m, &mut a2] {
        assert_eq!(member.next_message().await, b.sent_by_me(json!({"n": 2}), 2));
    }

    b.publish("chat_1", json!({"n": 3}), true, Some(3)).await;
    assert_eq!(b.next_message().await["n"], 3, "echoed on its own node");
    assert_eq!(b.next_reply().await, Reply::sent(3, 2));
    for member in [&mut a, &mut m, &mut a2] {
        assert_eq!(member.next_message().await["n"], 3);
    }
    for sender in [&mut a, &mut b] {
        nothing_queued(sender).await;
    }

    // A message for Drupal from either node reaches Drupal once, with the sender's identity.
    b.send_message(json!({"type": "chatMessage", "uid": 1, "text": "hi"}), Some(4)).await;
    assert_eq!(b.next_reply().await, Reply::Ack { id: 4, result: json!({"status": "saved"}) });
    let got = c.drupal.forwarded();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].uid.0, got[0].client_id.as_str()), (2, b.socket_id.as_str()));
    for member in [&mut a, &mut m, &mut a2] {
        nothing_queued(member).await;
    }
}
