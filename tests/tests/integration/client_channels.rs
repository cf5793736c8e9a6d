//! Client-writable channels (`publish` requests, `clientWritableChannels`) over real sockets:
//! a member's message reaches the other members with `senderUid` and `senderSocketId` set by the
//! server, not its own socket (only with `echo`), and not the other tabs of its session either
//! way; non-members, channels that do not match and malformed messages are refused; the rate
//! limit applies; the message is recorded like Drupal's, so a member that reconnects recovers it.
//! A publish may not carry the members pages act on as server or Drupal messages, and names
//! only callbacks the site allows (`clientPublishCallbacks`).
//! On several nodes (the Redis engine): server/tests/real_binary/cluster_client_requests.rs.

use drupal_push_protocol::ErrorCode;
use drupal_push_tests::client::{Positions, Reply, track};
use drupal_push_tests::{Answer, FakeDrupal, Setup, TestClient, TestServer};
use serde_json::json;

async fn setup(extra: &[(&str, &str)]) -> (FakeDrupal, TestServer) {
    Setup::new()
        .user("s1", Answer::valid(1, &["chat_1", "news"]))
        .user("s2", Answer::valid(2, &["chat_1"]))
        .user("s3", Answer::valid(3, &["chat_1", "chat_2"]))
        .user("s4", Answer::valid(4, &["chat_2", "news"]))
        .set("clientWritableChannels", "chat_*")
        .settings(extra)
        .start()
        .await
}

#[tokio::test]
async fn a_member_publishes_to_the_other_members_and_only_with_echo_to_itself() {
    let (d, s) = setup(&[]).await;
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut a2 = TestClient::connect_auth(&s.ws_url(), "s1").await; // another tab of a's session
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "s3").await;
    let mut outsider = TestClient::connect_auth(&s.ws_url(), "s4").await;

    let forged = json!({"text": "hi", "senderUid": 99, "senderSocketId": "x"});
    a.publish("chat_1", forged, false, Some(8)).await;
    // The fan-out ends before the ack is sent: a message to `a` would come first.
    assert_eq!(a.next_reply().await, Reply::sent(8, 3), "a2, b and c; not the sender");
    let expected = a.sent_by_me(json!({"text": "hi"}), 1);
    for member in [&mut a2, &mut b, &mut c] {
        let env = member.next_envelope().await;
        assert_eq!(env.channel.as_deref(), Some("chat_1"));
        assert_eq!(env.message, expected);
    }

    a.publish("chat_1", json!({"text": "me too"}), true, Some(9)).await;
    assert_eq!(a.next_message().await, a.sent_by_me(json!({"text": "me too"}), 1), "echoed");
    assert_eq!(a.next_reply().await, Reply::sent(9, 4));
    for member in [&mut a2, &mut b, &mut c] {
        assert_eq!(member.next_message().await["text"], "me too");
    }

    // Without an id: delivered, nothing answered.
    b.publish("chat_1", json!({"text": "quiet"}), false, None).await;
    for member in [&mut a, &mut a2, &mut c] {
        assert_eq!(member.next_message().await, b.sent_by_me(json!({"text": "quiet"}), 2));
    }
    b.publish("chat_1", json!({"text": "loud"}), false, Some(1)).await;
    assert_eq!(
        b.next_reply().await,
        Reply::sent(1, 3),
        "b heard neither its message nor an answer to the first"
    );

    for member in [&mut a, &mut a2, &mut c] {
        assert_eq!(member.next_message().await["text"], "loud");
    }
    // Drupal's own publishes still reach everyone, the sockets that published included.
    s.post("publish", json!({"channel": "chat_1", "text": "from Drupal"})).await;
    for member in [&mut a, &mut a2, &mut b, &mut c] {
        assert_eq!(member.next_message().await["text"], "from Drupal");
    }
    outsider.send(&drupal_push_protocol::ClientFrame::Ping).await;
    assert_eq!(outsider.next_frame().await, drupal_push_protocol::ServerFrame::Pong, "nothing reached it");
    assert_eq!(d.forwarded_calls(), 0, "publishes never go to Drupal");
}

#[tokio::test]
async fn non_members_other_channels_and_bad_messages_are_refused() {
    let (_d, s) = setup(&[]).await;
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    let mut anonymous = TestClient::connect(&s.ws_url()).await;
    anonymous.publish("chat_1", json!({}), false, Some(1)).await;
    let r = anonymous.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(1), ErrorCode::NotAuthenticated));

    for (channel, message, code) in [
        ("chat_2", json!({"text": "x"}), ErrorCode::NotAMember),
        ("chat_9", json!({"text": "x"}), ErrorCode::NotAMember),
        ("news", json!({"text": "x"}), ErrorCode::ChannelNotWritable),
        ("nodejs_user_1", json!({"text": "x"}), ErrorCode::ChannelNotWritable),
        ("chat_1", json!("text"), ErrorCode::BadFrame),
        ("chat_1", json!([1]), ErrorCode::BadFrame),
    ] {
        a.publish(channel, message.clone(), false, Some(5)).await;
        let r = a.next_reply().await;
        assert_eq!((r.id(), r.code()), (Some(5), code), "{channel} {message}: {r:?}");
    }
    a.publish("chat_1", json!({"text": "ok"}), false, Some(6)).await;
    assert_eq!(a.next_reply().await, Reply::sent(6, 1));
    assert_eq!(b.next_message().await["text"], "ok", "the refused ones never reached b");
}

