//! The JavaScript the wasm calls: the clock, the random source, `console.warn`, and the one
//! driver method of the socket object of `drupal-js/src/core.js`, which owns the WebSocket,
//! the timer and every page object (settings, `Drupal.Nodejs`, callbacks, status).
//!
//! Every action goes through [`Driver::act`]: a kind ([`act`]), numbers, three texts (the
//! fields below: x, y, z) and a page value passed back untouched. One import instead
//! of one per action keeps the glue small (the payload budget, see `src/lib.rs`), as
//! `Client.input` does the other way.

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
    /// Carries out one action: `kind` ([`act`]) says what `a`, `n`, `m`, `o`, the texts
    /// `x`, `y`, `z` and `value` carry.
    #[wasm_bindgen(method, js_name = _do)]
    #[allow(clippy::too_many_arguments)]
    pub fn act(
        this: &Driver,
        kind: u32,
        a: u32,
        n: f64,
        m: f64,
        o: f64,
        x: &str,
        y: &str,
        z: &str,
        value: &JsValue,
    );
}

/// The kinds of [`Driver::act`] calls (`S._do` in `drupal-js/src/core.js`); "none" numbers are
/// -1, absent strings empty. "text = a, b" means x = a, y = b.
pub mod act {
    /// Open a WebSocket to text = url; its frames and close come back tagged with `a` = conn.
    /// Our shim hands the client the page's current credentials first.
    pub const OPEN: u32 = 0;
    /// Send text on connection `a`, with `value` (unless undefined) put in as the `message`
    /// member (`n` = 0) or as members after the frame's own (`n` = 1).
    pub const SEND: u32 = 1;
    /// Close connection `a` (text = reason) without reporting its close.
    pub const CLOSE: u32 = 2;
    /// Call the client's tick input after `n` ms (one timer; a negative delay cancels it).
    pub const ARM: u32 = 3;
    /// Run the socket's listeners of the socket.io event text = event, reason (io facade);
    /// the reason is the `disconnect` reason or the `connect_error` message.
    pub const FIRE: u32 = 4;
    /// Deliver the Drupal message `value`: the module's rules, then the listeners (`a`: 0
    /// none, 1 channel callbacks, 2 broadcast callbacks) with meta {channel, stream, offset,
    /// epoch}: text = channel, stream, epoch; `n` = offset (negative: not recorded).
    pub const DELIVER: u32 = 5;
    /// Deliver the presence notification `{uid: n, event}` the page missed while disconnected
    /// (`a` = 1 online, 0 offline).
    pub const PRESENCE: u32 = 6;
    /// After a reconnect: x = the channels recovered, y = those not recovered, each list
    /// joined with NUL characters: `recoveryFailed` handlers, status.
    pub const RECOVERY: u32 = 7;
    /// Run text = this kind of `connectionSetupHandlers` (our shim).
    pub const SETUP: u32 = 8;
    /// The answer to the request `a`: `value` (`n` = 1), or (`n` = 0) the refusal text =
    /// code, message.
    pub const REPLY: u32 = 9;
    /// Show the state on the socket and dispatch `drupal-push:status`: text = state,
    /// socketId; `a` = attempts, `n` = uid, `m` = last close code, `o` = retry in ms.
    pub const STATUS: u32 = 10;
}
