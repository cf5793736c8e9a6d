//! Browser tests of the page side of the client (headless Chromium through
//! wasm-bindgen-test-runner):
//! `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p drupal-push-client --target wasm32-unknown-unknown`.
//!
//! `drupal-js/src/page.js` (the JavaScript that reads frames into the wasm's inputs, writes the
//! page's values into its frames, reads the settings and applies every dispatch rule) is
//! evaluated on its own, after the generated `abi.js`: these tests pin what it reads and writes
//! against the protocol crate, and check its dispatch rules (the only definition of them) with
//! real page callbacks (`this` bindings, exceptions).
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use drupal_push_client::incoming::{FrameReader, Incoming};
use drupal_push_client::out::Out;
use drupal_push_client::recovery::Position;
use drupal_push_client::tokens::TokenMap;
use js_sys::{Array, Function, JSON, Reflect};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ABI_JS: &str = include_str!("../../drupal-js/src/abi.js");
const PAGE_JS: &str = include_str!("../../drupal-js/src/page.js");

/// Runs a JS function body (after abi.js and page.js in one scope, once, as build.sh joins
/// them) and returns its result.
fn js(body: &str) -> JsValue {
    let loaded = js_sys::eval("window.drupalPush && window.drupalPush.read").unwrap();
    if loaded.is_undefined() {
        Function::new_no_args(&[ABI_JS, PAGE_JS].concat()).call0(&JsValue::NULL).unwrap();
    }
    Function::new_no_args(body).call0(&JsValue::NULL).unwrap()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

fn json_of(v: &JsValue) -> Value {
    if v.is_undefined() {
        return Value::Null;
    }
    serde_json::from_str(&String::from(JSON::stringify(v).unwrap())).unwrap()
}

fn to_js(message: &Value) -> JsValue {
    JSON::parse(&message.to_string()).unwrap()
}

/// A `Drupal.Nodejs`-shaped object whose callbacks log into `fixture.log`, as `window.f`.
fn fixture() -> JsValue {
    js(r#"
        const log = [];
        const rec = (name) => ({callback(m, meta) { log.push([name, m.callback, meta.channel, meta.offset, this.tag]); }, tag: name});
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
                 recoveryFailed(channels) { log.push(['recoveryFailed', channels]); }},
            h2: {connect() { throw new Error('setup boom'); }, disconnect() { log.push(['disconnect']); }},
          },
          channelCallbacks: {
            'chat_42': rec('exact'),
            'chat_*': [rec('prefix1'), {callback() { throw new Error('listener boom'); }}, rec('prefix2')],
            'other': rec('other'),
            '*': rec('all'),
          },
          broadcastCallbacks: [rec('broadcast')],
        };
        return window.f = {nodejs, log};
    "#)
}

fn take_log(f: &JsValue) -> Value {
    let log = json_of(&get(f, "log"));
    get(f, "log").unchecked_into::<Array>().set_length(0);
    log
}

/// `drupalPush.runCallbacks(w, nodejs, m, own)` on a message given as JSON; returns it as
/// the callbacks left it.
fn run_callbacks(m: &Value, own: &str) -> Value {
    let own = json!(own).to_string();
    json_of(&js(&[
        "const m = ",
        &m.to_string(),
        "; drupalPush.runCallbacks(f.nodejs, m, ",
        &own,
        "); return m;",
    ]
    .concat()))
}

