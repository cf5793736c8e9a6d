//! Browser tests of the glue (headless Chromium through wasm-bindgen-test-runner):
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p drupal-push-client --target wasm32-unknown-unknown`.
//!
//! Page code is real JavaScript built with `new Function`, so these tests exercise the same
//! calls, `this` bindings and exceptions a Drupal page does.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use drupal_push_client::dispatch::MessageView;
use drupal_push_client::incoming::Incoming;
use drupal_push_client::js_frames;
use drupal_push_client::machine::State;
use drupal_push_client::page::{self, Page};
use drupal_push_client::settings::{self, PageLocation};
use drupal_push_client::web::Client;
use js_sys::{Function, JSON, Promise, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Runs a JS function body and returns its result.
fn js(body: &str) -> JsValue {
    Function::new_no_args(body).call0(&JsValue::NULL).unwrap()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

fn json_of(v: &JsValue) -> Value {
    serde_json::from_str(&String::from(JSON::stringify(v).unwrap())).unwrap()
}

/// A `Drupal.Nodejs`-shaped object whose callbacks log into `fixture.log`.
fn fixture() -> (Page, JsValue) {
    let f = js(r#"
        const log = [];
        const nodejs = {
          callbacks: {
            a: {callback(m) { log.push(['a', m.callback, this === nodejs.callbacks.a]); }},
            bad: {callback() { throw new Error('boom'); }},
            b: {callback(m) { log.push(['b', m.data && m.data.n]); }},
            notAFunction: {callback: 5},
          },
          presenceCallbacks: {p: {callback(m) { log.push(['p', m.presenceNotification.event]); }}},
          contentChannelNotificationCallbacks: {c: {callback(m) { log.push(['c', m.data.uid]); }}},
          connectionSetupHandlers: {
            h1: {connect() { log.push(['connect', this === nodejs.connectionSetupHandlers.h1]); },
                 connectionFailure() { log.push(['failure']); }},
            h2: {connect() { throw new Error('setup boom'); }, disconnect() { log.push(['disconnect']); }},
          },
          socket: false,
        };
        return {nodejs, log};
    "#);
    let page = Page { nodejs: get(&f, "nodejs").unchecked_into(), settings: JsValue::UNDEFINED };
    (page, f)
}

fn take_log(f: &JsValue) -> Value {
    let log = json_of(&get(f, "log"));
    get(f, "log").unchecked_into::<js_sys::Array>().set_length(0);
    log
}

#[wasm_bindgen_test]
fn single_callback_is_wrapped_and_called_with_its_entry_as_this() {
    let (page, f) = fixture();
    let m = page::to_js(&json!({"callback": "a", "data": {"n": 1}}));
    page.run_callbacks(&m, None);
    assert_eq!(take_log(&f), json!([["a", ["a"], true]]));
    assert_eq!(json_of(&get(&m, "callback")), json!(["a"]), "the message object itself is changed");
}

#[wasm_bindgen_test]
fn a_throwing_callback_does_not_stop_the_others() {
    let (page, f) = fixture();
    page.run_callbacks(
        &page::to_js(&json!({"callback": ["bad", "missing", "notAFunction", "b"], "data": {"n": 2}})),
        None,
    );
    assert_eq!(take_log(&f), json!([["b", 2]]));
    page.run_callbacks(&page::to_js(&json!({"data": {"n": 3}})), None);
    assert_eq!(take_log(&f), json!([["a", null, true], ["b", 3]]), "fallback: every callback");
}

#[wasm_bindgen_test]
fn presence_content_channel_and_self_skip() {
    let (page, f) = fixture();
    page.run_callbacks(&page::to_js(&json!({"presenceNotification": {"uid": 5, "event": "online"}})), None);
    let content =
        json!({"channel": "c", "contentChannelNotification": true, "data": {"uid": 7, "type": "disconnect"}});
    page.run_callbacks(&page::to_js(&content), None);
    assert_eq!(take_log(&f), json!([["p", "online"], ["c", 7]]));
    let own = page::to_js(&json!({"callback": "b", "clientSocketId": "me"}));
    page.run_callbacks(&own, Some("me"));
    assert_eq!(take_log(&f), json!([]));
    page.run_callbacks(&own, Some("other"));
    assert_eq!(take_log(&f), json!([["b", null]]));
}

#[wasm_bindgen_test]
fn callbacks_registered_later_are_found() {
    let (page, f) = fixture();
    let late = Function::new_with_args(
        "nodejs, log",
        "nodejs.callbacks.late = {callback(m) { log.push(['late']); }};",
    );
    late.call2(&JsValue::NULL, &page.nodejs, &get(&f, "log")).unwrap();
    page.run_callbacks(&page::to_js(&json!({"callback": "late"})), None);
    assert_eq!(take_log(&f), json!([["late"]]));
}

#[wasm_bindgen_test]
fn messages_reach_callbacks_as_plain_objects() {
    let m = page::to_js(&json!({"data": {"subject": "Hi", "list": [1, {"x": true}]}}));
    let data = get(&m, "data");
    assert!(!data.is_instance_of::<js_sys::Map>());
    assert_eq!(get(&data, "subject").as_string().as_deref(), Some("Hi"));
    assert_eq!(json_of(&m), json!({"data": {"subject": "Hi", "list": [1, {"x": true}]}}));
}

#[wasm_bindgen_test]
fn the_js_view_of_a_message_matches_the_json_one() {
    for m in [
        json!({"callback": "x"}),
        json!({"callback": ["x", 2, null]}),
        json!({"callback": "", "presenceNotification": null}),
        json!({"callback": 0, "contentChannelNotification": false}),
        json!({"callback": {"a": "b"}, "clientSocketId": "s"}),
        json!({"clientSocketId": 5}),
    ] {
        assert_eq!(page::view_of(&page::to_js(&m)), MessageView::from_json(&m), "{m}");
    }
}

#[wasm_bindgen_test]
fn setup_handlers_run_by_kind_and_survive_exceptions() {
    let (page, f) = fixture();
    page.run_setup_handlers("connect");
    page.run_setup_handlers("disconnect");
    page.run_setup_handlers("connectionFailure");
    assert_eq!(take_log(&f), json!([["connect", true], ["disconnect"], ["failure"]]));
}

#[wasm_bindgen_test]
fn joined_tokens_are_stored_in_the_settings_even_over_an_empty_php_array() {
    let settings = js("return {authToken: 't', contentTokens: []};");
    let page = Page { nodejs: page::initial_nodejs_object(), settings: settings.clone() };
    page.store_token("chat", "secret");
    assert_eq!(json_of(&get(&settings, "contentTokens")), json!({"chat": "secret"}));
    let (token, tokens) = settings::credentials(&page.settings());
    assert_eq!((token.as_deref(), tokens["chat"].as_str()), (Some("t"), "secret"));
}

#[wasm_bindgen_test]
fn settings_come_from_drupal8_or_drupal7_globals() {
    js("window.drupalSettings = undefined; window.Drupal = {settings: {nodejs: {authToken: 'd7'}}};");
    let page = Page::from_window().unwrap();
    assert_eq!(settings::credentials(&page.settings()).0.as_deref(), Some("d7"));
    let nodejs = js("return Drupal.Nodejs;");
    assert_eq!(
        json_of(&nodejs),
        json!({"callbacks": {}, "presenceCallbacks": {}, "contentChannelNotificationCallbacks": {}, "connectionSetupHandlers": {}, "socket": false})
    );
    js("window.drupalSettings = {nodejs: {authToken: 'd8'}};");
    let page = Page::from_window().unwrap();
    assert_eq!(settings::credentials(&page.settings()).0.as_deref(), Some("d8"));
    js("delete window.drupalSettings; delete window.Drupal;");
}

#[wasm_bindgen_test]
fn settings_read_from_js_match_settings_read_from_json() {
    let page = PageLocation { secure: false, hostname: "here".into() };
    for settings in [
        json!({"client": {"scheme": "https", "host": "push", "port": 443, "path": "/p"},
               "nodejs": {"host": "in", "port": "8080"}, "authToken": "a",
               "contentTokens": {"c": "t", "n": 5, "x": null}, "connectTimeout": 900}),
        json!({"client": {"secure": "1", "host": "h", "port": 80}, "contentTokens": []}),
        json!({"nodejs": {"scheme": "http", "host": "::1", "port": 8080}, "authToken": 7}),
        json!({}),
    ] {
        let js = page::to_js(&settings);
        let from_js = settings::parse(&page::JsSource(&js), &page).unwrap();
        assert_eq!(from_js, settings::parse(&settings, &page).unwrap(), "{settings}");
    }
    assert!(settings::parse(&page::JsSource(&JsValue::UNDEFINED), &page).is_err());
}

/// Every example frame of PROTOCOL.md, built and decoded by the protocol crate, reads the same
/// when the browser parses it.
#[wasm_bindgen_test]
fn frames_parsed_in_js_match_the_protocol_crate() {
    let frames = [
        r#"{"type":"hello","socketId":"k3j9x0q2m7a1","heartbeatMs":25000,"protocol":1}"#,
        r#"{"type":"authenticated","socketId":"k3j9x0q2m7a1","uid":5,"channels":["nodejs_user_5"]}"#,
        r#"{"type":"authenticated","socketId":"s","uid":"12","channels":[]}"#,
        r#"{"type":"message","channel":"nodejs_notify","message":{"channel":"nodejs_notify","callback":"nodejsNotify","data":{"subject":"Hi","body":"…"}}}"#,
        r#"{"type":"message","message":{"presenceNotification":{"uid":5,"event":"online"}}}"#,
        r#"{"type":"error","code":"bad-frame","message":"invalid frame"}"#,
        r#"{"type":"error","code":"invalid-content-token","message":"no such token"}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"pong"}"#,
    ];
    for text in frames {
        let from_js = match js_frames::parse(&JsValue::from_str(text)) {
            Incoming::Message(m) => Incoming::Message(json_of(&m)),
            Incoming::Hello { socket_id, heartbeat_ms } => Incoming::Hello { socket_id, heartbeat_ms },
            Incoming::Authenticated { socket_id, uid } => Incoming::Authenticated { socket_id, uid },
            Incoming::Error { code, message } => Incoming::Error { code, message },
            Incoming::Ping => Incoming::Ping,
            Incoming::Pong => Incoming::Pong,
            Incoming::Invalid(why) => Incoming::Invalid(why),
        };
        assert_eq!(from_js, Incoming::decode(text), "{text}");
    }
    for bad in ["nope", "[1]", r#"{"type":"resume"}"#, r#"{"type":"hello","socketId":"s"}"#] {
        assert!(matches!(js_frames::parse(&JsValue::from_str(bad)), Incoming::Invalid(_)), "{bad}");
        assert!(matches!(Incoming::decode(bad), Incoming::Invalid(_)), "{bad}");
    }
}

/// The browser writes exactly the JSON the protocol crate's golden tests pin.
#[wasm_bindgen_test]
fn frames_encoded_in_js_match_the_protocol_crate() {
    use drupal_push_protocol::ClientFrame;
    use drupal_push_protocol::frames::{Authenticate, JoinTokenChannel};
    let mut extra = serde_json::Map::new();
    extra.insert("n".into(), json!([1.5, -2, 1e21, "é\u{1}\"\\", null, {"k": true}]));
    let frames = [
        ClientFrame::Authenticate(Authenticate {
            auth_token: "abc".into(),
            content_tokens: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into(),
            positions: None,
            extra: serde_json::Map::new(),
        }),
        ClientFrame::Authenticate(Authenticate {
            auth_token: "x".into(),
            content_tokens: Default::default(),
            positions: None,
            extra,
        }),
        ClientFrame::JoinTokenChannel(JoinTokenChannel { channel: "c".into(), content_token: "t".into() }),
        ClientFrame::Ping,
        ClientFrame::Pong,
    ];
    for frame in frames {
        let js = js_frames::encode(&frame).unwrap().as_string().unwrap();
        assert_eq!(js, frame.encode());
    }
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        let w = web_sys::window().unwrap();
        w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

async fn wait_for(what: &str, timeout_ms: i32, cond: impl Fn() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(waited < timeout_ms, "timed out after {timeout_ms} ms waiting for {what}");
        sleep(25).await;
        waited += 25;
    }
}

#[wasm_bindgen_test]
async fn an_unreachable_server_reports_failure_and_backs_off() {
    let (mut page, f) = fixture();
    page.settings = js("return {client: {scheme: 'http', host: '127.0.0.1', port: 45987}, \
                        authToken: 'x', connectTimeout: 300};");
    let events = js(
        "const e = []; window.addEventListener('drupal-push:status', ev => e.push(ev.detail.state)); return e;",
    );
    let client = Client::start(page.clone()).unwrap();
    let socket = get(&page.nodejs, "socket");
    assert!(socket.is_object(), "Drupal.Nodejs.socket is installed");
    wait_for("connectionFailure", 3000, || json_of(&get(&f, "log")).to_string().contains("failure")).await;
    wait_for("a second attempt", 5000, || client.status().attempts >= 2).await;
    let states = json_of(&events);
    assert!(states.as_array().unwrap().iter().any(|s| s == "waiting"), "{states}");
    assert_eq!(get(&socket, "connected"), JsValue::FALSE);
    assert!(get(&socket, "sessionid").is_undefined());
    let log = take_log(&f);
    assert_eq!(log, json!([["failure"]]), "no connect or disconnect: {log}");
    client.shutdown();
    assert!(matches!(client.status().state, State::Waiting | State::Connecting));
}

#[wasm_bindgen_test]
async fn going_online_cuts_the_backoff_short() {
    let (mut page, _f) = fixture();
    page.settings = js("return {client: {scheme: 'http', host: '127.0.0.1', port: 45988}, authToken: 'x'};");
    let client = Client::start(page).unwrap();
    wait_for("a backoff wait of at least 400 ms", 20_000, || {
        let s = client.status();
        s.state == State::Waiting && s.retry_in_ms.is_some_and(|ms| ms >= 400)
    })
    .await;
    let before = client.status().attempts;
    web_sys::window().unwrap().dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    let after = client.status();
    assert_eq!(after.attempts, before + 1, "reconnected at once, not after the backoff");
    assert_eq!(after.state, State::Connecting);
    client.shutdown();
    web_sys::window().unwrap().dispatch_event(&web_sys::Event::new("online").unwrap()).unwrap();
    assert_eq!(client.status().attempts, before + 1, "a shut-down client no longer listens");
}
