//! The runtime glue: runs the [`Machine`] with the JavaScript driver of `drupal-js/src/core.js`
//! (the socket object: it owns the WebSocket, the one timer and the `online` /
//! `visibilitychange` listeners, and calls back [`Client::frame`], [`Client::closed`],
//! [`Client::tick`] and [`Client::wake`]), and carries out the machine's actions on the page.
//!
//! The I/O stays in JavaScript because it is a few lines there, while web-sys bindings and
//! wasm-bindgen closures for it would be a good part of the wasm (the payload budget, see
//! `src/lib.rs`). A frame goes from the `message` event to `JSON.parse` without being copied
//! into wasm memory.
//!
//! Every input goes through [`Client::feed`]: the machine is borrowed only while it decides,
//! never while page code runs, so callbacks may call back into the client (for example
//! `joinTokenChannel` from a `connect` handler). The page's callbacks for requests and for the
//! io facade's `authenticate` ack wait in `replies` under the id the machine reports back with
//! [`Action::Reply`] / [`Action::AuthAck`].

use crate::js::{self, Driver, set};
use crate::machine::{Action, Input, IoEvent, Machine, Refusal, Status};
use crate::page::{self, Page};
use crate::{js_frames, settings};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use js_sys::{Function, Object};
use wasm_bindgen::{JsCast, JsValue};

/// A running client. Cheap to clone.
#[derive(Clone)]
pub struct Client(Rc<Inner>);

struct Inner {
    machine: RefCell<Machine<JsValue>>,
    /// Our shim's page; the io facade looks `Drupal.Nodejs` up at each delivery instead (the
    /// module's `nodejs.js` owns it there).
    page: Option<Page>,
    /// `Drupal.Nodejs.socket` (our shim) or the io facade's socket; also the I/O driver.
    socket: JsValue,
    /// Callbacks waiting for a reply: (id, function, node-style `(error, result)`).
    replies: RefCell<Vec<(u32, Function, bool)>>,
    next_id: Cell<u32>,
}

fn now() -> u64 {
    js::now() as u64
}

fn seed() -> u64 {
    (js::random() * 9_007_199_254_740_992.0) as u64
}

