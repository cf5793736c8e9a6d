//! Every REST route of spec 1.2 with its exact success and error JSON, over GET and POST where
//! Drupal 7 and 8+ differ, plus the service-key check.

use drupal_push_tests::server::SERVICE_KEY;
use drupal_push_tests::{Answer, FakeDrupal, TestClient, TestServer};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn service_key_is_required_on_every_backend_path() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    for (method, path) in [
        (Method::POST, "publish"),
        (Method::GET, "health/check"),
        (Method::POST, "user/kick/1"),
        (Method::GET, "no/such/route"),
        (Method::GET, ""),
    ] {
        for key in [None, Some("wrong"), Some("test-service-ke"), Some("test-service-keyy")] {
            let (status, body) = s.call(method.clone(), path, Some("{}".into()), key, None).await;
            assert_eq!(
                (status, body),
                (200, json!({"error": "Invalid service key."})),
                "{method} {path} {key:?}"
            );
        }
    }
    // The header name is case-insensitive, as in Express.
    let (status, body) = s.call(Method::GET, "health/check", None, None, None).await;
    assert_eq!(body["error"], "Invalid service key.", "{status}");
    let resp = drupal_push_tests::http_client()
        .get(s.url("/nodejs/health/check"))
        .header("nodejsservicekey", SERVICE_KEY)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "success");
}

#[tokio::test]
async fn health_check_reports_a_version_drupal_accepts_and_no_token_values() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    s.post("content/token", json!({"channel": "chat", "token": "SECRET-TOKEN", "notifyOnDisconnect": false}))
        .await;
    for v in [s.get("health/check").await, s.post("health/check", json!({})).await] {
        assert_eq!(v["status"], "success");
        let version = v["version"].as_str().unwrap();
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts[0], 1, "Drupal 8+ requires major version 1");
        assert!(parts >= vec![1, 0, 8], "Drupal 8+ requires at least 1.0.8, got {version}");
        for key in ["authenticatedClients", "sockets", "onlineUsers", "tokenChannels"] {
            assert!(v[key].is_u64(), "{key} missing in {v}");
        }
        assert_eq!(v["contentTokens"]["chat"]["tokens"], 1);
        assert!(!v.to_string().contains("SECRET-TOKEN"), "token value leaked: {v}");
    }
}

#[tokio::test]
async fn publish_needs_a_channel_or_broadcast() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    let missing = json!({"error": "Required parameters are missing."});
    for body in
        [json!({}), json!({"channel": ""}), json!({"broadcast": false}), json!({"channel": null}), json!([])]
    {
        assert_eq!(s.post("publish", body.clone()).await, missing, "{body}");
    }
    assert_eq!(
        s.post("publish", json!({"channel": "nobody_here"})).await,
        json!({"status": "success", "sent": 0})
    );
    assert_eq!(s.post("publish", json!({"broadcast": true})).await, json!({"status": "success", "sent": 0}));
}

#[tokio::test]
async fn drupal7_bodies_without_content_type_are_json() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("t1", Answer::valid(1, &["news"]));
    let mut c = TestClient::connect_auth(&s.ws_url(), "t1").await;
    for ct in [None, Some("application/x-www-form-urlencoded"), Some("text/plain")] {
        let (status, v) = s
            .call(Method::POST, "publish", Some(r#"{"channel":"news","n":1}"#.into()), Some(SERVICE_KEY), ct)
            .await;
        assert_eq!((status, v), (200, json!({"status": "success", "sent": 1})), "{ct:?}");
        assert_eq!(c.next_message().await, json!({"channel": "news", "n": 1}));
    }
}

#[tokio::test]
async fn channel_routes_answer_like_the_original_over_get_and_post() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    for method in [Method::GET, Method::POST] {
        let call = |path: String| {
            let m = method.clone();
            let s = &s;
            async move { s.call(m, &path, None, Some(SERVICE_KEY), None).await.1 }
        };
        let ch = format!("room_{}", method.as_str().to_lowercase());
        assert_eq!(call(format!("channel/check/{ch}")).await, json!({"status": "success", "result": false}));
        assert_eq!(call(format!("channel/add/{ch}")).await, json!({"status": "success"}));
        assert_eq!(
            call(format!("channel/add/{ch}")).await,
            json!({"status": "failed", "error": format!("Channel name '{ch}' already exists.")})
        );
        assert_eq!(call(format!("channel/check/{ch}")).await, json!({"status": "success", "result": true}));
        assert_eq!(call(format!("channel/remove/{ch}")).await, json!({"status": "success"}));
        assert_eq!(
            call(format!("channel/remove/{ch}")).await,
            json!({"status": "failed", "error": "Non-existent channel name."})
        );
        for bad in ["bad-name", "sp%20ace", "%C3%A9t%C3%A9"] {
            let invalid = json!({"status": "failed", "error": "Invalid channel name."});
            assert_eq!(call(format!("channel/add/{bad}")).await, invalid);
            assert_eq!(call(format!("channel/check/{bad}")).await, invalid);
            assert_eq!(call(format!("channel/remove/{bad}")).await, invalid);
        }
        let long = "a".repeat(256);
        assert_eq!(call(format!("channel/add/{long}")).await["error"], "Invalid channel name.");
        let longest = format!("{}{}", "a".repeat(254), method.as_str().len());
        assert_eq!(call(format!("channel/add/{longest}")).await["status"], "success");
    }
}

