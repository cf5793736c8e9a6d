//! Channel names that are the key of another kind of stream (`*`, the broadcast's; `token:x`,
//! content-token channel x's) are refused (security review, issue 24 finding 8): on the Redis
//! engine a publish to channel `*` went to every socket as a broadcast and one to `token:x`
//! reached the members of content-token channel x; the memory engine kept them apart, so the
//! engines disagreed. Both engines now answer `Invalid channel name.` and deliver nothing, and a
//! channel of such a name in Drupal's authentication answer is not joined.

use drupal_push_tests::{Answer, TestClient, TestServer};
use serde_json::json;

/// Publishes `first` (refused) and then `sentinel` to the channel the client listens on; the
/// client's next message must be the sentinel.
#[tokio::test]
async fn reserved_stream_keys_are_not_channel_names() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("s1", Answer::valid(1, &["nodejs_user_1", "*", "token:chat"]));
    assert_eq!(
        s.post("content/token", json!({"channel": "chat", "token": "tk1", "notifyOnDisconnect": false}))
            .await,
        json!({"status": "success"})
    );
    let (mut a, data) = TestClient::connect_auth_with(&s.ws_url(), "s1", &[("chat", "tk1")]).await;
    assert_eq!(data["channels"], json!(["nodejs_user_1"]), "reserved names are not joined");
    assert_eq!(a.next_message().await["callback"], "clientJoinedTokenChannel");

    for channel in ["*", "token:chat", "token:"] {
        let refused = s.post("publish", json!({"channel": channel, "callback": "evil"})).await;
        assert_eq!(refused, json!({"status": "failed", "error": "Invalid channel name."}), "{channel}");
    }
    // What reaches the socket next is the sentinel on its token channel, then on a broadcast:
    // nothing of the refused publishes came before.
    let sentinel = json!({"channel": "chat", "callback": "sentinel"});
    assert_eq!(
        s.post("content/token/message", sentinel.clone()).await,
        json!({"status": "success", "sent": 1})
    );
    assert_eq!(a.next_message().await, sentinel);
    let broadcast = json!({"broadcast": true, "callback": "sentinel2"});
    assert_eq!(s.post("publish", broadcast.clone()).await, json!({"status": "success", "sent": 1}));
    assert_eq!(a.next_message().await, broadcast);
    // Other names keep working as in the original, whatever their characters.
    d.answer("s2", Answer::valid(2, &["chat-room.1"]));
    let mut b = TestClient::connect_auth(&s.ws_url(), "s2").await;
    let m = json!({"channel": "chat-room.1", "callback": "cb"});
    assert_eq!(s.post("publish", m.clone()).await, json!({"status": "success", "sent": 1}));
    assert_eq!(b.next_message().await, m);
}