#[tokio::test]
async fn publishes_share_the_sockets_rate_and_size_limits() {
    let settings = [
        ("clientRequestRatePerSocket", "0.001"),
        ("clientRequestBurstPerSocket", "2"),
        ("clientRequestMaxBytes", "1kb"),
    ];
    let (_d, s) = setup(&settings).await;
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    a.publish("chat_1", json!({"text": "x".repeat(2000)}), false, Some(1)).await;
    let r = a.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(1), ErrorCode::MessageTooLarge));
    a.publish("chat_1", json!({"n": 2}), false, Some(2)).await;
    assert_eq!(a.next_reply().await, Reply::sent(2, 1));
    a.publish("chat_1", json!({"n": 3}), false, Some(3)).await;
    let r = a.next_reply().await;
    assert_eq!((r.id(), r.code()), (Some(3), ErrorCode::RateLimited), "the burst of 2 is spent");
    assert_eq!(b.next_message().await["n"], 2, "only the accepted publish reached b");
    b.publish("chat_1", json!({"n": 4}), false, Some(4)).await;
    assert_eq!(b.next_reply().await, Reply::sent(4, 1), "b has its own budget");
    assert_eq!(a.next_message().await["n"], 4);
}

#[tokio::test]
async fn a_publish_is_recorded_and_a_reconnecting_member_recovers_it() {
    let (_d, s) = setup(&[]).await;
    let (mut b, ack) = TestClient::connect_at(&s.ws_url(), "s2", &[], None).await;
    let mut positions: Positions = ack.streams.clone();
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    a.publish("chat_1", json!({"n": 1}), false, Some(1)).await;
    assert_eq!(a.next_reply().await, Reply::sent(1, 1));
    let env = b.next_envelope().await;
    assert!(env.offset.is_some(), "recorded: {env:?}");
    track(&mut positions, &env);
    b.cut();
    a.publish("chat_1", json!({"n": 2}), false, Some(2)).await;
    assert_eq!(a.next_reply().await, Reply::sent(2, 0));
    s.post("publish", json!({"channel": "chat_1", "n": 3})).await;
    let (mut b, ack) = TestClient::connect_at(&s.ws_url(), "s2", &[], Some(&positions)).await;
    assert_eq!(ack.recovered.get("chat_1"), Some(&true), "{:?}", ack.recovered);
    let missed = b.next_envelope().await;
    assert_eq!(missed.message, a.sent_by_me(json!({"n": 2}), 1));
    assert_eq!(missed.offset, env.offset.map(|o| o + 1));
    assert_eq!(b.next_message().await["n"], 3);
}

/// Security review finding 5: a member's publish reached the other members with
/// `presenceNotification`, `contentChannelNotification`, another socket's `clientSocketId` or
/// any `callback` intact, and their pages' `runCallbacks` acted on them (the module's
/// `nodejsNotify` renders HTML). Now each is refused, the socket stays open, and nobody gets it;
/// an allowed callback and a plain data publish (which gets `callback: []`, so the module's
/// fallback to every callback is not taken) still pass.
#[tokio::test]
async fn a_publish_may_not_carry_server_members_or_callbacks_the_site_did_not_allow() {
    let (_d, s) = setup(&[("clientPublishCallbacks", "chat")]).await;
    let mut a = TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "s3").await;
    let forbidden = [
        (json!({"presenceNotification": {"uid": 9, "event": "online"}}), ErrorCode::ReservedMember),
        (
            json!({"channel": "chat_1", "contentChannelNotification": true, "data": {}}),
            ErrorCode::ReservedMember,
        ),
        (json!({"text": "x", "clientSocketId": b.socket_id}), ErrorCode::ReservedMember),
        (json!({"callback": "nodejsNotify", "data": {"body": "<img src=x>"}}), ErrorCode::CallbackNotAllowed),
        (json!({"callback": ["chat", "nodejsNodeAjax"]}), ErrorCode::CallbackNotAllowed),
        (json!({"callback": "clientAuthenticated"}), ErrorCode::CallbackNotAllowed),
    ];
    for (n, (message, code)) in forbidden.into_iter().enumerate() {
        let id = n as u64 + 1;
        a.publish("chat_1", message.clone(), true, Some(id)).await;
        let r = a.next_reply().await;
        assert_eq!((r.id(), r.code()), (Some(id), code), "{message}: {r:?}");
        if let Reply::Error(e) = &r {
            assert!(
                e.message.contains("clientPublishCallbacks") || e.message.contains("may not carry"),
                "{e:?}"
            );
        }
    }
    a.publish("chat_1", json!({"callback": "chat", "text": "allowed"}), false, Some(20)).await;
    assert_eq!(a.next_reply().await, Reply::sent(20, 2), "the socket stayed open");
    a.publish("chat_1", json!({"text": "plain"}), false, Some(21)).await;
    assert_eq!(a.next_reply().await, Reply::sent(21, 2));
    for member in [&mut b, &mut c] {
        // The first messages they get are the allowed ones: none of the refused reached them.
        let allowed = member.next_message().await;
        assert_eq!(allowed, a.sent_by_me(json!({"callback": "chat", "text": "allowed"}), 1));
        let plain = member.next_message().await;
        assert_eq!(plain, a.sent_by_me(json!({"text": "plain"}), 1));
        assert_eq!(plain["callback"], json!([]), "names no callback, so none runs");
    }
    // Drupal's own publishes are not checked: Drupal decides what its messages carry.
    s.post("publish", json!({"channel": "chat_1", "callback": "nodejsNotify", "clientSocketId": "z"})).await;
    assert_eq!(b.next_message().await["callback"], "nodejsNotify");
}
