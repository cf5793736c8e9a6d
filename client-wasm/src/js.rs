//! The JavaScript the wasm calls: the clock, the random source, `console.warn`, and the
//! driver methods of the socket object of `drupal-js/src/core.js`, which owns the WebSocket,
//! the timer and every page object (settings, `Drupal.Nodejs`, callbacks, status). Arguments
//! are numbers and strings, plus the page's own values passed through untouched; an empty
//! string stands for "none". Keeping the page on the JavaScript side keeps the wasm and its
//! glue small (see `src/lib.rs`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn warn(text: &str);

    /// `performance.now()`.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn now() -> f64;
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub fn random() -> f64;

    /// The socket object of `core.js`: `Drupal.Nodejs.socket`, or what `io()` returned.
    pub type Driver;
    /// Opens a WebSocket to `url`; its frames and its close come back tagged with `conn`. Our
    /// shim hands the client the page's current credentials first (`Client.credentials`,
    /// `Client.token`).
    #[wasm_bindgen(method, js_name = _open)]
    pub fn open(this: &Driver, conn: u32, url: &str);
    /// Sends `text` on connection `conn`, with `value` (unless undefined) put in as the
    /// `message` member (`members` false) or as members after the frame's own (`members`).
    #[wasm_bindgen(method, js_name = _send)]
    pub fn send(this: &Driver, conn: u32, text: &str, value: &JsValue, members: bool);
    /// Closes connection `conn` without reporting its close.
    #[wasm_bindgen(method, js_name = _close)]
    pub fn close(this: &Driver, conn: u32, reason: &str);
    /// Calls the client's `tick()` after `delay` ms (one timer; a negative delay cancels it).
    #[wasm_bindgen(method, js_name = _arm)]
    pub fn arm(this: &Driver, delay: f64);
    /// Runs the socket's listeners of a socket.io event (io facade); `reason` is the
    /// `disconnect` reason or the `connect_error` message.
    #[wasm_bindgen(method, js_name = _fire)]
    pub fn fire(this: &Driver, event: &str, reason: &str);
    /// Delivers a Drupal message: the module's rules, then the listeners (`listeners`: 0 none,
    /// 1 channel callbacks of `channel`, 2 broadcast callbacks) with `meta` {channel, stream,
    /// offset, epoch} (`offset` negative: not recorded).
    #[wasm_bindgen(method, js_name = _deliver)]
    pub fn deliver(
        this: &Driver,
        message: &JsValue,
        listeners: u32,
        channel: &str,
        stream: &str,
        offset: f64,
        epoch: &str,
    );
    /// Delivers the presence notification `{uid, event}` the page missed while disconnected.
    #[wasm_bindgen(method, js_name = _presence)]
    pub fn presence(this: &Driver, uid: f64, online: bool);
    /// After a reconnect: the channels recovered and those not recovered, each list joined
    /// with a NUL character (`recoveryFailed` handlers, status).
    #[wasm_bindgen(method, js_name = _recovery)]
    pub fn recovery(this: &Driver, recovered: &str, failed: &str);
    /// Runs this kind of `connectionSetupHandlers` (our shim).
    #[wasm_bindgen(method, js_name = _setup)]
    pub fn setup(this: &Driver, kind: &str);
    /// The answer to the request `id`: `value` (`ok`), or the refusal `code` and `message`.
    #[wasm_bindgen(method, js_name = _reply)]
    pub fn reply(this: &Driver, id: u32, ok: bool, value: &JsValue, code: &str, message: &str);
    /// Shows the state on the socket and dispatches `drupal-push:status` (numbers are -1 when
    /// unknown).
    #[wasm_bindgen(method, js_name = _status)]
    pub fn status(
        this: &Driver,
        state: &str,
        socket_id: &str,
        uid: f64,
        attempts: u32,
        last_close: f64,
        retry_in_ms: f64,
    );
}
