//! Authentication and message delivery: what a page receives, byte for byte.

use drupal_push_protocol::ServerFrame;
use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn authenticate_asks_drupal_with_the_clients_fields_and_the_socket_id() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("tok", Answer::watched(5, &["nodejs_user_5", "news"], &[7, 9]));
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.send_raw(tokio_tungstenite::tungstenite::Message::text(
        r#"{"type":"authenticate","authToken":"tok","contentTokens":{"chat":"ct"},"lang":"fr","clientId":"forged"}"#,
    ))
    .await;
    match c.next_frame().await {
        ServerFrame::Authenticated { socket_id, uid, channels, streams, recovered, online } => {
            assert_eq!(socket_id.0, c.socket_id);
            assert_eq!(uid.0, 5);
            assert_eq!(channels, vec!["nodejs_user_5", "news"]);
            let keys: Vec<&str> = streams.keys().map(String::as_str).collect();
            assert_eq!(keys, vec!["*", "news", "nodejs_user_5"], "a start position for every stream");
            assert!(streams.values().all(|p| p.offset == 0));
            assert!(recovered.is_empty() && online.is_none(), "a first connection recovers nothing");
        }
        other => panic!("{other:?}"),
    }
    let msg = d.messages().remove(0);
    let sent: Value = serde_json::from_str(&msg.to_json()).unwrap();
    assert_eq!(
        sent,
        json!({"messageType": "authenticate", "authToken": "tok", "contentTokens": {"chat": "ct"},
               "clientId": c.socket_id, "lang": "fr"})
    );
    assert!(drupal_push_protocol::SocketId::is_valid(&c.socket_id));
}

#[tokio::test]
async fn client_authenticated_is_filtered_even_from_a_drupal7_answer() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("d7", Answer::Drupal7 { uid: 4, channels: vec!["nodejs_user_4".into()] });
    let (_c, data) = TestClient::connect_auth_with(&s.ws_url(), "d7", &[]).await;
    assert_eq!(data["uid"], 4);
    assert_eq!(data["nodejsValidAuthToken"], true);
    assert_eq!(data["channels"], json!(["nodejs_user_4"]));
    let text = data.to_string();
    for leak in ["serviceKey", SERVICE_KEY, "mail", "pass", "roles", "$S$DHASH"] {
        assert!(!text.contains(leak), "{leak} leaked to the browser: {text}");
    }
}

#[tokio::test]
async fn publish_reaches_channel_members_verbatim() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["news", "nodejs_user_1"]));
    d.answer("b", Answer::valid(2, &["news"]));
    d.answer("c", Answer::valid(3, &["other"]));
    let mut a = TestClient::connect_auth(&s.ws_url(), "a").await;
    let mut b = TestClient::connect_auth(&s.ws_url(), "b").await;
    let mut c = TestClient::connect_auth(&s.ws_url(), "c").await;
    let body = format!(
        r#"{{ "channel" : "news", "callback":"nodejsNotify", "data":{{"subject":"Héllo ✓ 日本 \ud83d\ude00","body":"<b>x</b>\n","n":[1,2.50,-3e2,null,{{"deep":{{"deeper":[true,false]}}}}]}}, "clientSocketId":"{}" }}"#,
        a.socket_id
    );
    let (status, v) = s.call(Method::POST, "publish", Some(body.clone()), Some(SERVICE_KEY), None).await;
    assert_eq!((status, v), (200, json!({"status": "success", "sent": 2})));
    let expected: Value = serde_json::from_str(&body).unwrap();
    for client in [&mut a, &mut b] {
        let env = client.next_envelope().await;
        assert_eq!(env.channel.as_deref(), Some("news"));
        assert_eq!(env.message, expected);
    }
    // c is not in "news": the next thing it sees is the broadcast.
    assert_eq!(s.post("publish", json!({"broadcast": true, "channel": "x", "k": 1})).await["sent"], 3);
    for client in [&mut a, &mut b, &mut c] {
        let env = client.next_envelope().await;
        assert_eq!(env.message, json!({"broadcast": true, "channel": "x", "k": 1}));
        assert_eq!(env.channel, None);
    }
}

