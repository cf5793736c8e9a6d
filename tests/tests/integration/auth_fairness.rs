//! Authentication fairness between client addresses (security review finding 6), over real
//! sockets from several loopback source addresses: a few addresses with junk tokens no longer
//! keep everyone else from authenticating (each address has a share of the backend queue, and
//! freed request slots go to the waiting addresses in turn); a token Drupal refused is refused
//! again for `authRejectCacheSecs` without asking Drupal; IPv6 clients are limited per /64.
//!
//! The delays are the fake Drupal's; the one time bound is generous (what is measured is
//! whether the valid client gets through while the junk still waits, not how fast).

use drupal_push_tests::client::Refused;
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use std::net::IpAddr;
use std::time::Duration;

/// How long the fake Drupal takes to refuse each junk token (under `backend.timeoutMs`).
const JUNK_DELAY: Duration = Duration::from_millis(1500);
/// Junk sockets per junk address.
const JUNK_PER_ADDRESS: usize = 2000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Security review finding 6: the backend queue was one FIFO for everyone. Three addresses
/// with 2,000 junk-token sockets each filled it (5,000 places) on a slow Drupal, so a valid
/// client from a fourth address was closed with 4100 or waited behind thousands of slow calls.
/// Now each address holds at most its share of the queue (1/8: 625 places), and a freed slot
/// goes to the next waiting address, so the valid client's call starts after a few junk calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_client_authenticates_while_6000_junk_sockets_from_three_addresses_wait() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let junk_addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    for i in 0..junk_addresses.len() * JUNK_PER_ADDRESS {
        d.answer(&format!("junk-{i}"), Answer::Slow(JUNK_DELAY, Box::new(Answer::Invalid)));
    }
    d.answer("valid", Answer::valid(5, &[]));
    let settings = [
        ("connectionRatePerAddress", "0"),
        ("authRatePerAddress", "0"),
        ("backend.concurrency", "16"),
        ("backend.timeoutMs", "5000"),
    ];
    let s = TestServer::start_with(&d, &settings).await;
    let concurrency = s.config.backend.concurrency;
    let share = s.config.backend.queue_share;
    assert_eq!((s.config.backend.queue_length, share), (5000, 625));

    let mut junk = Vec::new();
    for batch in 0..junk_addresses.len() * JUNK_PER_ADDRESS / 500 {
        let tasks: Vec<_> = (batch * 500..(batch + 1) * 500)
            .map(|i| {
                let (url, source) = (s.ws_url(), ip(junk_addresses[i % junk_addresses.len()]));
                tokio::spawn(async move {
                    let mut c = TestClient::connect_from(&url, source, &[]).await;
                    c.authenticate(&format!("junk-{i}"), &[]).await;
                    c
                })
            })
            .collect();
        for t in tasks {
            junk.push(t.await.expect("junk client"));
        }
    }
    // The junk fills every slot and as much of the queue as the server lets it have.
    let wanted = 3 * share - 75;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while queued(&s).await < wanted || d.auth_calls() < concurrency {
        assert!(tokio::time::Instant::now() < deadline, "the junk did not fill the backend queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut valid = TestClient::connect_from(&s.ws_url(), ip("127.0.0.5"), &[]).await;
    valid.authenticate("valid", &[]).await;
    let waited = std::time::Instant::now();
    valid
        .await_auth(Duration::from_secs(30))
        .await
        .unwrap_or_else(|code| panic!("the valid client was closed with {code:?}"));
    let still_queued = queued(&s).await;
    assert!(still_queued <= 3 * share, "no address holds more than its share: {still_queued} queued");
    assert!(still_queued >= 2 * share, "the junk still waits: {still_queued} queued");
    eprintln!(
        "valid client authenticated {:?} after asking, with {still_queued} junk authentications queued \
         ({} Drupal calls so far)",
        waited.elapsed(),
        d.auth_calls()
    );
    drop(junk);
}

/// Authentications waiting for a backend slot now (`/status.json`).
async fn queued(s: &TestServer) -> usize {
    s.status().await["backendQueuedAuthentications"].as_u64().expect("a count") as usize
}

/// Security review finding 6: rejected tokens were not cached, so a page (or a script) retrying
/// a stale token cost Drupal one request per attempt.
#[tokio::test]
async fn a_token_drupal_refused_is_refused_again_without_asking_drupal() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start(&d).await;
    for _ in 0..3 {
        let mut c = TestClient::connect(&s.ws_url()).await;
        c.authenticate("stale-token", &[]).await;
        assert_eq!(c.expect_close().await, Some(4001), "the same close as Drupal's own refusal");
    }
    assert_eq!(d.auth_calls(), 1, "asked Drupal once");
    d.answer("good", Answer::valid(7, &[]));
    TestClient::connect_auth(&s.ws_url(), "good").await;
    assert_eq!(d.auth_calls(), 2, "other tokens are asked as before");

    let off = TestServer::start_with(&d, &[("authRejectCacheSecs", "0")]).await;
    for _ in 0..2 {
        let mut c = TestClient::connect(&off.ws_url()).await;
        c.authenticate("stale-token-2", &[]).await;
        assert_eq!(c.expect_close().await, Some(4001));
    }
    assert_eq!(d.auth_calls(), 4, "with authRejectCacheSecs = 0 every attempt asks Drupal");
}

/// Security review finding 6: IPv6 clients were limited per /128, and one host usually has a
/// whole /64 to pick addresses from. The machine's loopback has only ::1, so the clients are
/// named by a trusted proxy (the loopback, by default) in `X-Forwarded-For`: two addresses of
/// one /64 share a limit, one of the next /64 has its own.
#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    for t in ["a", "b", "c"] {
        d.answer(t, Answer::valid(1, &[]));
    }
    let proxy = ip("127.0.0.1");
    let from = |client: &'static str| [("X-Forwarded-For", client)];
    let s = TestServer::start_with(&d, &[("maxConnectionsPerAddress", "1")]).await;
    let _first = TestClient::connect_from(&s.ws_url(), proxy, &from("2001:db8:1:2::1")).await;
    let refused = TestClient::try_connect_from(&s.ws_url(), proxy, &from("2001:db8:1:2:ffff::9")).await;
    assert_eq!(refused.err(), Some(Refused::Closed(Some(4104))), "the same /64: maxConnectionsPerAddress");
    TestClient::connect_from(&s.ws_url(), proxy, &from("2001:db8:1:3::1")).await;

    let s =
        TestServer::start_with(&d, &[("authBurstPerAddress", "1"), ("authRatePerAddress", "0.001")]).await;
    let mut first = TestClient::connect_from(&s.ws_url(), proxy, &from("2001:db8:1:2::1")).await;
    first.authenticate("a", &[]).await;
    first.await_auth(drupal_push_tests::WAIT).await.expect("its first authentication");
    let mut again = TestClient::connect_from(&s.ws_url(), proxy, &from("2001:db8:1:2::77")).await;
    again.authenticate("b", &[]).await;
    assert_eq!(again.expect_close().await, Some(4105), "the same /64: authRatePerAddress");
    let mut other = TestClient::connect_from(&s.ws_url(), proxy, &from("2001:db8:1:3::1")).await;
    other.authenticate("c", &[]).await;
    other.await_auth(drupal_push_tests::WAIT).await.expect("the next /64 has its own bucket");
}
