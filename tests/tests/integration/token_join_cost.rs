//! What a join with a content token costs when its channel holds many tokens (security review
//! finding 4): a wrong token is answered without reading the channel's other tokens, so bogus
//! joins on a channel with 20,000 tokens cannot stall the engine. On both engines the tokens
//! are untouched and a right one still joins; on Redis the commands the join script ran are
//! counted (`INFO commandstats`, which counts commands run by scripts): only lookups of one
//! field or of the few expired tokens, never a read of the whole channel. That is the
//! structural form of "the cost does not grow with the channel": a script costs the sum of its
//! commands, and each of those costs O(1) or O(log n + at most 64). Timing is not asserted (a
//! 2-core CI machine makes it flaky); the heartbeat, which also runs scripts, is set far apart
//! so that nothing but the joins runs while they are counted.

use drupal_push_protocol::{ErrorCode, ServerFrame};
use drupal_push_tests::{Answer, Setup, TestServer};
use futures_util::future::join_all;
use serde_json::json;

const TOKENS: usize = 20_000;
const BOGUS_JOINS: u64 = 50;

async fn token(s: &TestServer, channel: &str, token: String) {
    let body = json!({"channel": channel, "token": token, "notifyOnDisconnect": false});
    assert_eq!(s.post("content/token", body).await, json!({"status": "success"}));
}

/// Commands whose cost does not depend on how many tokens a channel holds (one field, one
/// member, a counter, or a range bounded by LIMIT).
const BOUNDED: &[&str] = &[
    "hget",
    "hset",
    "hdel",
    "hexists",
    "hincrby",
    "hlen",
    "zrangebyscore",
    "zrem",
    "zadd",
    "zscore",
    "incr",
    "decr",
    "sadd",
    "srem",
    "sismember",
];

#[tokio::test]
async fn a_wrong_token_does_not_read_a_channel_of_20000_tokens() {
    let (_d, s) =
        // Joins per socket are rate-limited (finding 1); this test measures what each one costs.
        Setup::new()
            .user("s1", Answer::valid(1, &[]))
            .set("redis.nodeTimeoutMs", "600000")
            .set("tokenJoinRatePerSocket", "0")
            .start()
            .await;
    for chunk in 0..TOKENS / 100 {
        join_all((0..100).map(|i| token(&s, "big", format!("t{}", chunk * 100 + i)))).await;
    }
    let mut a = drupal_push_tests::TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut bogus_join = async |token: String| {
        a.join_token_channel("big", &token).await;
        match a.next_frame().await {
            ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::InvalidContentToken),
            other => panic!("{other:?}"),
        }
    };
    // The first join loads the script into Redis; the counting starts after it.
    bogus_join("warm-up".into()).await;
    if let Some(r) = &s.redis {
        assert_eq!(r.cli(&["CONFIG", "RESETSTAT"]).as_deref(), Some("OK"));
    }
    for i in 0..BOGUS_JOINS {
        bogus_join(format!("wrong{i}")).await;
    }
    if let Some(r) = &s.redis {
        let calls = r.command_calls();
        assert_eq!(calls.get("evalsha"), Some(&BOGUS_JOINS), "one script a join: {calls:?}");
        for (command, n) in &calls {
            if matches!(command.as_str(), "evalsha" | "config|resetstat" | "config" | "info") {
                continue;
            }
            assert!(BOUNDED.contains(&command.as_str()), "a join ran `{command}` ({n} times): {calls:?}");
            assert!(*n <= 3 * BOGUS_JOINS, "a join ran `{command}` {n} times in {BOGUS_JOINS} joins");
        }
        let (hash, expiry) = ("drupal-push:t:big", "drupal-push:tx:big");
        assert_eq!(r.cli(&["HLEN", hash]), Some(TOKENS.to_string()), "the tokens are all there");
        assert_eq!(r.cli(&["ZCARD", expiry]), Some(TOKENS.to_string()), "and all wait to expire");
    }
    let h = s.get("health/check").await;
    assert_eq!(h["contentTokens"]["big"], json!({"tokens": TOKENS, "sockets": 0}), "{h}");
    a.join_token_channel("big", "t12345").await;
    assert_eq!(a.next_message().await["callback"], "clientJoinedTokenChannel");
    let h = s.get("health/check").await;
    assert_eq!(h["contentTokens"]["big"], json!({"tokens": TOKENS - 1, "sockets": 1}), "{h}");
}

/// Expired tokens leave a little at a time: one join takes out at most 64 of them (the
/// heartbeat's sweep, set far apart here, takes the rest), so a join's cost stays bounded even
/// right after a whole channel expired. Redis's own keys are read, so on Redis in both passes.
#[tokio::test]
async fn a_join_expires_at_most_64_tokens() {
    let (_d, s) = Setup::new()
        .redis_engine()
        .user("s1", Answer::valid(1, &[]))
        .settings(&[("contentTokenTtlSecs", "2"), ("redis.nodeTimeoutMs", "600000")])
        .start()
        .await;
    let r = s.redis.as_ref().expect("on Redis");
    for chunk in 0..5 {
        join_all((0..100).map(|i| token(&s, "soon", format!("t{}", chunk * 100 + i)))).await;
    }
    let hash = "drupal-push:t:soon";
    let count = |key: &str, command: &str| -> i64 {
        r.cli(&[command, key]).and_then(|n| n.parse().ok()).unwrap_or(-1)
    };
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let all_expired = now_ms() + 2000;
    drupal_push_tests::wait_until("every token expired", || now_ms() > all_expired).await;
    let mut a = drupal_push_tests::TestClient::connect_auth(&s.ws_url(), "s1").await;
    let mut before = count(hash, "HLEN");
    assert!(before > 64, "{before} tokens are left to expire");
    while before > 0 {
        a.join_token_channel("soon", "wrong").await;
        assert!(matches!(
            a.next_frame().await,
            ServerFrame::Error { code: ErrorCode::InvalidContentToken, .. }
        ));
        let after = count(hash, "HLEN").max(0);
        assert!(before - after <= 64 && before > after, "one join expired {} tokens", before - after);
        assert_eq!(count("drupal-push:tx:soon", "ZCARD").max(0), after, "the expiry index follows");
        before = after;
    }
}
