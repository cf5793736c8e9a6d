//! Security review, finding 11: what runs without a service key (the demo's page routes with
//! `--demo`, Drupal's API with `allowEmptyServiceKey`) took `text/plain` JSON from anyone, so
//! any web site open in a developer's browser could publish and kick through the developer's
//! loopback server (a CORS "simple request" needs no preflight), and DNS rebinding reached it
//! under another name. Now those routes take only their own pages' requests: a loopback (or
//! the configured) `Host`, their own `Origin`, no cross-site `Sec-Fetch-Site`, and
//! `Content-Type: application/json` on POSTs. The demo page's own requests (www/demo.js) still
//! work, and with a service key nothing changes for Drupal.

use drupal_push_server::config::{self, Cli};
use drupal_push_tests::{FakeDrupal, TestServer, WAIT};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request over a raw socket, so that `Host`, `Origin` and the rest are exactly what is
/// given: `headers` are whole lines. The status and the JSON answer (a string when not JSON),
/// and the response's head.
async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, Value, String) {
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await?;
        std::io::Result::Ok(response)
    };
    let response = tokio::time::timeout(WAIT, exchange).await.expect("answered in time").expect("exchange");
    let text = String::from_utf8(response).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status");
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.into())), head.to_owned())
}

async fn demo_server() -> TestServer {
    let cli = Cli { demo: true, port: Some(0), ..Cli::default() };
    let (config, _) = config::load(&cli, std::iter::empty()).expect("demo config");
    TestServer::start_config(config).await
}

/// An error answer naming `what`.
fn refused(answer: &(u16, Value, String), status: u16, what: &str) {
    assert_eq!(answer.0, status, "{:?}", answer.1);
    let error = answer.1["error"].as_str().unwrap_or_else(|| panic!("a JSON error: {:?}", answer.1));
    assert!(error.contains(what), "{error}");
}

#[tokio::test]
async fn demo_routes_take_only_the_demo_pages_requests() {
    let s = demo_server().await;
    let own = format!("Host: {}", s.addr);
    let origin = format!("Origin: http://{}", s.addr);
    let publish = r#"{"channel":"demo","data":{"subject":"hi"}}"#;
    let json = "Content-Type: application/json";

    // What www/demo.js sends: its settings (a same-origin GET), then JSON POSTs.
    let settings =
        raw(s.addr, "GET", "/demo/settings?uid=3", &[&own, "Sec-Fetch-Site: same-origin"], "").await;
    assert_eq!(settings.0, 200, "{:?}", settings.1);
    assert_eq!(settings.1["uid"], 3);
    let page = [own.as_str(), origin.as_str(), json, "Sec-Fetch-Site: same-origin"];
    let answer = raw(s.addr, "POST", "/demo/publish", &page, publish).await;
    assert_eq!((answer.0, &answer.1["status"]), (200, &Value::from("success")), "{:?}", answer.1);
    let answer = raw(s.addr, "POST", "/demo/kick/4", &page, "").await;
    assert_eq!(answer.0, 200, "{:?}", answer.1);
    let port = s.addr.port();
    let (host, origin_localhost) =
        (format!("Host: localhost:{port}"), format!("Origin: http://localhost:{port}"));
    let answer = raw(s.addr, "POST", "/demo/publish", &[&host, &origin_localhost, json], publish).await;
    assert_eq!(answer.0, 200, "the page opened as localhost: {:?}", answer.1);

    // Another site's page: a simple request (text/plain), a foreign origin, DNS rebinding.
    let plain = raw(s.addr, "POST", "/demo/publish", &[&own, "Content-Type: text/plain"], publish).await;
    refused(&plain, 415, "Content-Type: application/json");
    let foreign = ["Origin: https://evil.example", json];
    let answer = raw(s.addr, "POST", "/demo/publish", &[own.as_str(), foreign[0], foreign[1]], publish).await;
    refused(&answer, 403, "Origin \"https://evil.example\" refused");
    let rebound = format!("Host: evil.example:{port}");
    let rebound_origin = format!("Origin: http://evil.example:{port}");
    let answer = raw(s.addr, "POST", "/demo/publish", &[&rebound, &rebound_origin, json], publish).await;
    refused(&answer, 403, "Host \"evil.example");
    let answer = raw(s.addr, "GET", "/demo/settings", &["Host: evil.example"], "").await;
    refused(&answer, 403, "Host \"evil.example\"");
    let answer = raw(s.addr, "POST", "/demo/kick/4", &[&own, "Sec-Fetch-Site: cross-site", json], "").await;
    refused(&answer, 403, "Sec-Fetch-Site: cross-site");
    // No preflight is granted, so a foreign page cannot send the JSON header either.
    let preflight = [
        own.as_str(),
        "Origin: https://evil.example",
        "Access-Control-Request-Method: POST",
        "Access-Control-Request-Headers: content-type",
    ];
    let answer = raw(s.addr, "OPTIONS", "/demo/publish", &preflight, "").await;
    assert!(answer.0 >= 400, "{answer:?}");
    assert!(!answer.2.to_ascii_lowercase().contains("access-control-allow"), "{}", answer.2);

    // The API keeps its generated key, and is checked by the key only.
    let key = format!("NodejsServiceKey: {}", s.config.api.service_key);
    let health = raw(s.addr, "GET", "/nodejs/health/check", &[&key, "Host: evil.example"], "").await;
    assert_eq!(health.1["status"], "success", "{:?}", health.1);
}

