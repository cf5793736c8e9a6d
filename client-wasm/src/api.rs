//! The JavaScript surface, used by `drupal-js/src/core.js` (the io facade, in both
//! `socket.io.js` and `drupal-push.js`) and `drupal-js/src/shim.js` (our `Drupal.Nodejs`).
//!
//! The page holds the one [`Client`] it starts (no global state here: the shim keeps it);
//! `runCallbacks` and `runSetupHandlers` work without one.

use crate::machine::{Input, Request, SetupEvent, State};
use crate::page::{self, Page};
use crate::web;
use alloc::string::String;
use js_sys::Function;
use wasm_bindgen::prelude::*;

/// A running client, held by the page's shim.
#[wasm_bindgen]
pub struct Client(web::Client);

#[wasm_bindgen]
impl Client {
    /// Our shim: reads `drupalSettings.nodejs` (Drupal 7: `Drupal.settings.nodejs`), makes
    /// `socket` `Drupal.Nodejs.socket` and connects. `undefined` when the page has no settings.
    pub fn start(socket: JsValue) -> Option<Client> {
        let page = Page::from_window()?;
        match web::Client::start(page, socket) {
            Ok(c) => Some(Client(c)),
            Err(e) => {
                crate::js::warn(e);
                None
            }
        }
    }

    /// The io facade: connects to `url` (`ws:`/`wss:`), gives up an attempt after
    /// `timeout_ms`, and fires socket.io's events on `socket`.
    #[wasm_bindgen(js_name = startIo)]
    pub fn start_io(url: String, timeout_ms: u32, socket: JsValue) -> Client {
        Client(web::Client::start_io(url, timeout_ms.max(1).into(), socket))
    }

    /// The driver (`core.js`): a text frame arrived on connection `conn`.
    pub fn frame(&self, conn: u32, text: JsValue) {
        self.0.frame(conn, &text);
    }

    /// The driver: connection `conn` closed (or could not be opened) with `code`.
    pub fn closed(&self, conn: u32, code: u16) {
        self.0.closed(conn, code);
    }

    /// The driver: the timer the client armed fired.
    pub fn tick(&self) {
        self.0.tick();
    }

    /// The driver: the browser went online or the tab became visible.
    pub fn wake(&self) {
        self.0.wake();
    }

    /// `socket.emit('authenticate', data, ack)`: the io facade sends `data`; our shim
    /// authenticates again with the page settings (`Drupal.Nodejs.sendAuthMessage()`).
    pub fn authenticate(&self, data: JsValue, ack: Option<Function>) {
        if self.0.is_facade() {
            let id = self.0.reply_id(ack, false);
            self.0.feed(Input::AuthenticateWith { data, id });
        } else {
            self.0.feed(Input::Reauthenticate);
        }
    }

    /// `Drupal.Nodejs.joinTokenChannel(channel, token)` / `emit('join-token-channel', …)`:
    /// remembers the token (in the page settings too, with our shim) and joins when connected.
    pub fn join(&self, channel: String, token: String) {
        if let Some(page) = self.0.page().filter(|_| !self.0.is_facade()) {
            page.store_token(&channel, &token);
        }
        self.0.feed(Input::Join { channel, token });
    }

    /// A request: a message for Drupal (`channel` undefined) or a publish to `channel`.
    /// `callback` gets the answer, node-style `(error, result)` or, with `node_style` false,
    /// socket.io's ack style `(result)` (`{error, code}` on failure).
    pub fn request(
        &self,
        channel: Option<String>,
        message: JsValue,
        echo: bool,
        callback: Option<Function>,
        node_style: bool,
    ) {
        let id = self.0.reply_id(callback, node_style);
        self.0.feed(Input::Request(Request { channel, message, echo, id }));
    }

    /// (Re)connects a stopped or waiting client now (`Drupal.Nodejs.sendAuthMessage()`,
    /// `socket.connect()`).
    pub fn reconnect(&self) {
        self.0.feed(Input::Reauthenticate);
    }

    /// `socket.disconnect()`: closes and stays disconnected.
    pub fn stop(&self) {
        self.0.feed(Input::Stop);
    }

    /// The module's `runCallbacks(message)` with this client's socket id for the self-skip.
    #[wasm_bindgen(js_name = runCallbacks)]
    pub fn run_callbacks(&self, message: JsValue) {
        if let Some(page) = self.0.page() {
            page.run_callbacks(&message, self.0.socket_id().as_deref());
        }
    }

    /// `Drupal.Nodejs.checkConnection()`: runs the `connectionFailure` handlers when not
    /// connected. Returns whether the page is connected.
    #[wasm_bindgen(js_name = checkConnection)]
    pub fn check_connection(&self) -> bool {
        let connected = self.0.status().state == State::Connected;
        if !connected {
            run_setup_handlers(SetupEvent::ConnectionFailure.as_str());
        }
        connected
    }

    /// `{state, socketId, uid, attempts, lastClose, retryInMs}`.
    pub fn status(&self) -> JsValue {
        page::status_object(&self.0.status())
    }
}

/// The module's `runCallbacks(message)` before a client runs (no own socket id).
#[wasm_bindgen(js_name = runCallbacks)]
pub fn run_callbacks(message: JsValue) {
    if let Some(page) = Page::from_window() {
        page.run_callbacks(&message, None);
    }
}

/// `Drupal.Nodejs.runSetupHandlers(type)`.
#[wasm_bindgen(js_name = runSetupHandlers)]
pub fn run_setup_handlers(kind: &str) {
    if let Some(page) = Page::from_window() {
        page.run_setup_handlers(kind);
    }
}