#[tokio::test]
async fn user_channel_routes() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("t5", Answer::valid(5, &[]));
    for method in [Method::GET, Method::POST] {
        let call = |path: &str| {
            let (m, s, path) = (method.clone(), &s, path.to_owned());
            async move { s.call(m, &path, None, Some(SERVICE_KEY), None).await.1 }
        };
        assert_eq!(
            call("user/channel/add/extra/x5").await,
            json!({"status": "failed", "error": "Invalid uid."})
        );
        assert_eq!(
            call("user/channel/add/bad-name/5").await,
            json!({"status": "failed", "error": "Invalid channel name."})
        );
        assert_eq!(
            call("user/channel/add/extra/5").await,
            json!({"status": "failed", "error": "No active sessions for uid."})
        );
        // A failed add creates nothing (spec 7.6).
        assert_eq!(call("channel/check/extra").await["result"], false);
        assert_eq!(
            call("user/channel/remove/extra/5").await,
            json!({"status": "failed", "error": "Non-existent channel name."})
        );
        assert_eq!(
            call("user/channel/remove/extra/5x").await,
            json!({"status": "failed", "error": "Invalid uid."})
        );
    }
    let mut c = TestClient::connect_auth(&s.ws_url(), "t5").await;
    assert_eq!(s.get("user/channel/add/extra/5").await, json!({"status": "success"}));
    assert_eq!(s.post("publish", json!({"channel": "extra", "m": 1})).await["sent"], 1);
    assert_eq!(c.next_message().await["m"], 1);
    assert_eq!(s.post("user/channel/remove/extra/5", json!({})).await, json!({"status": "success"}));
    assert_eq!(s.post("publish", json!({"channel": "extra", "m": 2})).await["sent"], 0);
}

#[tokio::test]
async fn authtoken_channel_routes() {
    let (d, s) = TestServer::with_fake_drupal().await;
    d.answer("tok-a", Answer::valid(3, &[]));
    let invalid = json!({"status": "failed", "error": "Invalid parameters."});
    assert_eq!(s.post("authtoken/channel/add/side/unknown", json!({})).await, invalid);
    // The original answered HTTP 500 here (spec 7.4).
    assert_eq!(
        s.call(Method::POST, "authtoken/channel/remove/side/unknown", None, Some(SERVICE_KEY), None).await,
        (200, invalid.clone())
    );
    assert_eq!(
        s.post("authtoken/channel/add/bad-name/tok-a", json!({})).await,
        json!({"status": "failed", "error": "Invalid channel name."})
    );
    let mut c = TestClient::connect_auth(&s.ws_url(), "tok-a").await;
    assert_eq!(s.get("authtoken/channel/add/side/tok-a").await, json!({"status": "success"}));
    assert_eq!(s.post("publish", json!({"channel": "side", "v": 1})).await["sent"], 1);
    assert_eq!(c.next_message().await["v"], 1);
    assert_eq!(s.get("authtoken/channel/remove/side/tok-a").await, json!({"status": "success"}));
    assert_eq!(s.post("publish", json!({"channel": "side", "v": 2})).await["sent"], 0);
}

