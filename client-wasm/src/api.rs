//! The JavaScript surface, used by the driver in `drupal-js/src/core.js` and `page.js` (the
//! socket object of both our shim and the io facade): a [`Client`] with one input method.
//!
//! Every call of the driver goes through [`Client::input`]: a kind ([`crate::abi::kind`]),
//! numbers, one text whose fields are separated by NUL characters, and the page's value, which
//! the wasm passes back untouched. One export instead of one per call keeps the wasm and its
//! glue small: each export costs a wrapper in the wasm and string-passing code in the glue
//! (the payload budget, `src/lib.rs`).
//!
//! The page holds the one [`Client`] it starts (no global state here: the driver keeps it).

use crate::abi::{kind, request};
use crate::incoming::fields;
use crate::machine::{Input, Request, Settings};
use crate::out::whole;
use crate::tokens::TokenMap;
use crate::web;
use alloc::string::String;
use wasm_bindgen::prelude::*;

/// A client, held by the page's socket object.
#[wasm_bindgen]
pub struct Client(web::Client);

#[wasm_bindgen]
impl Client {
    /// A client driven by `socket`: the io facade's (`facade`: the page authenticates), or our
    /// shim's, which authenticates with `auth_token` and the content tokens given with
    /// [`kind::TOKEN`]. It connects on [`kind::RECONNECT`].
    #[wasm_bindgen(constructor)]
    pub fn new(socket: JsValue, facade: bool, url: String, timeout_ms: u32, auth_token: String) -> Client {
        let connect_timeout_ms = timeout_ms.max(1).into();
        let settings = Settings { url, auth_token, content_tokens: TokenMap::default(), connect_timeout_ms };
        Client(web::Client::new(socket, facade, settings))
    }

    /// One call of the driver: `kind` says what it is and what `conn`, `bits`, `n`, `m`, the
    /// NUL-separated fields of `text` and `value` carry ([`crate::abi::kind`]).
    #[allow(clippy::too_many_arguments)]
    pub fn input(&self, kind: u32, conn: u32, bits: u32, n: f64, m: f64, text: String, value: JsValue) {
        let mut next = fields(&text);
        let id = || whole(n).map(|id| id as u32);
        let input = match kind {
            k if k <= kind::MESSAGE => return self.0.frame(conn, k, bits, n, m, &text, value),
            kind::CLOSED => Input::Closed { conn, code: bits as u16 },
            kind::TICK => Input::Tick,
            kind::WAKE => Input::Wake,
            kind::RECONNECT => Input::Reauthenticate,
            kind::STOP => Input::Stop,
            kind::AUTHENTICATE => Input::AuthenticateWith { data: value, id: id() },
            kind::JOIN => Input::Join { channel: next(), token: next() },
            kind::REQUEST => {
                let channel = (bits & request::CHANNEL != 0).then(&mut next);
                Input::Request(Request { channel, message: value, echo: bits & request::ECHO != 0, id: id() })
            }
            kind::CREDENTIALS => {
                return self.0.with_machine(|m| m.refresh(Some(next()), TokenMap::default()));
            }
            kind::TOKEN => {
                let token = [(next(), next())].into_iter().collect();
                return self.0.with_machine(|m| m.refresh(None, token));
            }
            _ => return,
        };
        self.0.feed(input);
    }
}
