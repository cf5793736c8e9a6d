//! Every key the Redis engine writes is bounded (security review finding 12): the keys of a
//! user and of a session go when its sessions end and its cached auth expires, and the index of
//! cached auth records (`P:aexp`) keeps only live ones although nobody reads the stats. On the
//! Redis engine in both passes (`Setup::redis_engine`): these are Redis's own keys.

use drupal_push_tests::{Answer, Setup, TestClient, wait_until};

/// The keys that name user `uid` or session `token` (`P:<kind>:<uid or token>`).
fn keys_of(r: &drupal_push_tests::redis::RedisServer, uid: &str, token: &str) -> Vec<String> {
    r.keys("drupal-push:*")
        .into_iter()
        .filter(|k| k.rsplit(':').next().is_some_and(|last| last == uid || last == token))
        .collect()
}

#[tokio::test]
async fn a_users_keys_go_when_its_sessions_end() {
    let (_d, s) = Setup::new()
        .redis_engine()
        .user("sess-of-7", Answer::valid(7, &["chat"]))
        .set("authCacheTtlSecs", "1")
        .start()
        .await;
    let r = s.redis.as_ref().expect("on Redis");
    let mut a = TestClient::connect_auth(&s.ws_url(), "sess-of-7").await;
    assert!(!keys_of(r, "7", "sess-of-7").is_empty(), "the user and the session are in Redis");
    let (status, _) =
        s.call(reqwest::Method::GET, "user/logout/sess-of-7", None, Some("test-service-key"), None).await;
    assert_eq!(status, 200);
    a.expect_close().await;
    // After the presence grace (300 ms) and the auth cache's TTL (1 s) nothing of them is left.
    wait_until("the user's and the session's keys are gone", || keys_of(r, "7", "sess-of-7").is_empty())
        .await;
    for k in r.keys("drupal-push:*") {
        let member = r.cli(&["TYPE", &k]).unwrap_or_default();
        if member == "zset" {
            assert_eq!(r.cli(&["ZSCORE", &k, "sess-of-7"]).as_deref(), Some(""), "{k} forgot the session");
        }
    }
}

#[tokio::test]
async fn expired_auth_records_are_not_kept_without_stats_reads() {
    const ROUND: usize = 20;
    let mut setup = Setup::new()
        .redis_engine()
        .set("authCacheTtlSecs", "1")
        // No heartbeat while the test runs: what prunes here is the writes.
        .set("redis.nodeTimeoutMs", "600000");
    for i in 0..2 * ROUND {
        setup = setup.user(&format!("cycle-{i}"), Answer::valid(100 + i as u64, &[]));
    }
    let (_d, s) = setup.start().await;
    let r = s.redis.as_ref().expect("on Redis");
    for i in 0..ROUND {
        TestClient::connect_auth(&s.ws_url(), &format!("cycle-{i}")).await.close().await;
    }
    wait_until("the first round's records expired", || {
        (0..ROUND).all(|i| r.cli(&["EXISTS", &format!("drupal-push:a:cycle-{i}")]).as_deref() == Some("0"))
    })
    .await;
    for i in ROUND..2 * ROUND {
        TestClient::connect_auth(&s.ws_url(), &format!("cycle-{i}")).await.close().await;
    }
    let indexed: usize = r.cli(&["ZCARD", "drupal-push:aexp"]).and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(indexed <= ROUND, "{indexed} records indexed, at most {ROUND} are alive");
    for k in r.keys("drupal-push:at:*") {
        assert!(r.pttl(&k).is_some(), "{k} expires");
    }
}
