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

use crate::abi::act;
use crate::incoming::FrameReader;
use crate::js::{self, Driver};
use crate::machine::{Action, Input, IoEvent, Machine, Settings, Status};
use crate::out::Place;
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

/// The strings separated by NUL characters (`[..].join` links a generic joiner).
fn nul_joined(list: &[String]) -> String {
    let mut s = String::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            s.push('\0');
        }
        s.push_str(item);
    }
    s
}

impl Client {
    /// A client for `socket`: our shim's (`facade` false: it authenticates with the settings)
    /// or the io facade's. It connects on the first [`Input::Reauthenticate`].
    pub fn new(socket: JsValue, facade: bool, settings: Settings) -> Client {
        let machine = Machine::with_role(settings, seed(), facade);
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
        self.act(act::ARM, 0, delay, 0.0, 0.0, "", "", "", &JsValue::UNDEFINED);
    }

    /// Runs `f` on the machine, outside any input (credentials before a connection opens).
    pub fn with_machine(&self, f: impl FnOnce(&mut Machine<JsValue>)) {
        if let Ok(mut m) = self.0.machine.try_borrow_mut() {
            f(&mut m);
        }
    }

    /// A frame (or a member of one) the driver read: see [`FrameReader::input`].
    #[allow(clippy::too_many_arguments)]
    pub fn frame(&self, conn: u32, kind: u32, bits: u32, n: f64, m: f64, text: &str, value: JsValue) {
        let frame =
            self.0.reader.try_borrow_mut().ok().and_then(|mut r| r.input(kind, bits, n, m, text, value));
        if let Some(frame) = frame {
            self.feed(Input::Frame { conn, frame });
        }
    }

    fn driver(&self) -> &Driver {
        self.0.socket.unchecked_ref()
    }

    /// One driver action ([`act`]).
    #[allow(clippy::too_many_arguments)]
    fn act(&self, kind: u32, a: u32, n: f64, m: f64, o: f64, x: &str, y: &str, z: &str, value: &JsValue) {
        self.driver().act(kind, a, n, m, o, x, y, z, value);
    }

    fn execute(&self, action: Action<JsValue>) {
        let none = JsValue::UNDEFINED;
        let simple = |kind, a, n, x: &str, y: &str| self.act(kind, a, n, 0.0, 0.0, x, y, "", &none);
        match action {
            Action::Open { conn, url } => simple(act::OPEN, conn, 0.0, &url, ""),
            Action::Send { conn, frame } => {
                let (value, place) = frame.page_value().unwrap_or((&none, Place::Message));
                let members = if place == Place::Members { 1.0 } else { 0.0 };
                self.act(act::SEND, conn, members, 0.0, 0.0, &frame.text(), "", "", value);
            }
            Action::Close { conn, reason } => simple(act::CLOSE, conn, 0.0, reason, ""),
            Action::Dispatch { message, channel, recorded } => {
                let (stream, offset, epoch) = match &recorded {
                    Some((key, p)) => (key.as_str(), p.offset as f64, p.epoch.as_str()),
                    None => ("", -1.0, ""),
                };
                let channel = channel.as_deref().unwrap_or("");
                self.act(act::DELIVER, 0, offset, 0.0, 0.0, channel, stream, epoch, &message);
            }
            Action::Recovery(outcome) => {
                simple(act::RECOVERY, 0, 0.0, &nul_joined(&outcome.recovered), &nul_joined(&outcome.failed));
            }
            Action::Presence { uid, online } => simple(act::PRESENCE, online.into(), uid as f64, "", ""),
            Action::Setup(event) => simple(act::SETUP, 0, 0.0, event.as_str(), ""),
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
                simple(act::FIRE, 0, 0.0, event.as_str(), reason);
                if event == IoEvent::Connect {
                    self.feed(Input::ConnectHandled);
                }
            }
            Action::Reply { id, result } => match result {
                Ok(value) => self.act(act::REPLY, id, 1.0, 0.0, 0.0, "", "", "", &value),
                Err(refusal) => simple(act::REPLY, id, 0.0, &refusal.code, &refusal.message),
            },
            Action::AuthAck(id) => simple(act::REPLY, id, 1.0, "", ""),
            Action::Warn(text) => js::warn(&text),
            Action::Status(status) => self.show(&status),
        }
    }

    /// Shows a state on the socket.
    fn show(&self, s: &Status) {
        let opt = |v: Option<f64>| v.unwrap_or(-1.0);
        self.act(
            act::STATUS,
            s.attempts,
            opt(s.uid.map(|u| u as f64)),
            opt(s.last_close.map(f64::from)),
            opt(s.retry_in_ms.map(|ms| ms as f64)),
            s.state.as_str(),
            s.socket_id.as_deref().unwrap_or(""),
            "",
            &JsValue::UNDEFINED,
        );
    }
}