#[tokio::test]
async fn an_empty_service_key_takes_only_json_from_its_own_pages() {
    let drupal = FakeDrupal::start("").await;
    let cli = Cli {
        allow_empty_service_key: true,
        port: Some(0),
        host: Some("127.0.0.1".into()),
        set: vec![format!("backend.port={}", drupal.addr.port()), "backend.host=127.0.0.1".into()],
        ..Cli::default()
    };
    let (config, _) = config::load(&cli, std::iter::empty()).expect("config");
    let s = TestServer::start_config(config).await;
    let own = format!("Host: {}", s.addr);
    let body = r#"{"channel":"news","data":{}}"#;
    let json = "Content-Type: application/json";

    let answer = raw(s.addr, "POST", "/nodejs/publish", &[&own, json], body).await;
    assert_eq!(answer.1["status"], "success", "a JSON POST without a key: {:?}", answer.1);
    let answer = raw(s.addr, "GET", "/nodejs/user/kick/3", &[&own], "").await;
    assert_eq!(answer.1["status"], "success", "a GET route without a key: {:?}", answer.1);
    let answer = raw(s.addr, "GET", "/nodejs/health/check", &["Host: localhost"], "").await;
    assert_eq!(answer.1["status"], "success", "{:?}", answer.1);

    let answer = raw(s.addr, "POST", "/nodejs/publish", &[&own, "Content-Type: text/plain"], body).await;
    refused(&answer, 415, "serviceKey");
    let answer = raw(s.addr, "POST", "/nodejs/publish", &[&own], body).await;
    refused(&answer, 415, "like Drupal 7, need serviceKey set");
    let answer =
        raw(s.addr, "POST", "/nodejs/publish", &[&own, "Origin: http://evil.example", json], body).await;
    refused(&answer, 403, "Origin");
    let answer = raw(s.addr, "GET", "/nodejs/health/check", &["Host: evil.example"], "").await;
    refused(&answer, 403, "Host \"evil.example\"");
    let answer = raw(s.addr, "GET", "/nodejs/user/kick/3", &[&own, "Sec-Fetch-Site: cross-site"], "").await;
    refused(&answer, 403, "Sec-Fetch-Site");
}

/// With a service key nothing of this applies: Drupal 7's POSTs without a Content-Type, from
/// whatever name Drupal uses for this server, are checked by the key only.
#[tokio::test]
async fn with_a_service_key_drupal_is_not_checked_for_any_of_this() {
    let (_drupal, s) = TestServer::with_fake_drupal().await;
    let key = format!("NodejsServiceKey: {}", drupal_push_tests::server::SERVICE_KEY);
    let headers = [key.as_str(), "Host: push.example.org", "Origin: https://evil.example"];
    let answer = raw(s.addr, "POST", "/nodejs/publish", &headers, r#"{"channel":"news","data":{}}"#).await;
    assert_eq!(answer.1["status"], "success", "{:?}", answer.1);
    let (status, answer) = s.post_drupal7("publish", r#"{"channel":"news","data":{}}"#).await;
    assert_eq!((status, &answer["status"]), (200, &Value::from("success")), "{answer}");
}
