//! TLS on both sides: the `https` listener (`scheme`, `sslKeyPath`, `sslCertPath`) and an https
//! Drupal, with and without certificate checks (`backend.strictSSL`).

use drupal_push_tests::server::{SERVICE_KEY, TestServer};
use drupal_push_tests::{Answer, FakeDrupal, TestClient};

fn self_signed() -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

#[tokio::test]
async fn https_listener_serves_the_api() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let (cert, key) = self_signed();
    let dir = std::env::temp_dir().join(format!("drupal-push-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let s = TestServer::start_with(
        &d,
        &[
            ("scheme", "https"),
            ("sslCertPath", cert_path.to_str().unwrap()),
            ("sslKeyPath", key_path.to_str().unwrap()),
        ],
    )
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/nodejs/health/check", s.addr.port());
    let text =
        client.get(url).header("NodejsServiceKey", SERVICE_KEY).send().await.unwrap().text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "success");
    // Plain HTTP to the TLS port gets nowhere.
    let plain = drupal_push_tests::http_client()
        .get(format!("http://127.0.0.1:{}/nodejs/health/check", s.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn https_backend_with_and_without_certificate_checks() {
    let (cert, key) = self_signed();
    let d = FakeDrupal::start_tls(SERVICE_KEY, &cert, &key).await;
    d.answer("t", Answer::valid(1, &["c"]));
    let port = d.addr.port().to_string();
    let lax = TestServer::start_with(
        &d,
        &[("backend.scheme", "https"), ("backend.port", &port), ("backend.strictSSL", "false")],
    )
    .await;
    TestClient::connect_auth(&lax.ws_url(), "t").await;
    let strict = TestServer::start_with(&d, &[("backend.scheme", "https"), ("backend.port", &port)]).await;
    let mut c = TestClient::connect(&strict.ws_url()).await;
    c.authenticate("t", &[]).await;
    assert_eq!(c.expect_close().await, Some(4100), "an untrusted certificate fails with strictSSL");
}