#[tokio::test]
async fn presence_list_route_works() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    for method in [Method::GET, Method::POST] {
        assert_eq!(
            s.call(method.clone(), "user/presence-list/5/7,9", None, Some(SERVICE_KEY), None).await,
            (200, json!({"status": "success"}))
        );
        assert_eq!(
            s.call(method.clone(), "user/presence-list/5x/7", None, Some(SERVICE_KEY), None).await.1,
            json!({"status": "failed", "error": "Invalid uid."})
        );
        assert_eq!(
            s.call(method, "user/presence-list/5/7,x", None, Some(SERVICE_KEY), None).await.1,
            json!({"status": "failed", "error": "Invalid uid."})
        );
    }
}

#[tokio::test]
async fn kick_and_logout_answer_success() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    for method in [Method::GET, Method::POST] {
        assert_eq!(
            s.call(method.clone(), "user/kick/12", None, Some(SERVICE_KEY), None).await.1,
            json!({"status": "success"})
        );
        assert_eq!(
            s.call(method.clone(), "user/logout/abcdef", None, Some(SERVICE_KEY), None).await.1,
            json!({"status": "success"})
        );
        assert_eq!(
            s.call(method, "user/kick/abc", None, Some(SERVICE_KEY), None).await.1,
            json!({"status": "failed", "error": "Invalid uid."})
        );
    }
}

#[tokio::test]
async fn debug_toggle_switches_both_ways() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    assert_eq!(s.post("debug/toggle", json!({})).await, json!({"error": "Required parameters are missing."}));
    assert_eq!(
        s.post("debug/toggle", json!({"debug": true})).await,
        json!({"status": "success", "debug": true})
    );
    // The original refused a falsy value (spec 7.7).
    assert_eq!(
        s.post("debug/toggle", json!({"debug": false})).await,
        json!({"status": "success", "debug": false})
    );
}

#[tokio::test]
async fn content_token_routes() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    let missing = json!({"error": "Required parameters are missing."});
    assert_eq!(s.post("content/token", json!({"channel": "c1"})).await, missing);
    assert_eq!(s.post("content/token", json!({"token": "t"})).await, missing);
    assert_eq!(
        s.post("content/token", json!({"channel": "c1", "token": "t"})).await,
        json!({"status": "success"})
    );
    assert_eq!(s.post("content/token/users", json!({})).await, missing);
    assert_eq!(
        s.post("content/token/users", json!({"channel": "c1"})).await,
        json!({"users": {"uids": [], "authTokens": []}})
    );
    assert_eq!(
        s.post("content/token/users", json!({"channel": "unknown"})).await,
        json!({"users": {"uids": [], "authTokens": []}})
    );
    assert_eq!(
        s.post("content/token/message", json!({"channel": "unknown", "x": 1})).await,
        json!({"error": "Invalid message"})
    );
    assert_eq!(s.post("content/token/message", json!({"x": 1})).await, json!({"error": "Invalid message"}));
    assert_eq!(
        s.post("content/token/message", json!({"channel": "c1"})).await,
        json!({"status": "success", "sent": 0})
    );
}