impl Client {
    /// Our shim: reads the settings from `page` and connects; `socket` becomes
    /// `Drupal.Nodejs.socket`.
    pub fn start(page: Page, socket: JsValue) -> Result<Client, &'static str> {
        let settings = settings::parse(&page.settings(), &page::location())
            .map_err(|_| settings::MissingSettings::TEXT)?;
        set(&page.nodejs, "socket", &socket);
        Ok(Client::run(Machine::new(settings, seed()), Some(page), socket))
    }

    /// The io facade: connects to `url` (a `ws:` or `wss:` URL) and reports to `socket`.
    pub fn start_io(url: String, connect_timeout_ms: u64, socket: JsValue) -> Client {
        Client::run(Machine::for_facade(url, connect_timeout_ms, seed()), None, socket)
    }

    fn run(machine: Machine<JsValue>, page: Option<Page>, socket: JsValue) -> Client {
        let inner = Inner {
            machine: RefCell::new(machine),
            page,
            socket,
            replies: RefCell::default(),
            next_id: Cell::new(0),
        };
        let client = Client(Rc::new(inner));
        client.feed(Input::Start);
        client
    }

    /// Feeds one input to the machine and carries out what it decides.
    ///
    /// (`try_borrow*` throughout: the machine is never borrowed while page code runs, and the
    /// panicking `borrow*` would link the formatting of their panic messages.)
    pub fn feed(&self, input: Input<JsValue>) {
        let Some(actions) = self.0.machine.try_borrow_mut().ok().map(|mut m| m.handle(now(), input)) else {
            return;
        };
        for action in actions {
            self.execute(action);
        }
        let deadline = self.0.machine.try_borrow().ok().and_then(|m| m.next_deadline());
        let delay = deadline.map_or(-1.0, |d| d.saturating_sub(now()) as f64);
        self.driver().arm(delay);
    }

    /// A text frame (a JS string) arrived on connection `conn`.
    pub fn frame(&self, conn: u32, text: &JsValue) {
        self.feed(Input::Frame { conn, frame: js_frames::parse(text) });
    }

    pub fn closed(&self, conn: u32, code: u16) {
        self.feed(Input::Closed { conn, code });
    }

    pub fn tick(&self) {
        self.feed(Input::Tick);
    }

    /// The browser went online or the tab became visible.
    pub fn wake(&self) {
        self.feed(Input::Wake);
    }

    /// Keeps `callback` for the reply to a new request id; `None` without a callback.
    pub fn reply_id(&self, callback: Option<Function>, node_style: bool) -> Option<u32> {
        let f = callback?;
        let id = self.0.next_id.get().wrapping_add(1);
        self.0.next_id.set(id);
        if let Ok(mut replies) = self.0.replies.try_borrow_mut() {
            replies.push((id, f, node_style));
        }
        Some(id)
    }

    pub fn is_facade(&self) -> bool {
        self.0.page.is_none()
    }

    pub fn status(&self) -> Status {
        self.0.machine.try_borrow().map(|m| m.status()).unwrap_or_default()
    }

    pub fn socket_id(&self) -> Option<String> {
        self.0.machine.try_borrow().ok()?.socket_id().map(Into::into)
    }

    /// The page whose `Drupal.Nodejs` gets messages now.
    pub fn page(&self) -> Option<Page> {
        self.0.page.clone().or_else(Page::from_window)
    }

    fn driver(&self) -> &Driver {
        self.0.socket.unchecked_ref()
    }

    fn execute(&self, action: Action<JsValue>) {
        match action {
            Action::Open { conn, url } => {
                if let (Some(page), Ok(mut machine)) = (&self.0.page, self.0.machine.try_borrow_mut()) {
                    let (token, tokens) = settings::credentials(&page.settings());
                    machine.refresh(token, tokens);
                }
                self.driver().open(conn, &url);
            }
            Action::Send { conn, frame } => match js_frames::encode(&frame) {
                Ok(text) => self.driver().send(conn, &text),
                Err(e) => js::error("drupal-push: cannot encode a frame", &e),
            },
            Action::Close { conn, reason } => self.driver().close(conn, reason),
            Action::Dispatch { message, channel, meta } => {
                let own = self.socket_id();
                let facade = self.is_facade().then_some(&self.0.socket);
                if let Some(page) = self.page() {
                    page.deliver(&message, channel.as_deref(), &meta, own.as_deref(), facade);
                }
            }
            Action::Setup(event) => {
                if let Some(page) = &self.0.page {
                    page.run_setup_handlers(event.as_str());
                }
            }
            Action::Io(event) => {
                if event == IoEvent::Connect {
                    self.show(&self.status());
                }
                let arg = match event {
                    IoEvent::Disconnect { by_server: true } => JsValue::from_str("io server disconnect"),
                    IoEvent::Disconnect { by_server: false } => JsValue::from_str("transport close"),
                    IoEvent::ConnectError => js_sys::Error::new("drupal-push: could not connect").into(),
                    _ => JsValue::UNDEFINED,
                };
                self.driver().fire(event.as_str(), &arg);
                if event == IoEvent::Connect {
                    self.feed(Input::ConnectHandled);
                }
            }
            Action::Reply { id, result } => self.reply(id, result),
            Action::AuthAck(id) => {
                let ok = Object::new();
                set(&ok, "result", &"success".into());
                self.reply(id, Ok(ok.into()));
            }
            Action::Warn(text) => js::warn(&text),
            Action::Status(status) => self.show(&status),
        }
    }

    fn show(&self, status: &Status) {
        self.driver().status(&page::status_object(status), self.is_facade());
    }

    /// Calls the callback waiting for `id`: `callback(error, result)` node-style, else
    /// socket.io's ack style `ack(result)`, with `{error, code}` for a refusal.
    fn reply(&self, id: u32, result: Result<JsValue, Refusal>) {
        let Some((f, node_style)) = self.0.replies.try_borrow_mut().ok().and_then(|mut replies| {
            let mut found = None;
            replies.retain(|(i, f, node_style)| {
                let hit = found.is_none() && *i == id;
                if hit {
                    found = Some((f.clone(), *node_style));
                }
                !hit
            });
            found
        }) else {
            return;
        };
        let (error, value) = match result {
            Ok(value) => (JsValue::NULL, value),
            Err(Refusal { code, message }) => {
                let e = Object::new();
                set(&e, "code", &code.into());
                set(&e, if node_style { "message" } else { "error" }, &message.into());
                (e.into(), JsValue::UNDEFINED)
            }
        };
        let called = if node_style {
            f.call2(&JsValue::NULL, &error, &value)
        } else {
            f.call1(&JsValue::NULL, if error.is_null() { &value } else { &error })
        };
        if let Err(e) = called {
            js::error("drupal-push: a reply callback threw", &e);
        }
    }
}
