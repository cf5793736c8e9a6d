//! The JavaScript the wasm calls: the clock, the random source, `console.warn`, and the one
//! driver method of the socket object of `drupal-js/src/core.js`, which owns the WebSocket,
//! the timer and every page object (settings, `Drupal.Nodejs`, callbacks, status).
//!
//! Every action goes through [`Driver::act`]: a kind ([`crate::abi::act`], which says what each
//! carries), numbers, three texts (x, y, z) and a page value passed back untouched. One import
//! instead of one per action keeps the glue small (the payload budget, see `src/lib.rs`), as
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
    /// Carries out one action: `kind` ([`crate::abi::act`]) says what `a`, `n`, `m`, `o`, the texts
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