/// Issue 14.1: by default (`contentTokenStatus = "auto"`) a Drupal 7 request (no Content-Type)
/// gets `{"status":"ok"}`, the only answer Drupal 7's `nodejs_send_content_channel_token()`
/// accepts, and a Drupal 8+ request (`application/json`) gets `{"status":"success"}`.
#[tokio::test]
async fn content_token_status_follows_the_drupal_version_by_default() {
    let (d, s) = TestServer::with_fake_drupal().await;
    let d8 = s.post("content/token", json!({"channel": "room_a", "token": "tok-d8"})).await;
    assert_eq!(d8, json!({"status": "success"}));
    let d7 = s
        .post_drupal7("content/token", r#"{"token":"tok-d7","channel":"room_b","notifyOnDisconnect":false}"#);
    assert_eq!(d7.await, (200, json!({"status": "ok"})));
    // Any Content-Type counts as "not Drupal 7", even one that is not JSON.
    let (status, v) = s
        .call(
            Method::POST,
            "content/token",
            Some(r#"{"channel":"room_c","token":"tok-c"}"#.into()),
            Some(SERVICE_KEY),
            Some("text/plain"),
        )
        .await;
    assert_eq!((status, v), (200, json!({"status": "success"})));
    // Errors keep their shape whatever the Drupal.
    assert_eq!(
        s.post_drupal7("content/token", r#"{"channel":"room_b"}"#).await,
        (200, json!({"error": "Required parameters are missing."}))
    );
    // Both tokens were stored: a page presenting either joins its channel.
    d.answer("page", Answer::valid(5, &[]));
    let tokens = [("room_b", "tok-d7"), ("room_a", "tok-d8")];
    let (_c, data) = TestClient::connect_auth_with(&s.ws_url(), "page", &tokens).await;
    assert_eq!(data["contentTokens"], json!({"room_a": "tok-d8", "room_b": "tok-d7"}));
    let users = s.post("content/token/users", json!({"channel": "room_b"})).await;
    assert_eq!(users["users"]["uids"], json!([5]), "{users}");
    let users = s.post("content/token/users", json!({"channel": "room_a"})).await;
    assert_eq!(users["users"]["uids"], json!([5]), "{users}");
}

#[tokio::test]
async fn content_token_status_can_be_forced_either_way() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let ok = TestServer::start_with(&d, &[("contentTokenStatus", "ok")]).await;
    assert_eq!(
        ok.post("content/token", json!({"channel": "c1", "token": "t"})).await,
        json!({"status": "ok"})
    );
    let d7 = ok.post_drupal7("content/token", r#"{"channel":"c1","token":"t2"}"#).await;
    assert_eq!(d7, (200, json!({"status": "ok"})));
    let success = TestServer::start_with(&d, &[("contentTokenStatus", "success")]).await;
    let d7 = success.post_drupal7("content/token", r#"{"channel":"c1","token":"t3"}"#).await;
    assert_eq!(d7, (200, json!({"status": "success"})));
    assert_eq!(
        success.post("content/token", json!({"channel": "c1", "token": "t4"})).await,
        json!({"status": "success"})
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404s_and_bad_bodies_json_4xx() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    for method in [Method::GET, Method::POST, Method::PUT] {
        assert_eq!(
            s.call(method, "no/such/route", None, Some(SERVICE_KEY), None).await,
            (404, json!({"error": "Not Found."}))
        );
    }
    let (status, v) =
        s.call(Method::POST, "publish", Some("{\"channel\":".into()), Some(SERVICE_KEY), None).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().starts_with("Request body is not valid JSON"), "{v}");
    let (status, v) =
        s.call(Method::POST, "publish", Some("\u{0}garbage".into()), Some(SERVICE_KEY), None).await;
    assert_eq!(status, 400, "{v}");
    let big = format!("{{\"channel\":\"c\",\"data\":\"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let (status, v) = s.call(Method::POST, "publish", Some(big), Some(SERVICE_KEY), None).await;
    assert_eq!(status, 413);
    assert!(v["error"].as_str().unwrap().contains("1048576-byte limit"), "{v}");
    let (status, body) = s.call(Method::GET, "../favicon.ico", None, None, None).await;
    assert_eq!((status, body), (404, json!("Not Found.")));
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let d = FakeDrupal::start(SERVICE_KEY).await;
    let s = TestServer::start_with(&d, &[("bodyParserJsonLimit", "2kb")]).await;
    let ok = format!("{{\"channel\":\"c\",\"data\":\"{}\"}}", "x".repeat(1500));
    assert_eq!(s.call(Method::POST, "publish", Some(ok), Some(SERVICE_KEY), None).await.0, 200);
    let big = format!("{{\"channel\":\"c\",\"data\":\"{}\"}}", "x".repeat(2100));
    let (status, v) = s.call(Method::POST, "publish", Some(big), Some(SERVICE_KEY), None).await;
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("2048-byte limit"), "{v}");
}

/// Found by the `rest` fuzz target: axum's own answers under `/nodejs/` were not JSON (an empty
/// 405 for a method a route does not take, a plain-text 400 for a path segment that is not
/// UTF-8 once percent-decoded).
#[tokio::test]
async fn router_errors_are_json_too() {
    let (_d, s) = TestServer::with_fake_drupal().await;
    let (status, v) = s.call(Method::GET, "publish", None, Some(SERVICE_KEY), None).await;
    assert_eq!((status, v), (405, json!({"error": "Method Not Allowed."})));
    let (status, v) = s.call(Method::DELETE, "user/kick/5", None, Some(SERVICE_KEY), None).await;
    assert_eq!((status, v), (405, json!({"error": "Method Not Allowed."})));
    let (status, v) = s.call(Method::GET, "user/kick/%FF", None, Some(SERVICE_KEY), None).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("Invalid URL")), "{v}");
}
