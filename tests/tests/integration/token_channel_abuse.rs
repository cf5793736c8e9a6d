//! A content-token channel is read only with its token (issue 24 finding 1): sockets that
//! pipeline bogus `join-token-channel` frames for a channel whose name they know receive none of
//! its messages while the member with the token gets every one, and joins are rate-limited per
//! socket (`tokenJoinRatePerSocket`, `tokenJoinBurstPerSocket`), for `join-token-channel` frames
//! and the `contentTokens` of `authenticate` alike.

use drupal_push_protocol::{ErrorCode, ServerFrame};
use drupal_push_tests::{Answer, Setup, TestClient};
use serde_json::json;

/// Joins in flight per attacker before it reads their answers.
const PIPELINE: usize = 100;

/// Sends `joins` bogus joins for `channel`, `PIPELINE` at a time, reading every answer; returns
/// how many channel messages reached the socket meanwhile.
async fn bogus_joins(mut c: TestClient, channel: &str, joins: usize) -> usize {
    let mut leaked = 0;
    let mut answered = 0;
    while answered < joins {
        let batch = PIPELINE.min(joins - answered);
        for i in 0..batch {
            c.join_token_channel(channel, &format!("guess-{answered}-{i}")).await;
        }
        let mut errors = 0;
        while errors < batch {
            match c.next_frame().await {
                ServerFrame::Error { code: ErrorCode::InvalidContentToken, .. } => errors += 1,
                ServerFrame::Error { code, message } => panic!("unexpected refusal {code:?}: {message}"),
                ServerFrame::Message(_) => leaked += 1,
                _ => {}
            }
        }
        answered += batch;
    }
    leaked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_joins_never_see_the_channel_and_the_member_gets_everything() {
    const ATTACKERS: usize = 4;
    const JOINS_EACH: usize = 5_000;
    const MESSAGES: u64 = 5_000;
    let mut setup = Setup::new().user("member", Answer::valid(1, &[])).set("tokenJoinRatePerSocket", "0");
    for i in 0..ATTACKERS {
        setup = setup.user(&format!("attacker-{i}"), Answer::valid(100 + i as u64, &[]));
    }
    let (_d, s) = setup.start().await;
    let body = json!({"channel": "secret", "token": "good", "notifyOnDisconnect": false});
    assert_eq!(s.post("content/token", body).await, json!({"status": "success"}));
    let (mut member, data) =
        TestClient::connect_auth_with(&s.ws_url(), "member", &[("secret", "good")]).await;
    assert_eq!(data["contentTokens"], json!({"secret": "good"}));
    assert_eq!(member.next_message().await["callback"], "clientJoinedTokenChannel");

    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        let c = TestClient::connect_auth(&s.ws_url(), &format!("attacker-{i}")).await;
        attackers.push(tokio::spawn(bogus_joins(c, "secret", JOINS_EACH)));
    }
    let received = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < MESSAGES as usize {
            let m = member.next_message().await;
            seen.push(m["data"].as_u64().expect("a numbered message"));
        }
        seen
    });
    for i in 0..MESSAGES {
        let body = json!({"channel": "secret", "callback": "cb", "data": i});
        assert_eq!(s.post("content/token/message", body).await["status"], "success");
    }
    let mut leaked = 0;
    for a in attackers {
        leaked += a.await.expect("attacker task");
    }
    assert_eq!(leaked, 0, "messages of the channel reached sockets with bogus tokens");
    let seen = received.await.expect("member task");
    assert_eq!(seen, (0..MESSAGES).collect::<Vec<_>>(), "the member gets every message, in order");
}

#[tokio::test]
async fn joins_over_the_per_socket_budget_are_refused_and_the_socket_stays() {
    let (_d, s) = Setup::new()
        .user("s1", Answer::valid(1, &[]))
        .settings(&[("tokenJoinRatePerSocket", "0.001"), ("tokenJoinBurstPerSocket", "2")])
        .start()
        .await;
    for (channel, token) in [("a", "ta"), ("b", "tb"), ("c", "tc"), ("d", "td")] {
        let body = json!({"channel": channel, "token": token, "notifyOnDisconnect": false});
        assert_eq!(s.post("content/token", body).await, json!({"status": "success"}));
    }
    // Three content tokens at authentication with a budget of two: the third is left out.
    let (mut c, data) =
        TestClient::connect_auth_with(&s.ws_url(), "s1", &[("a", "ta"), ("b", "tb"), ("c", "tc")]).await;
    assert_eq!(data["contentTokens"], json!({"a": "ta", "b": "tb"}));
    for _ in 0..2 {
        assert_eq!(c.next_message().await["callback"], "clientJoinedTokenChannel");
    }
    // A valid token over the budget is refused with rate-limited, and the socket stays open.
    c.join_token_channel("d", "td").await;
    match c.next_frame().await {
        ServerFrame::Error { code, message } => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(message.contains("\"d\"") && message.contains("per second"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.post("content/token/users", json!({"channel": "d"})).await,
        json!({"users": {"uids": [], "authTokens": []}})
    );
    let body = json!({"channel": "a", "callback": "cb", "data": "still here"});
    assert_eq!(s.post("content/token/message", body).await["sent"], 1);
    assert_eq!(c.next_message().await["data"], "still here");
    // The limit is per socket: another socket of the same session joins at once.
    let mut other = TestClient::connect_auth(&s.ws_url(), "s1").await;
    other.join_token_channel("d", "td").await;
    assert!(matches!(other.next_frame().await, ServerFrame::Joined { .. }), "a joined frame");
}
