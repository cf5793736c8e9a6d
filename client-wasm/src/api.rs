//! The JavaScript surface, used by the driver in `drupal-js/src/core.js` and `page.js` (the
//! socket object of both our shim and the io facade). Arguments are numbers and strings (an
//! empty string for "none") plus the page's values, which the wasm passes back untouched.
//!
//! The page holds the one [`Client`] it starts (no global state here: the driver keeps it);
//! [`route`] and [`channel_matches`] serve `Drupal.Nodejs.runCallbacks` and the channel
//! listeners, with or without a client.

use crate::dispatch::{self, MessageView};
use crate::incoming::FrameReader;
use crate::machine::{Input, Request, Settings};
use crate::tokens::TokenMap;
use crate::web::{self, some};
use alloc::string::String;
use wasm_bindgen::prelude::*;

/// A client, held by the page's socket object.
#[wasm_bindgen]
pub struct Client(web::Client);

#[wasm_bindgen]
impl Client {
    /// A client driven by `socket`: the io facade's (`facade`: the page authenticates), or our
    /// shim's, which authenticates with `auth_token` and the content tokens given with
    /// [`Client::token`]. It connects on [`Client::reconnect`].
    #[wasm_bindgen(constructor)]
    pub fn new(socket: JsValue, facade: bool, url: String, timeout_ms: u32, auth_token: String) -> Client {
        let connect_timeout_ms = timeout_ms.max(1).into();
        let settings = Settings { url, auth_token, content_tokens: TokenMap::default(), connect_timeout_ms };
        Client(web::Client::new(socket, facade, settings))
    }

    /// Our shim, before a connection opens: the auth token the page settings hold now.
    pub fn credentials(&self, auth_token: String) {
        self.0.with_machine(|m| m.refresh(Some(auth_token), TokenMap::default()));
    }

    /// Our shim: a content token the page settings hold (sent with every `authenticate`).
    pub fn token(&self, channel: String, token: String) {
        self.0.with_machine(|m| m.refresh(None, [(channel, token)].into_iter().collect()));
    }

    /// The driver read a frame on connection `conn`; see [`crate::incoming::kind`].
    pub fn frame(&self, conn: u32, kind: u32, a: String, n: f64, b: String, value: JsValue) {
        self.0.frame(conn, kind, a, n, b, value);
    }

    /// The driver read a `message` frame; see [`FrameReader::message`].
    #[allow(clippy::too_many_arguments)]
    pub fn message(
        &self,
        conn: u32,
        message: JsValue,
        channel: String,
        stream: String,
        offset: f64,
        epoch: String,
        sender: String,
        flags: u32,
        uid: f64,
    ) {
        let frame = FrameReader::message(message, channel, stream, offset, epoch, sender, flags, uid);
        self.0.feed(Input::Frame { conn, frame });
    }

    /// The driver: connection `conn` closed (or could not be opened) with `code`.
    pub fn closed(&self, conn: u32, code: u16) {
        self.0.feed(Input::Closed { conn, code });
    }

    /// The driver: the timer the client armed fired.
    pub fn tick(&self) {
        self.0.feed(Input::Tick);
    }

    /// The driver: the browser went online or the tab became visible.
    pub fn wake(&self) {
        self.0.feed(Input::Wake);
    }

    /// The io facade's `socket.emit('authenticate', data, ack)`; `id` names the ack (the
    /// driver's `_reply`).
    pub fn authenticate(&self, data: JsValue, id: Option<u32>) {
        self.0.feed(Input::AuthenticateWith { data, id });
    }

    /// `Drupal.Nodejs.joinTokenChannel(channel, token)` / `emit('join-token-channel', …)`.
    pub fn join(&self, channel: String, token: String) {
        self.0.feed(Input::Join { channel, token });
    }

    /// A request: a message for Drupal (`channel` undefined) or a publish to `channel`; `id`
    /// names the callback of the answer (the driver's `_reply`).
    pub fn request(&self, channel: Option<String>, message: JsValue, echo: bool, id: Option<u32>) {
        self.0.feed(Input::Request(Request { channel, message, echo, id }));
    }

    /// Connects (the first time, `Drupal.Nodejs.sendAuthMessage()`, `socket.connect()`), or
    /// reconnects a stopped or waiting client now.
    pub fn reconnect(&self) {
        self.0.feed(Input::Reauthenticate);
    }

    /// `socket.disconnect()`: closes and stays disconnected.
    pub fn stop(&self) {
        self.0.feed(Input::Stop);
    }
}

/// The module's dispatch rule for a message (`Drupal.Nodejs.runCallbacks`) described by
/// [`dispatch::flags`] and its `clientSocketId` (`sender`), on a page whose socket id is `own`:
/// see [`dispatch::Route::code`].
#[wasm_bindgen]
pub fn route(flags: u32, sender: String, own: String) -> u32 {
    let own = some(own);
    dispatch::route(&MessageView::from_flags(flags, some(sender)), own.as_deref()).code()
}

/// Whether a `channelCallbacks` key matches a channel ([`dispatch::channel_matches`]).
#[wasm_bindgen(js_name = channelMatches)]
pub fn channel_matches(pattern: &str, channel: &str) -> bool {
    dispatch::channel_matches(pattern, channel)
}
