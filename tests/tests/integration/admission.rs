//! Who may open a WebSocket (issue 11, item 4), over real HTTP: the origin allow-list (403),
//! per-address connection rate (429) and authentication rate (close 4105), the client address
//! behind a trusted proxy, and 503 while draining (in `shutdown.rs`).

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{Error, Message};

/// A handshake request with optional `Origin` and `X-Forwarded-For` headers.
fn request(s: &TestServer, origin: Option<&str>, forwarded_for: Option<&str>) -> Request {
    let mut r = s.ws_url().into_client_request().unwrap();
    if let Some(o) = origin {
        r.headers_mut().insert("Origin", o.parse().unwrap());
    }
    if let Some(f) = forwarded_for {
        r.headers_mut().insert("X-Forwarded-For", f.parse().unwrap());
    }
    r
}

/// Opens a WebSocket from `source` (a loopback address): `Ok` after the server's hello, or the
/// HTTP status and body of the refusal.
async fn open_from(source: &str, r: Request) -> Result<(), (u16, String)> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let addr = format!("{}:{}", r.uri().host().unwrap(), r.uri().port_u16().unwrap());
    let tcp = socket.connect(addr.parse().unwrap()).await.unwrap();
    let handshake = tokio_tungstenite::client_async(r, tcp);
    match tokio::time::timeout(drupal_push_tests::WAIT, handshake).await.expect("handshake in time") {
        Ok((mut ws, _)) => {
            let hello = tokio::time::timeout(drupal_push_tests::WAIT, ws.next()).await.unwrap();
            assert!(matches!(hello, Some(Ok(Message::Text(t))) if t.contains("\"hello\"")));
            Ok(())
        }
        Err(Error::Http(resp)) => {
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

async fn open(r: Request) -> Result<(), (u16, String)> {
    open_from("127.0.0.1", r).await
}

#[tokio::test]
async fn foreign_origins_are_refused_with_403() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s =
        TestServer::start_with(&d, &[("allowedOrigins", "https://www.example.com,https://*.example.org")])
            .await;
    assert_eq!(open(request(&s, Some("https://www.example.com"), None)).await, Ok(()));
    assert_eq!(open(request(&s, Some("https://a.b.example.org"), None)).await, Ok(()));
    assert_eq!(open(request(&s, None, None)).await, Ok(()), "no Origin: not a browser page");
    let (status, body) = open(request(&s, Some("https://evil.example"), None)).await.unwrap_err();
    assert_eq!(status, 403);
    assert!(body.contains("https://evil.example"), "{body}");
    assert_eq!(open(request(&s, Some("http://www.example.com"), None)).await.unwrap_err().0, 403);
    assert_eq!(open(request(&s, Some("null"), None)).await.unwrap_err().0, 403);
}

#[tokio::test]
async fn every_origin_is_allowed_by_default() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    assert_eq!(open(request(&s, Some("https://anywhere.example"), None)).await, Ok(()));
}

#[tokio::test]
async fn too_many_connections_from_one_address_get_429() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    // A burst of 3 and practically no refill.
    let limits = [("connectionBurstPerAddress", "3"), ("connectionRatePerAddress", "0.001")];
    let s = TestServer::start_with(&d, &limits).await;
    for _ in 0..3 {
        assert_eq!(open(request(&s, None, None)).await, Ok(()));
    }
    let (status, body) = open(request(&s, None, None)).await.unwrap_err();
    assert_eq!(status, 429, "{body}");
    assert_eq!(open_from("127.0.0.2", request(&s, None, None)).await, Ok(()), "another address");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let limits = [("connectionBurstPerAddress", "1"), ("connectionRatePerAddress", "0.001")];
    // The default trustedProxies is the loopback, where the test connects from.
    let s = TestServer::start_with(&d, &limits).await;
    assert_eq!(open(request(&s, None, Some("203.0.113.1"))).await, Ok(()));
    assert_eq!(open(request(&s, None, Some("203.0.113.1"))).await.unwrap_err().0, 429);
    assert_eq!(open(request(&s, None, Some("203.0.113.2"))).await, Ok(()));
    // A forged hop left of the one the proxy appended changes nothing.
    assert_eq!(open(request(&s, None, Some("198.51.100.7, 203.0.113.2"))).await.unwrap_err().0, 429);

    // Without trusted proxies the header is ignored: every connection is 127.0.0.1's.
    let mut pairs = limits.to_vec();
    pairs.push(("trustedProxies", ""));
    let s = TestServer::start_with(&d, &pairs).await;
    assert_eq!(open(request(&s, None, Some("203.0.113.1"))).await, Ok(()));
    assert_eq!(open(request(&s, None, Some("203.0.113.2"))).await.unwrap_err().0, 429);
}

#[tokio::test]
async fn the_connection_limit_per_address_counts_forwarded_clients() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start_with(&d, &[("maxConnectionsPerAddress", "1")]).await;
    let (_a, _) = tokio_tungstenite::connect_async(request(&s, None, Some("203.0.113.1"))).await.unwrap();
    let (_b, _) = tokio_tungstenite::connect_async(request(&s, None, Some("203.0.113.2"))).await.unwrap();
    let (mut c, _) = tokio_tungstenite::connect_async(request(&s, None, Some("203.0.113.1"))).await.unwrap();
    let close = loop {
        match tokio::time::timeout(drupal_push_tests::WAIT, c.next()).await.unwrap() {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(close, Some(4104));
}

#[tokio::test]
async fn authentications_going_to_drupal_are_rate_limited_per_address() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    for (t, uid) in [("a", 1), ("b", 2), ("c", 3)] {
        d.answer(t, Answer::valid(uid, &[]));
    }
    let s =
        TestServer::start_with(&d, &[("authBurstPerAddress", "2"), ("authRatePerAddress", "0.001")]).await;
    TestClient::connect_auth(&s.ws_url(), "a").await;
    TestClient::connect_auth(&s.ws_url(), "b").await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("c", &[]).await;
    assert_eq!(c.expect_close().await, Some(4105));
    assert_eq!(d.auth_calls(), 2, "the refused one never reached Drupal");
    // A cached session costs Drupal nothing and is not limited.
    TestClient::connect_auth(&s.ws_url(), "a").await;
    assert_eq!(d.auth_calls(), 2);
}

/// Security review finding 10, over real sockets from a trusted peer (the loopback): a client
/// that sends `X-Forwarded-For: junk` itself, which the proxy keeps and appends the real address
/// to, used to count as the proxy, so that every such client shared one per-address limit.
#[tokio::test]
async fn junk_left_of_the_client_hop_does_not_make_the_client_the_proxy() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let limits = [("connectionBurstPerAddress", "1"), ("connectionRatePerAddress", "0.001")];
    let s = TestServer::start_with(&d, &limits).await;
    assert_eq!(open(request(&s, None, Some("unknown, 203.0.113.1"))).await, Ok(()));
    assert_eq!(open(request(&s, None, Some("junk, 203.0.113.2"))).await, Ok(()), "another client");
    assert_eq!(open(request(&s, None, Some("203.0.113.2"))).await.unwrap_err().0, 429, "the same client");
    // Junk as the last entry: the proxy itself is the nearest address that can be named.
    assert_eq!(open(request(&s, None, Some("203.0.113.3, junk"))).await, Ok(()));
    assert_eq!(open(request(&s, None, None)).await.unwrap_err().0, 429, "that was the proxy's token");
}
