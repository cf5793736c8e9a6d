//! The JavaScript surface, called by `drupal-js/drupal-push.js`, which installs these functions
//! as `Drupal.Nodejs.connect`, `.runCallbacks`, `.runSetupHandlers`, `.joinTokenChannel`,
//! `.sendAuthMessage` and `.checkConnection`. One client per page.

use crate::machine::{Input, SetupEvent, State};
use crate::page::{self, Page};
use crate::web::Client;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    static CLIENT: RefCell<Option<Client>> = const { RefCell::new(None) };
}

fn client() -> Option<Client> {
    CLIENT.with(|c| c.borrow().clone())
}

/// `Drupal.Nodejs.connect()`: reads the page settings and connects, once. Returns whether a
/// client is running.
#[wasm_bindgen]
pub fn connect() -> bool {
    if client().is_some() {
        return true;
    }
    let Some(page) = Page::from_window() else {
        return false;
    };
    match Client::start(page) {
        Ok(c) => {
            CLIENT.with(|slot| *slot.borrow_mut() = Some(c));
            true
        }
        Err(e) => {
            web_sys::console::warn_1(&e.into());
            false
        }
    }
}

/// `Drupal.Nodejs.runCallbacks(message)`: dispatches like the module (spec 4.2).
#[wasm_bindgen(js_name = runCallbacks)]
pub fn run_callbacks(message: JsValue) {
    let own = client().and_then(|c| c.socket_id());
    if let Some(page) = current_page() {
        page.run_callbacks(&message, own.as_deref());
    }
}

/// `Drupal.Nodejs.runSetupHandlers(type)`.
#[wasm_bindgen(js_name = runSetupHandlers)]
pub fn run_setup_handlers(kind: &str) {
    if let Some(page) = current_page() {
        page.run_setup_handlers(kind);
    }
}

/// `Drupal.Nodejs.joinTokenChannel(channel, token)`: remembers the token in the settings and
/// for every later authentication, and joins now when connected.
#[wasm_bindgen(js_name = joinTokenChannel)]
pub fn join_token_channel(channel: String, token: String) {
    if let Some(page) = current_page() {
        page.store_token(&channel, &token);
    }
    if let Some(c) = client() {
        c.feed(Input::Join { channel, token });
    }
}

/// `Drupal.Nodejs.sendAuthMessage()`: authenticates with the current settings, connecting
/// first when the client is idle, waiting or stopped.
#[wasm_bindgen(js_name = sendAuthMessage)]
pub fn send_auth_message() {
    match client() {
        Some(c) => c.feed(Input::Reauthenticate),
        None => _ = connect(),
    }
}

/// `Drupal.Nodejs.checkConnection()`: runs the `connectionFailure` handlers when not
/// connected. Returns whether the page is connected.
#[wasm_bindgen(js_name = checkConnection)]
pub fn check_connection() -> bool {
    let connected = client().is_some_and(|c| c.status().state == State::Connected);
    if !connected {
        run_setup_handlers(SetupEvent::ConnectionFailure.as_str());
    }
    connected
}

/// `{state, socketId, uid, attempts, lastClose, retryInMs}` of the client, or `null`.
#[wasm_bindgen]
pub fn status() -> JsValue {
    client().map_or(JsValue::NULL, |c| page::status_object(&c.status()))
}

fn current_page() -> Option<Page> {
    client().map(|c| c.page().clone()).or_else(Page::from_window)
}
