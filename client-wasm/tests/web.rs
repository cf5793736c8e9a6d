//! Browser tests of the glue (headless Chromium through wasm-bindgen-test-runner):
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p drupal-push-client --target wasm32-unknown-unknown`.
//!
//! Page code is real JavaScript built with `new Function`, so these tests exercise the same
//! calls, `this` bindings and exceptions a Drupal page does.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use drupal_push_client::dispatch::{Listeners, MessageView};
use drupal_push_client::incoming::Incoming;
use drupal_push_client::js_frames;
use drupal_push_client::out::Out;
use drupal_push_client::page::{self, Page};
use drupal_push_client::settings::{self, PageLocation};
use js_sys::{Function, JSON, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::{JsCast, JsValue};
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

/// A JSON value as plain JS objects and arrays, as `JSON.parse` gives page code.
fn to_js(message: &Value) -> JsValue {
    JSON::parse(&message.to_string()).unwrap()
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
    let m = to_js(&json!({"callback": "a", "data": {"n": 1}}));
    page.run_callbacks(&m, None);
    assert_eq!(take_log(&f), json!([["a", ["a"], true]]));
    assert_eq!(json_of(&get(&m, "callback")), json!(["a"]), "the message object itself is changed");
}

#[wasm_bindgen_test]
fn a_throwing_callback_does_not_stop_the_others() {
    let (page, f) = fixture();
    page.run_callbacks(
        &to_js(&json!({"callback": ["bad", "missing", "notAFunction", "b"], "data": {"n": 2}})),
        None,
    );
    assert_eq!(take_log(&f), json!([["b", 2]]));
    page.run_callbacks(&to_js(&json!({"data": {"n": 3}})), None);
    assert_eq!(take_log(&f), json!([["a", null, true], ["b", 3]]), "fallback: every callback");
}

#[wasm_bindgen_test]
fn presence_content_channel_and_self_skip() {
    let (page, f) = fixture();
    page.run_callbacks(&to_js(&json!({"presenceNotification": {"uid": 5, "event": "online"}})), None);
    let content =
        json!({"channel": "c", "contentChannelNotification": true, "data": {"uid": 7, "type": "disconnect"}});
    page.run_callbacks(&to_js(&content), None);
    assert_eq!(take_log(&f), json!([["p", "online"], ["c", 7]]));
    let own = to_js(&json!({"callback": "b", "clientSocketId": "me"}));
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
    page.run_callbacks(&to_js(&json!({"callback": "late"})), None);
    assert_eq!(take_log(&f), json!([["late"]]));
}

#[wasm_bindgen_test]
fn messages_reach_callbacks_as_plain_objects() {
    let m = to_js(&json!({"data": {"subject": "Hi", "list": [1, {"x": true}]}}));
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
        assert_eq!(page::view_of(&to_js(&m)), MessageView::from_json(&m), "{m}");
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
    assert_eq!((token.as_deref(), tokens.get("chat")), (Some("t"), Some("secret")));
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
        let js = to_js(&settings);
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
        r#"{"type":"error","code":"rate-limited","message":"slow down","id":7}"#,
        r#"{"type":"message","channel":"chat_1","message":{"text":"hi","senderUid":5,"senderSocketId":"s"},"offset":3,"epoch":"e1"}"#,
        r#"{"type":"ack","id":8,"result":{"sent":2}}"#,
        r#"{"type":"ack","id":9,"result":null}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"pong"}"#,
    ];
    for text in frames {
        let from_js = match js_frames::parse(&JsValue::from_str(text)) {
            Incoming::Message { message, channel, meta } => {
                Incoming::Message { message: json_of(&message), channel, meta: json_of(&meta) }
            }
            Incoming::Ack { id, result } => Incoming::Ack { id, result: json_of(&result) },
            Incoming::Hello { socket_id, heartbeat_ms } => Incoming::Hello { socket_id, heartbeat_ms },
            Incoming::Authenticated { socket_id, uid } => Incoming::Authenticated { socket_id, uid },
            Incoming::Error { code, message, id } => Incoming::Error { code, message, id },
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

/// The browser writes exactly the JSON the protocol crate's encoders write, for every frame the
/// client sends.
#[wasm_bindgen_test]
fn frames_encoded_in_js_match_the_protocol_crate() {
    let odd = json!({"n": [1.5, -2, 1e21, "é\u{1}\"\\", null, {"k": true}], "type": "chat"});
    let frames: Vec<Out<Value>> = vec![
        Out::Authenticate {
            auth_token: "abc".into(),
            content_tokens: [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
                .into_iter()
                .collect(),
        },
        Out::Authenticate { auth_token: "x".into(), content_tokens: Default::default() },
        Out::AuthenticateWith(json!({"authToken": "t", "contentTokens": {"c": "1"}})),
        Out::AuthenticateWith(json!({"authToken": "t", "contentTokens": []})),
        Out::Join { channel: "c".into(), token: "t".into() },
        Out::Ping,
        Out::Pong,
        Out::Message { message: odd.clone(), id: Some(7) },
        Out::Message { message: json!({"messageType": "x"}), id: None },
        Out::Publish { channel: "chat_1".into(), message: odd, echo: false, id: Some(4_000_000_000) },
        Out::Publish { channel: "c".into(), message: json!({}), echo: true, id: None },
    ];
    for frame in frames {
        let js_frame = match &frame {
            Out::AuthenticateWith(m) => Out::AuthenticateWith(to_js(m)),
            Out::Message { message, id } => Out::Message { message: to_js(message), id: *id },
            Out::Publish { channel, message, echo, id } => {
                Out::Publish { channel: channel.clone(), message: to_js(message), echo: *echo, id: *id }
            }
            Out::Authenticate { auth_token, content_tokens } => {
                Out::Authenticate { auth_token: auth_token.clone(), content_tokens: content_tokens.clone() }
            }
            Out::Join { channel, token } => Out::Join { channel: channel.clone(), token: token.clone() },
            Out::Ping => Out::Ping,
            Out::Pong => Out::Pong,
        };
        let js = js_frames::encode(&js_frame).unwrap().as_string().unwrap();
        // JSON.stringify keeps the page's member order and the token map's insertion order; the
        // crate's maps sort theirs. Everything else matches byte for byte.
        let ours: Value = serde_json::from_str(&js).unwrap();
        let crates: Value = serde_json::from_str(&frame.encode()).unwrap();
        assert_eq!(ours, crates, "{js}");
        assert!(js.starts_with(r#"{"type":"#), "type first: {js}");
        let maps = matches!(&frame, Out::Authenticate { content_tokens, .. } if content_tokens.len() > 1);
        if !maps && !matches!(frame, Out::AuthenticateWith(_) | Out::Message { .. } | Out::Publish { .. }) {
            assert_eq!(js, frame.encode(), "byte for byte");
        }
    }
}

#[wasm_bindgen_test]
fn channel_and_broadcast_listeners_run_after_the_module_rules() {
    let f = js(r#"
        const log = [];
        const rec = (name) => ({callback(m, meta) { log.push([name, m.callback, meta.channel, this.tag]); }, tag: name});
        const nodejs = {
          callbacks: {a: {callback(m) { log.push(['module', m.callback]); }}},
          presenceCallbacks: {}, contentChannelNotificationCallbacks: {}, connectionSetupHandlers: {},
          channelCallbacks: {
            'chat_42': rec('exact'),
            'chat_*': [rec('prefix1'), {callback() { throw new Error('listener boom'); }}, rec('prefix2')],
            'other': rec('other'),
            '*': rec('all'),
          },
          broadcastCallbacks: [rec('broadcast')],
          runCallbacks: null,
        };
        return {nodejs, log};
    "#);
    let page = Page { nodejs: get(&f, "nodejs").unchecked_into(), settings: JsValue::UNDEFINED };
    let meta = to_js(&json!({"channel": "chat_42", "offset": 3}));
    page.deliver(&to_js(&json!({"callback": "a"})), Some("chat_42"), &meta, Some("me"), None);
    assert_eq!(
        take_log(&f),
        json!([
            ["module", ["a"]],
            ["exact", ["a"], "chat_42", "exact"],
            ["prefix1", ["a"], "chat_42", "prefix1"],
            ["prefix2", ["a"], "chat_42", "prefix2"],
            ["all", ["a"], "chat_42", "all"]
        ]),
        "module first (the name wrapped), then every matching key in registration order; a throwing one does not stop the rest"
    );
    let broadcast = to_js(&json!({"broadcast": true, "channel": "chat_42"}));
    page.deliver(&broadcast, None, &to_js(&json!({"channel": null})), Some("me"), None);
    assert_eq!(
        take_log(&f),
        json!([["module", null], ["broadcast", null, null, "broadcast"]]),
        "broadcasts skip channel callbacks"
    );
    let own = to_js(&json!({"callback": "a", "clientSocketId": "me"}));
    page.deliver(&own, Some("chat_42"), &meta, Some("me"), None);
    assert_eq!(take_log(&f), json!([]), "self-skip for both");
    let presence = to_js(&json!({"presenceNotification": {"uid": 1, "event": "online"}}));
    page.deliver(&presence, None, &to_js(&json!({"channel": null})), None, None);
    assert_eq!(
        take_log(&f),
        json!([]),
        "no presence callbacks registered, and no listener for server notices"
    );
    page.run_listeners(&Listeners::Channel("nope".into()), &own, &meta);
    assert_eq!(take_log(&f), json!([["all", "a", "chat_42", "all"]]), "only the star matches");
}

#[wasm_bindgen_test]
fn the_facade_hands_messages_to_its_socket_listeners() {
    let f = js(r#"
        const log = [];
        const socket = {_fire(event, arg) { log.push(['fire', event, arg.n]); }};
        const nodejs = {callbacks: {}, channelCallbacks: {room: {callback(m) { log.push(['room', m.n]); }}}, broadcastCallbacks: []};
        return {nodejs, socket, log};
    "#);
    let page = Page { nodejs: get(&f, "nodejs").unchecked_into(), settings: JsValue::UNDEFINED };
    let socket = get(&f, "socket");
    page.deliver(
        &to_js(&json!({"n": 1})),
        Some("room"),
        &to_js(&json!({"channel": "room"})),
        None,
        Some(&socket),
    );
    assert_eq!(take_log(&f), json!([["fire", "message", 1], ["room", 1]]));
}
