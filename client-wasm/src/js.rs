//! The few JavaScript functions the wasm calls, declared lean: property access without
//! exception plumbing (callers check that the target is an object first), console output with
//! Rust strings, and the driver methods of the socket object (`drupal-js/src/core.js`), which
//! owns the WebSocket, the timer and the `online`/`visibilitychange` listeners. Declaring them
//! here rather than through web-sys keeps the wasm and its glue small (see `src/lib.rs`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Reflect, js_name = get)]
    fn reflect_get(target: &JsValue, key: &str) -> JsValue;
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &str, value: &JsValue) -> bool;

    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    pub fn warn(text: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn error(text: &str, detail: &JsValue);

    /// `JSON.parse` taking the JS string as it came from the WebSocket.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
    /// `JSON.stringify`, keeping the result a JS string.
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    pub fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;

    /// `performance.now()`.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub fn now() -> f64;
    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    pub fn random() -> f64;

    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL_THIS: JsValue;

    /// The socket object of `core.js`: `Drupal.Nodejs.socket`, or what `io()` returned.
    pub type Driver;
    /// Opens a WebSocket to `url`; its frames and its close come back tagged with `conn`.
    #[wasm_bindgen(method, js_name = _open)]
    pub fn open(this: &Driver, conn: u32, url: &str);
    #[wasm_bindgen(method, js_name = _send)]
    pub fn send(this: &Driver, conn: u32, text: &JsValue);
    /// Closes connection `conn` without reporting its close.
    #[wasm_bindgen(method, js_name = _close)]
    pub fn close(this: &Driver, conn: u32, reason: &str);
    /// Calls the client's `tick()` after `delay` ms (one timer; a negative delay cancels it).
    #[wasm_bindgen(method, js_name = _arm)]
    pub fn arm(this: &Driver, delay: f64);
    /// Runs the socket's listeners of `event` (socket.io's events, io facade).
    #[wasm_bindgen(method, js_name = _fire)]
    pub fn fire(this: &Driver, event: &str, arg: &JsValue);
    /// Shows a status (`{state, socketId, …}`) on the socket and dispatches
    /// `drupal-push:status`; `facade` counts the socket as connected from `hello` on.
    #[wasm_bindgen(method, js_name = _status)]
    pub fn status(this: &Driver, status: &JsValue, facade: bool);
}

/// `target[key]`, or `undefined` when `target` is not an object or a function.
pub fn get(target: &JsValue, key: &str) -> JsValue {
    if target.is_object() || target.is_function() { reflect_get(target, key) } else { JsValue::UNDEFINED }
}

/// `target[key] = value` when `target` is an object or a function.
pub fn set(target: &JsValue, key: &str, value: &JsValue) {
    if target.is_object() || target.is_function() {
        reflect_set(target, key, value);
    }
}

/// The global object (`window`).
pub fn global() -> JsValue {
    GLOBAL_THIS.with(JsValue::clone)
}
