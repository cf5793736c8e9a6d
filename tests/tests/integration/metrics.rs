//! `/metrics`: refused without the bearer `metricsToken`, off without one, and its numbers follow
//! real sockets through connecting, authenticating (from Drupal, from the cache, rejected,
//! failed), publishing, closing and a slow-consumer close. `/status.json` carries the totals the
//! status page turns into rates, and reads the engine at most once a second.

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer, WAIT};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

const TOKEN: &str = "metrics-token-for-tests-0123456789";

/// `GET /metrics` with `authorization` as the header's value: status, `WWW-Authenticate`,
/// content type and body.
async fn get_metrics(s: &TestServer, authorization: Option<&str>) -> (u16, String, String, String) {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let mut req = HTTP.get_or_init(drupal_push_tests::http_client).get(s.url("/metrics"));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = tokio::time::timeout(WAIT, req.send()).await.expect("in time").expect("metrics call");
    let header =
        |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let (challenge, content_type) = (header("www-authenticate"), header("content-type"));
    (resp.status().as_u16(), challenge, content_type, resp.text().await.expect("body"))
}

/// Every sample of a scrape, by `name{labels}` as the text format writes it.
async fn scrape(s: &TestServer) -> HashMap<String, f64> {
    let (status, _, _, text) = get_metrics(s, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l:?}"));
            (key.to_owned(), value.parse().unwrap_or_else(|_| panic!("not a number: {l:?}")))
        })
        .collect()
}

/// Scrapes until `key` has `want` (a sample not yet created counts as 0).
async fn wait_for(s: &TestServer, key: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = scrape(s).await.get(key).copied().unwrap_or(0.0);
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{key} is {got}, waited for {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_need_the_bearer_token_and_are_off_without_one() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start_with(&d, &[("metricsToken", TOKEN)]).await;
    for wrong in [None, Some("Bearer nope"), Some(TOKEN), Some("Basic bWV0cmljczp4"), Some(SERVICE_KEY)] {
        let (status, challenge, _, body) = get_metrics(&s, wrong).await;
        assert_eq!(status, 401, "{wrong:?}: {body}");
        assert_eq!(challenge, "Bearer realm=\"drupal-push metrics\"");
        assert!(body.contains("metricsToken"), "{body}");
    }
    let bearer_key = format!("Bearer {SERVICE_KEY}");
    assert_eq!(get_metrics(&s, Some(&bearer_key)).await.0, 401, "the service key is not the metrics token");
    let (status, _, content_type, body) = get_metrics(&s, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(body.contains("# TYPE drupal_push_deliveries_total counter\n"), "{body}");

    let off = TestServer::start(&d).await;
    let (status, _, _, body) = get_metrics(&off, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 404);
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(error["error"].as_str().unwrap().contains("set metricsToken"), "{body}");
}

#[tokio::test]
async fn a_bad_metrics_token_is_refused_at_start() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let cli = drupal_push_server::config::Cli {
        service_key: Some(SERVICE_KEY.into()),
        set: vec![format!("backend.port={}", d.addr.port())],
        ..Default::default()
    };
    for (token, why) in [("short", "too short"), ("has a space in it, long enough", "printable ASCII")] {
        let mut c = cli.clone();
        c.set.push(format!("metricsToken={token}"));
        let e = drupal_push_server::config::load(&c, std::iter::empty()).unwrap_err().to_string();
        assert!(e.contains("metricsToken") && e.contains(why), "{e}");
    }
}

#[tokio::test]
async fn the_numbers_follow_sockets_through_auth_publish_and_a_slow_consumer_close() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("alice", Answer::valid(1, &["feed"]));
    d.answer("stuck", Answer::valid(2, &["feed"]));
    d.answer("intruder", Answer::Invalid);
    d.answer("broken", Answer::Status(500));
    let s = TestServer::start_with(
        &d,
        &[("metricsToken", TOKEN), ("maxQueuedBytes", "2mb"), ("writeTimeoutMs", "60000")],
    )
    .await;
    let pre_auth = "drupal_push_connections{state=\"pre_auth\"}";
    let authenticated = "drupal_push_connections{state=\"authenticated\"}";

    let mut alice = TestClient::connect(&s.ws_url()).await;
    let m = scrape(&s).await;
    assert_eq!((m[pre_auth], m[authenticated]), (1.0, 0.0));
    alice.authenticate("alice", &[]).await;
    alice.await_auth(WAIT).await.expect("alice authenticated");
    let alice2 = TestClient::connect_auth(&s.ws_url(), "alice").await;
    let m = scrape(&s).await;
    assert_eq!((m[pre_auth], m[authenticated]), (0.0, 2.0));
    assert_eq!(m["drupal_push_authentications_total{outcome=\"ok\"}"], 1.0);
    assert_eq!(m["drupal_push_authentications_total{outcome=\"cached\"}"], 1.0, "the second tab");
    assert_eq!(m["drupal_push_backend_request_duration_seconds_count{request=\"authenticate\"}"], 1.0);
    assert_eq!((m["drupal_push_sessions"], m["drupal_push_online_users"]), (1.0, 1.0));

    let mut intruder = TestClient::connect(&s.ws_url()).await;
    intruder.authenticate("intruder", &[]).await;
    assert_eq!(intruder.await_auth(WAIT).await, Err(Some(4001)));
    let mut broken = TestClient::connect(&s.ws_url()).await;
    broken.authenticate("broken", &[]).await;
    assert_eq!(broken.await_auth(WAIT).await, Err(Some(4100)));
    let m = scrape(&s).await;
    assert_eq!(m["drupal_push_authentications_total{outcome=\"rejected\"}"], 1.0);
    assert_eq!(m["drupal_push_authentications_total{outcome=\"backend_error\"}"], 1.0);
    assert_eq!(m["drupal_push_backend_errors_total{kind=\"http_status\"}"], 1.0);
    assert_eq!(m["drupal_push_closes_total{by=\"server\",code=\"4001\"}"], 1.0);
    assert_eq!(m["drupal_push_closes_total{by=\"server\",code=\"4100\"}"], 1.0);

    for i in 0..3 {
        assert_eq!(s.post("publish", json!({"channel": "feed", "i": i})).await["status"], "success");
        assert_eq!(alice.next_message().await["i"], i);
    }
    assert_eq!(s.post("publish", json!({"broadcast": true, "b": 1})).await["status"], "success");
    let m = scrape(&s).await;
    assert_eq!(m["drupal_push_publications_total{stream=\"channel\"}"], 3.0);
    assert_eq!(m["drupal_push_publications_total{stream=\"broadcast\"}"], 1.0);
    assert_eq!(m["drupal_push_deliveries_total"], 8.0, "4 publications to 2 sockets");
    assert_eq!(m["drupal_push_history_messages"], 4.0);
    if drupal_push_tests::redis::engine_is_redis() {
        // Redis's memory is Redis's to report (its INFO); the engine counts messages only.
        assert_eq!(m["drupal_push_history_bytes"], 0.0);
    } else {
        assert!(m["drupal_push_history_bytes"] > 0.0);
    }
    assert_eq!((m["drupal_push_nodes"], m["drupal_push_engine_ready"]), (1.0, 1.0));
    assert_eq!(m["drupal_push_cluster_sockets"], 2.0);
    let status = s.status().await;
    assert_eq!((status["publications"].as_u64(), status["deliveries"].as_u64()), (Some(4), Some(8)));
    assert_eq!(status["historyMessages"], 4);

    alice.close().await;
    alice2.close().await;
    wait_for(&s, "drupal_push_closes_total{by=\"client\",code=\"1005\"}", 2.0).await;

    // A client that does not read: its outbox fills (queued bytes show it), then it is closed.
    let mut stuck = TestClient::connect_auth(&s.ws_url(), "stuck").await;
    let blob = "x".repeat(64 * 1024);
    let mut saw_queued = false;
    let mut sent = 0;
    loop {
        s.post("publish", json!({"channel": "feed", "blob": blob})).await;
        sent += 1;
        let m = scrape(&s).await;
        saw_queued |= m["drupal_push_queued_bytes"] > 0.0;
        if m.get("drupal_push_slow_consumer_closes_total{cause=\"queue_full\"}") == Some(&1.0) {
            break;
        }
        assert!(sent < 2000, "no slow-consumer close after {sent} publishes of 64 KiB");
    }
    assert!(saw_queued, "bytes were queued before the close");
    assert_eq!(stuck.expect_close().await, Some(4101));
    wait_for(&s, "drupal_push_closes_total{by=\"server\",code=\"4101\"}", 1.0).await;
    wait_for(&s, authenticated, 0.0).await;
    wait_for(&s, "drupal_push_queued_bytes", 0.0).await;
    assert_eq!(s.status().await["queuedBytes"], 0);
}