/// The module's rules (spec 4.2) on messages of every shape: which registry entries run, in
/// which order.
#[wasm_bindgen_test]
fn the_module_rules_pick_callbacks_by_the_message_shape() {
    let f = js(r#"
        const log = [];
        const entry = (tag) => ({callback() { log.push(tag); }});
        return window.g = {log, nodejs: {
          callbacks: {a: entry('a'), b: entry('b'), 3: entry('3'), x: entry('x')},
          presenceCallbacks: {p: entry('p')},
          contentChannelNotificationCallbacks: {c: entry('c')},
        }};
    "#);
    let run = |m: Value, own: &str| {
        js(&["drupalPush.runCallbacks(g.nodejs, ", &m.to_string(), ", ", &json!(own).to_string(), ");"]
            .concat());
        let log = json_of(&get(&f, "log"));
        get(&f, "log").unchecked_into::<Array>().set_length(0);
        log
    };
    let all = json!(["3", "a", "b", "x"]);
    for (m, own, want) in [
        (json!({"callback": "x"}), "", json!(["x"])),
        (json!({"callback": ["b", "a", 3, null, "missing"]}), "", json!(["b", "a", "3"])),
        (json!({"callback": []}), "", json!([])),
        (json!({"callback": {"a": 1}}), "", json!([])),
        (
            json!({"callback": "x", "presenceNotification": {}, "contentChannelNotification": 1}),
            "",
            json!(["x"]),
        ),
        (json!({"presenceNotification": {"uid": 5, "event": "online"}}), "", json!(["p"])),
        (json!({"presenceNotification": null, "contentChannelNotification": true}), "", json!(["p"])),
        (json!({"contentChannelNotification": false}), "", json!(["c"])),
        (json!({"data": {}}), "", all.clone()),
        (json!({"callback": "", "presenceNotification": {}}), "", json!(["p"])),
        (json!({"callback": 0}), "", all.clone()),
        (json!({"callback": false}), "", all.clone()),
        (json!({"callback": null}), "", all.clone()),
        (json!({"callback": "x", "clientSocketId": "me"}), "me", json!([])),
        (json!({"clientSocketId": "me"}), "me", json!([])),
        (json!({"callback": "x", "clientSocketId": "me"}), "you", json!(["x"])),
        (json!({"callback": "x", "clientSocketId": "me"}), "", json!(["x"])),
        (json!({"clientSocketId": ""}), "", all.clone()),
        (json!({"clientSocketId": 5}), "5", all.clone()),
    ] {
        assert_eq!(run(m.clone(), own), want, "{m} on {own:?}");
    }
}

/// Which listeners a delivered message reaches (decided before the module's rules run), and
/// the channel patterns.
#[wasm_bindgen_test]
fn listeners_follow_the_envelope_channel_broadcast_and_self_skip() {
    let of = |channel: &str, m: Value, own: &str| {
        let args = [json!(channel).to_string(), m.to_string(), json!(own).to_string()].join(", ");
        js(&["return drupalPush.listenersOf(", &args, ");"].concat()).as_f64().unwrap()
    };
    assert_eq!(of("chat_1", json!({"channel": "chat_1", "callback": "x"}), ""), 1.0);
    let b = json!({"broadcast": true, "channel": "nodejs_notify", "data": {}});
    assert_eq!(of("", b.clone(), ""), 2.0, "a broadcast has no envelope channel");
    assert_eq!(of("nodejs_notify", b, ""), 1.0, "the envelope decides, not the message's channel");
    assert_eq!(of("", json!({"presenceNotification": {"uid": 5, "event": "online"}}), ""), 0.0);
    assert_eq!(of("", json!({"callback": "clientAuthenticated"}), ""), 0.0);
    assert_eq!(of("", json!({"broadcast": 0}), ""), 0.0);
    let mine = json!({"channel": "c", "clientSocketId": "me", "broadcast": true});
    assert_eq!(of("c", mine.clone(), "me"), 0.0, "self-skip applies to listeners too");
    assert_eq!(of("", mine.clone(), "me"), 0.0);
    assert_eq!(of("c", mine.clone(), "you"), 1.0);
    assert_eq!(of("", mine, ""), 2.0);
    for m in [json!({"callback": "a"}), json!({"contentChannelNotification": true}), json!({"data": 1})] {
        assert_eq!(of("room", m.clone(), "me"), 1.0, "whatever the module's rules decide: {m}");
    }

    let matches: Function = js("return drupalPush.matches;").unchecked_into();
    for (pattern, channel, want) in [
        ("chat_42", "chat_42", true),
        ("chat_42", "chat_421", false),
        ("chat_4", "chat_42", false),
        ("chat_*", "chat_42", true),
        ("chat_*", "chat_", true),
        ("chat_*", "chat", false),
        ("chat_*", "other_chat_1", false),
        ("*", "anything", true),
        ("chat*_", "chat_1_", false),
        ("chat*_", "chat*_", true),
        ("", "chat", false),
    ] {
        let got = matches.call2(&JsValue::NULL, &pattern.into(), &channel.into()).unwrap();
        assert_eq!(got.as_bool(), Some(want), "{pattern} {channel}");
    }
}

#[wasm_bindgen_test]
fn single_callback_is_wrapped_and_called_with_its_entry_as_this() {
    let f = fixture();
    let m = run_callbacks(&json!({"callback": "a", "data": {"n": 1}}), "");
    assert_eq!(take_log(&f), json!([["a", ["a"], true]]));
    assert_eq!(m["callback"], json!(["a"]), "the message object itself is changed");
}

#[wasm_bindgen_test]
fn a_throwing_callback_does_not_stop_the_others() {
    let f = fixture();
    run_callbacks(&json!({"callback": ["bad", "missing", "notAFunction", "b"], "data": {"n": 2}}), "");
    assert_eq!(take_log(&f), json!([["b", 2]]));
    run_callbacks(&json!({"data": {"n": 3}}), "");
    assert_eq!(take_log(&f), json!([["a", null, true], ["b", 3]]), "fallback: every callback");
}

#[wasm_bindgen_test]
fn presence_content_channel_and_self_skip() {
    let f = fixture();
    run_callbacks(&json!({"presenceNotification": {"uid": 5, "event": "online"}}), "");
    run_callbacks(&json!({"channel": "c", "contentChannelNotification": true, "data": {"uid": 7}}), "");
    assert_eq!(take_log(&f), json!([["p", "online"], ["c", 7]]));
    run_callbacks(&json!({"callback": "b", "clientSocketId": "me"}), "me");
    assert_eq!(take_log(&f), json!([]));
    run_callbacks(&json!({"callback": "b", "clientSocketId": "me"}), "other");
    assert_eq!(take_log(&f), json!([["b", null]]));
}

#[wasm_bindgen_test]
fn setup_handlers_run_by_kind_with_their_argument_and_survive_exceptions() {
    let f = fixture();
    js("['connect', 'disconnect', 'connectionFailure'].forEach((k) => drupalPush.runSetupHandlers(f.nodejs, k));
        drupalPush.runSetupHandlers(f.nodejs, 'recoveryFailed', ['chat', '*']);");
    assert_eq!(take_log(&f), json!([["connect", true], ["disconnect"], ["recoveryFailed", ["chat", "*"]]]));
}

#[wasm_bindgen_test]
fn channel_and_broadcast_listeners_get_the_meta() {
    let f = fixture();
    js("drupalPush.listeners(f.nodejs, 1, 'chat_42', {callback: 'x'}, {channel: 'chat_42', offset: 3});");
    assert_eq!(
        take_log(&f),
        json!([
            ["exact", "x", "chat_42", 3, "exact"],
            ["prefix1", "x", "chat_42", 3, "prefix1"],
            ["prefix2", "x", "chat_42", 3, "prefix2"],
            ["all", "x", "chat_42", 3, "all"]
        ]),
        "every matching key in registration order; a throwing one does not stop the rest"
    );
    js("drupalPush.listeners(f.nodejs, 2, '', {broadcast: true}, {channel: null});");
    assert_eq!(take_log(&f), json!([["broadcast", null, null, null, "broadcast"]]));
    js("drupalPush.listeners(f.nodejs, 0, 'chat_42', {}, {channel: 'chat_42'});");
    assert_eq!(take_log(&f), json!([]), "kind 0: none (self-skip, server notices)");
    js("drupalPush.listeners(f.nodejs, 1, 'nope', {}, {channel: 'nope'});");
    assert_eq!(take_log(&f), json!([["all", null, "nope", null, "all"]]), "only the star matches");
}

#[wasm_bindgen_test]
fn settings_of_drupal8_and_drupal7_pages() {
    let cases = [
        (
            json!({"client": {"scheme": "https", "host": "push", "port": 443, "path": "/p"},
                   "nodejs": {"host": "in", "port": "8080"}, "authToken": "a",
                   "contentTokens": {"c": "t", "n": 5, "x": null}, "connectTimeout": 900}),
            json!({"url": "wss://push:443/p", "authToken": "a", "tokens": [["c", "t"], ["n", "5"]], "timeout": 900}),
        ),
        (
            json!({"client": {"secure": "1", "host": "h", "port": 80}, "contentTokens": []}),
            json!({"url": "wss://h:80/ws", "authToken": "", "tokens": [], "timeout": 5000}),
        ),
        (
            json!({"nodejs": {"scheme": "http", "host": "::1", "port": 8080}, "authToken": 7}),
            json!({"url": "ws://[::1]:8080/ws", "authToken": "7", "tokens": [], "timeout": 5000}),
        ),
        (json!({}), json!({"url": "ws://here/ws", "authToken": "", "tokens": [], "timeout": 5000})),
    ];
    for (settings, expected) in cases {
        let read = js(&[
            "return drupalPush.settings(",
            &settings.to_string(),
            ", {protocol: 'http:', hostname: 'here'});",
        ]
        .concat());
        assert_eq!(json_of(&read), expected, "{settings}");
    }
    assert!(js("return drupalPush.settings(undefined, location);").is_null());
}

/// The calls `drupalPush.read` makes for a frame text, read by the wasm's [`FrameReader`].
fn read_in_js(text: &str) -> Option<Incoming<Value>> {
    let calls = js(&[
        "const calls = []; drupalPush.read({input(...a) { calls.push(a); }}, 1, ",
        &json!(text).to_string(),
        "); return calls;",
    ]
    .concat());
    let mut reader = FrameReader::default();
    let mut frame = None;
    for call in calls.unchecked_into::<Array>().iter() {
        let a: Array = call.unchecked_into();
        let num = |i: u32| a.get(i).as_f64().unwrap();
        assert_eq!(num(1), 1.0, "the connection");
        let text = a.get(5).as_string().unwrap();
        let got = reader.input(num(0) as u32, num(2) as u32, num(3), num(4), &text, json_of(&a.get(6)));
        assert!(frame.is_none(), "one frame per text");
        frame = got;
    }
    frame
}

/// Every example frame of PROTOCOL.md, decoded by the protocol crate, reads the same when the
/// browser parses it (maps written in the sorted order the server's encoder writes them).
#[wasm_bindgen_test]
fn frames_parsed_in_js_match_the_protocol_crate() {
    js("");
    let frames = [
        r#"{"type":"hello","socketId":"k3j9x0q2m7a1","heartbeatMs":25000,"protocol":1}"#,
        r#"{"type":"authenticated","socketId":"k3j9x0q2m7a1","uid":5,"channels":["nodejs_user_5"]}"#,
        r#"{"type":"authenticated","socketId":"s","uid":"12","channels":[]}"#,
        r#"{"type":"authenticated","socketId":"s","uid":5,"channels":["nodejs_user_5","chat"],"streams":{"*":{"offset":3,"epoch":"z9y8x7"},"nodejs_user_5":{"offset":12,"epoch":"k3j9x0"}},"recovered":{"chat":true,"token:room":false},"online":[7,9]}"#,
        r#"{"type":"authenticated","socketId":"s","uid":0,"channels":[],"recovered":{},"online":[]}"#,
        r#"{"type":"joined","stream":"token:room","offset":3,"epoch":"a1b2c3"}"#,
        r#"{"type":"message","channel":"nodejs_notify","message":{"channel":"nodejs_notify","callback":"nodejsNotify","data":{"subject":"Hi","body":"…"}}}"#,
        r#"{"type":"message","channel":"chat","offset":12,"epoch":"k3j9x0","message":{"clientSocketId":"me","x":1}}"#,
        r#"{"type":"message","channel":"room","stream":"token:room","offset":3,"epoch":"a1b2c3","message":{"contentChannelNotification":true}}"#,
        r#"{"type":"message","stream":"*","offset":7,"epoch":"z9y8x7","message":{"broadcast":true,"callback":"b"}}"#,
        r#"{"type":"message","message":{"presenceNotification":{"uid":5,"event":"online"}}}"#,
        r#"{"type":"message","message":{"presenceNotification":{"uid":"6","event":"offline"}}}"#,
        r#"{"type":"error","code":"bad-frame","message":"invalid frame"}"#,
        r#"{"type":"error","code":"rate-limited","message":"slow down","id":7}"#,
        r#"{"type":"ack","id":8,"result":{"sent":2}}"#,
        r#"{"type":"ack","id":9,"result":null}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"pong"}"#,
    ];
    for text in frames {
        assert_eq!(read_in_js(text), Some(Incoming::decode(text)), "{text}");
    }
    for bad in ["nope", "[1]", r#"{"type":"resume"}"#, r#"{"type":"hello","socketId":"s"}"#] {
        assert!(matches!(read_in_js(bad), Some(Incoming::Invalid(_))), "{bad}");
        assert!(matches!(Incoming::decode(bad), Incoming::Invalid(_)), "{bad}");
    }
}

/// The browser writes the JSON the protocol crate's encoders write, for every frame the client
/// sends: the wasm's text with the page's value put in by `drupalPush.frame`.
#[wasm_bindgen_test]
fn frames_encoded_in_js_match_the_protocol_crate() {
    js("");
    let odd = json!({"n": [1.5, -2, 1e21, "é\u{1}\"\\", null, {"k": true}], "type": "chat"});
    let positions = Some(vec![("chat".to_string(), Position { offset: 12, epoch: "k3".into() })]);
    let tokens: TokenMap =
        [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into_iter().collect();
    let frames: Vec<Out<Value>> = vec![
        Out::Authenticate { auth_token: "abc".into(), content_tokens: tokens, positions: positions.clone() },
        Out::Authenticate { auth_token: "x".into(), content_tokens: TokenMap::default(), positions: None },
        Out::AuthenticateWith {
            data: json!({"authToken": "t", "contentTokens": {"c": "1"}}),
            positions: None,
        },
        Out::AuthenticateWith {
            data: json!({"authToken": "t", "contentTokens": []}),
            positions: positions.clone(),
        },
        Out::AuthenticateWith {
            data: json!({"positions": {"forged": 1}, "type": "x", "authToken": "t"}),
            positions,
        },
        Out::Join { channel: "c".into(), token: "t".into() },
        Out::Ping,
        Out::Message { message: odd.clone(), id: Some(7) },
        Out::Message { message: json!({"messageType": "x"}), id: None },
        Out::Publish { channel: "chat_1".into(), message: odd, echo: false, id: Some(4_000_000_000) },
        Out::Publish { channel: "c".into(), message: json!({}), echo: true, id: None },
    ];
    let frame_fn: Function = js("return drupalPush.frame;").unchecked_into();
    for frame in frames {
        let (value, members) = match frame.page_value() {
            Some((v, place)) => (to_js(v), place == drupal_push_client::out::Place::Members),
            None => (JsValue::UNDEFINED, false),
        };
        let args = Array::of3(&frame.text().into(), &value, &members.into());
        let written = frame_fn.apply(&JsValue::NULL, &args).unwrap().as_string().unwrap();
        let ours: Value = serde_json::from_str(&written).unwrap();
        let crates: Value = serde_json::from_str(&frame.encode()).unwrap();
        assert_eq!(ours, crates, "{written}");
        assert!(written.starts_with(r#"{"type":"#), "type first: {written}");
    }
}
