//! The runtime glue: runs the [`Machine`] with the JavaScript driver of `drupal-js/src/core.js`
//! (the socket object: it owns the WebSocket, the one timer, the page objects and the
//! `online` / `visibilitychange` listeners, and calls the exports of `src/api.rs`), and carries
//! out the machine's actions through the driver methods of `src/js.rs`.
//!
//! The I/O and every page object stay in JavaScript, where they are a few lines, while
//! bindings for them would be a good part of the wasm (the payload budget, see `src/lib.rs`).
//! A Drupal message goes from `JSON.parse` to the page's callbacks without being copied into
//! wasm memory: the wasm holds it as an opaque value.
//!
//! Every input goes through [`Client::feed`]: the machine is borrowed only while it decides,
//! never while page code runs, so page code may call back into the client (for example
//! `joinTokenChannel` from a `connect` handler).

use crate::js::{self, Driver};
use crate::machine::{Action, Input, IoEvent, Machine, Settings, Status};
use crate::out::Place;
use crate::incoming::FrameReader;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};

/// A running client. Cheap to clone.
#[derive(Clone)]
pub struct Client(Rc<Inner>);

struct Inner {
    machine: RefCell<Machine<JsValue>>,
    /// `Drupal.Nodejs.socket` (our shim) or the io facade's socket: the driver.
    socket: JsValue,
    /// Reads the frames the driver reports member by member.
    reader: RefCell<FrameReader>,
}

fn now() -> u64 {
    js::now() as u64
}

fn seed() -> u64 {
    (js::random() * 9_007_199_254_740_992.0) as u64
}

/// A string the driver passed, with "" for none.
pub fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Client {
    /// A client for `socket`: our shim's (`facade` false: it authenticates with the settings)
    /// or the io facade's. It connects on the first [`Input::Reauthenticate`].
    pub fn new(socket: JsValue, facade: bool, settings: Settings) -> Client {
        let machine = if facade {
            Machine::for_facade(settings.url, settings.connect_timeout_ms, seed())
        } else {
            Machine::new(settings, seed())
        };
        Client(Rc::new(Inner { machine: RefCell::new(machine), socket, reader: RefCell::default() }))
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

    /// Runs `f` on the machine, outside any input (credentials before a connection opens).
    pub fn with_machine(&self, f: impl FnOnce(&mut Machine<JsValue>)) {
        if let Ok(mut m) = self.0.machine.try_borrow_mut() {
            f(&mut m);
        }
    }

    /// A frame (or a member of one) the driver read: see [`FrameReader::frame`].
    pub fn frame(&self, conn: u32, kind: u32, a: String, n: f64, b: String, value: JsValue) {
        let frame = self.0.reader.try_borrow_mut().ok().and_then(|mut r| r.frame(kind, a, n, b, value));
        if let Some(frame) = frame {
            self.feed(Input::Frame { conn, frame });
        }
    }

    fn driver(&self) -> &Driver {
        self.0.socket.unchecked_ref()
    }

    fn execute(&self, action: Action<JsValue>) {
        let d = self.driver();
        match action {
            Action::Open { conn, url } => d.open(conn, &url),
            Action::Send { conn, frame } => {
                let none = JsValue::UNDEFINED;
                let (value, place) = frame.page_value().unwrap_or((&none, Place::Message));
                d.send(conn, &frame.text(), value, place == Place::Members);
            }
            Action::Close { conn, reason } => d.close(conn, reason),
            Action::Dispatch { message, channel, recorded, listeners } => {
                let (stream, offset, epoch) = match &recorded {
                    Some((key, p)) => (key.as_str(), p.offset as f64, p.epoch.as_str()),
                    None => ("", -1.0, ""),
                };
                d.deliver(&message, listeners.code(), channel.as_deref().unwrap_or(""), stream, offset, epoch);
            }
            Action::Recovery(outcome) => d.recovery(&outcome.recovered.join("\0"), &outcome.failed.join("\0")),
            Action::Presence { uid, online } => d.presence(uid as f64, online),
            Action::Setup(event) => d.setup(event.as_str()),
            Action::Io(event) => {
                if event == IoEvent::Connect {
                    if let Ok(status) = self.0.machine.try_borrow().map(|m| m.status()) {
                        self.show(&status);
                    }
                }
                let reason = match event {
                    IoEvent::Disconnect { by_server: true } => "io server disconnect",
                    IoEvent::Disconnect { by_server: false } => "transport close",
                    IoEvent::ConnectError => "drupal-push: could not connect",
                    _ => "",
                };
                d.fire(event.as_str(), reason);
                if event == IoEvent::Connect {
                    self.feed(Input::ConnectHandled);
                }
            }
            Action::Reply { id, result } => match result {
                Ok(value) => d.reply(id, true, &value, "", ""),
                Err(refusal) => d.reply(id, false, &JsValue::UNDEFINED, &refusal.code, &refusal.message),
            },
            Action::AuthAck(id) => d.reply(id, true, &JsValue::UNDEFINED, "", ""),
            Action::Warn(text) => js::warn(&text),
            Action::Status(status) => self.show(&status),
        }
    }

    /// Shows a state on the socket.
    fn show(&self, s: &Status) {
        let opt = |v: Option<f64>| v.unwrap_or(-1.0);
        self.driver().status(
            s.state.as_str(),
            s.socket_id.as_deref().unwrap_or(""),
            opt(s.uid.map(|u| u as f64)),
            s.attempts,
            opt(s.last_close.map(f64::from)),
            opt(s.retry_in_ms.map(|ms| ms as f64)),
        );
    }
}