#[tokio::test]
async fn history_size_follows_appends_trims_and_expiry() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s =
        TestServer::start_with(&d, &[("metricsToken", TOKEN), ("historySize", "2"), ("historyTtlSecs", "1")])
            .await;
    for i in 0..3 {
        s.post("publish", json!({"channel": "a", "i": i})).await;
    }
    s.post("publish", json!({"channel": "b", "i": 0})).await;
    let m = scrape(&s).await;
    assert_eq!(m["drupal_push_history_messages"], 3.0, "2 kept of channel a, 1 of b");
    assert_eq!(m["drupal_push_publications_total{stream=\"channel\"}"], 4.0);
    // A second after its last message a history is gone, and no longer counted.
    wait_for(&s, "drupal_push_history_messages", 0.0).await;
    s.post("publish", json!({"channel": "a", "i": 3})).await;
    assert_eq!(scrape(&s).await["drupal_push_history_messages"], 1.0, "counted from 0 again");
}

/// Security review, finding 9: the public `/status.json` read the engine's figures on every
/// request, several Redis round trips each, so anyone could make Redis work as fast as they
/// could send requests. Now one computation a second serves them all: 200 requests at once
/// cost Redis at most one stats read per second they took, plus one. Counted by Redis itself
/// (`INFO commandstats`: `ZCOUNT` is sent by the stats read only).
#[tokio::test]
async fn status_json_reads_the_engine_at_most_once_a_second() {
    let redis = drupal_push_tests::redis::RedisServer::start().await;
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let url = redis.url();
    let s = TestServer::start_with(&d, &[("engine", "redis"), ("redis.url", url.as_str())]).await;
    s.wait_ready().await;
    let stats_reads = || {
        let info = redis.cli(&["INFO", "commandstats"]).expect("INFO commandstats");
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_zcount:calls="))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse::<u64>().unwrap())
    };
    let before = stats_reads();
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all((0..200).map(|_| s.status())).await;
    let took = started.elapsed();
    let reads = stats_reads() - before;
    for a in &answers {
        assert_eq!((a["engineReady"].as_bool(), a["nodes"].as_u64()), (Some(true), Some(1)), "{a}");
    }
    eprintln!("200 concurrent /status.json in {took:?}: {reads} stats reads");
    assert!(reads <= took.as_secs() + 2, "{reads} stats reads for 200 requests in {took:?}");
}