#[tokio::test]
async fn the_body_text_is_forwarded_unchanged() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["raw"]));
    let mut c = TestClient::connect(&s.ws_url()).await;
    c.authenticate("a", &[]).await;
    assert!(matches!(c.next_frame().await, ServerFrame::Authenticated { .. }));
    c.next_message().await;
    let body = r#"{"channel":"raw","z":1,"a":2,"float":1.10,"esc":"\u00e9"}"#;
    s.call(Method::POST, "publish", Some(body.into()), Some(SERVICE_KEY), None).await;
    // Key order, number spelling and escapes survive: the body is not re-serialised.
    let text = c.next_text().await;
    let epoch = serde_json::from_str::<Value>(&text).unwrap()["epoch"].as_str().unwrap().to_owned();
    assert_eq!(
        text,
        format!(r#"{{"type":"message","channel":"raw","offset":1,"epoch":"{epoch}","message":{body}}}"#)
    );
}

#[tokio::test]
async fn a_100_kib_message_arrives_whole() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["big"]));
    let mut c = TestClient::connect_auth(&s.ws_url(), "a").await;
    let payload: String = (0..100 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    assert_eq!(s.post("publish", json!({"channel": "big", "data": payload})).await["sent"], 1);
    assert_eq!(c.next_message().await["data"].as_str().unwrap(), payload);
}

#[tokio::test]
async fn every_socket_of_a_user_receives_and_sent_counts_sockets() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("tab", Answer::valid(8, &["nodejs_user_8"]));
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(TestClient::connect_auth(&s.ws_url(), "tab").await);
    }
    assert_eq!(d.auth_calls(), 1, "the second and third tab use the cached answer");
    assert_eq!(s.post("publish", json!({"channel": "nodejs_user_8", "i": 1})).await["sent"], 3);
    for t in &mut tabs {
        assert_eq!(t.next_message().await["i"], 1);
    }
    let h = s.get("health/check").await;
    assert_eq!((h["sockets"].as_u64(), h["authenticatedClients"].as_u64()), (Some(3), Some(1)));
}

#[tokio::test]
async fn unauthenticated_sockets_receive_nothing() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["news"]));
    let mut waiting = TestClient::connect(&s.ws_url()).await;
    let mut authed = TestClient::connect_auth(&s.ws_url(), "a").await;
    assert_eq!(s.post("publish", json!({"broadcast": true, "n": 1})).await["sent"], 1);
    assert_eq!(authed.next_message().await["n"], 1);
    // Once authenticated, the first message the waiting socket sees is the one sent after.
    d.answer("w", Answer::valid(2, &["news"]));
    waiting.authenticate("w", &[]).await;
    assert!(matches!(waiting.next_frame().await, ServerFrame::Authenticated { .. }));
    assert_eq!(waiting.next_message().await["callback"], "clientAuthenticated");
    s.post("publish", json!({"channel": "news", "n": 2})).await;
    assert_eq!(waiting.next_message().await["n"], 2);
}

#[tokio::test]
async fn removed_channel_stops_delivery_and_auth_recreates_it() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["room"]));
    let mut a = TestClient::connect_auth(&s.ws_url(), "a").await;
    assert_eq!(s.post("channel/remove/room", json!({})).await, json!({"status": "success"}));
    assert_eq!(s.post("publish", json!({"channel": "room"})).await["sent"], 0);
    let mut b = TestClient::connect_auth(&s.ws_url(), "a").await;
    assert_eq!(s.post("publish", json!({"channel": "room", "n": 1})).await["sent"], 1);
    assert_eq!(b.next_message().await["n"], 1);
    assert_eq!(s.post("publish", json!({"broadcast": true, "n": 2})).await["sent"], 2);
    assert_eq!(a.next_message().await["n"], 2, "a left the removed channel");
}

#[tokio::test]
async fn heartbeat_pings_and_answers_pings() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s =
        TestServer::start_with(&d, &[("heartbeatIntervalMs", "100"), ("heartbeatTimeoutMs", "5000")]).await;
    let mut c = TestClient::connect(&s.ws_url()).await;
    assert_eq!(c.heartbeat_ms, 100);
    c.send(&drupal_push_protocol::ClientFrame::Ping).await;
    assert_eq!(c.next_frame().await, ServerFrame::Pong);
    // Raw read: the server pings a socket it has sent nothing to.
    use futures_util::StreamExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.unwrap();
    let mut saw_ping = false;
    for _ in 0..3 {
        let m = tokio::time::timeout(drupal_push_tests::WAIT, ws.next()).await.unwrap().unwrap().unwrap();
        if ServerFrame::decode(m.to_text().unwrap()).unwrap() == ServerFrame::Ping {
            saw_ping = true;
            break;
        }
    }
    assert!(saw_ping);
}

async fn raw_close_code(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Option<u16> {
    use futures_util::StreamExt;
    tokio::time::timeout(drupal_push_tests::WAIT, async {
        while let Some(Ok(m)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(Some(f)) = m {
                return Some(u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed in time")
}

#[tokio::test]
async fn silent_clients_are_closed_after_the_heartbeat_timeout() {
    use futures_util::SinkExt;
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("a", Answer::valid(1, &[]));
    let s =
        TestServer::start_with(&d, &[("heartbeatIntervalMs", "100"), ("heartbeatTimeoutMs", "400")]).await;
    // The raw client authenticates, then never answers pings.
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::text(r#"{"type":"authenticate","authToken":"a"}"#))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut ws).await, Some(4103));
}

#[tokio::test]
async fn sockets_that_never_authenticate_are_closed() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start_with(&d, &[("authTimeoutMs", "300")]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.unwrap();
    assert_eq!(raw_close_code(&mut ws).await, Some(4102));
    assert_eq!(s.get("health/check").await["preAuthSockets"], 0);
}

#[tokio::test]
async fn a_client_that_only_answers_pings_survives_a_busy_channel() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    d.answer("a", Answer::valid(1, &["busy"]));
    let s =
        TestServer::start_with(&d, &[("heartbeatIntervalMs", "100"), ("heartbeatTimeoutMs", "400")]).await;
    // TestClient never pings on its own; it only answers the server's pings.
    let mut c = TestClient::connect_auth(&s.ws_url(), "a").await;
    // Traffic flows to the client for 10 heartbeat timeouts without a pause long enough for
    // the "nothing sent" ping rule alone.
    for i in 0..100u64 {
        assert_eq!(s.post("publish", json!({"channel": "busy", "i": i})).await["sent"], 1, "closed at {i}");
        assert_eq!(c.next_message().await["i"], i);
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
}

/// Regression: the connection task must get the `TcpStream` itself back from the HTTP layer
/// (so publishers write to it directly), not a bridge through a socket pair. In this process a
/// client costs two descriptors (its end and the server's); a bridged one would cost four.
#[tokio::test]
async fn plain_connections_use_one_descriptor_on_the_server_side() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("a", Answer::valid(1, &["c"]));
    let open_fds = || std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let mut clients = vec![TestClient::connect_auth(&s.ws_url(), "a").await];
    let before = open_fds();
    for _ in 0..20 {
        clients.push(TestClient::connect_auth(&s.ws_url(), "a").await);
    }
    let per_client = (open_fds() - before) as f64 / 20.0;
    assert!(per_client < 2.5, "{per_client} descriptors per connection: the socket is bridged");
    assert_eq!(s.post("publish", json!({"channel": "c"})).await["sent"], 21);
}
