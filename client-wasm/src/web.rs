//! The runtime glue: runs the [`Machine`] over the browser's WebSocket, one `setTimeout` for
//! its next deadline, and the `online` / `visibilitychange` events, and carries out its actions
//! on the [`Page`].
//!
//! The socket is `web_sys::WebSocket` with plain event handlers rather than an async stream
//! (gloo-net): a frame goes from the `message` event straight to `JSON.parse` without being
//! copied into wasm memory, and without an executor and channels the wasm stays within its
//! size budget.
//!
//! Every input goes through [`Client::feed`]: the machine is borrowed only while it decides,
//! never while page code runs, so callbacks may call back into the client (for example
//! `joinTokenChannel` from a `connect` handler).
//!
//! The page's callbacks for requests and for the io facade's `authenticate` ack wait in
//! `replies` under the id the machine reports back with [`Action::Reply`] / [`Action::AuthAck`].

use crate::machine::{Action, Input, IoEvent, LOST, Machine, Refusal, Status};
use crate::page::{self, Page, set};
use crate::{js_frames, settings};
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::{Cell, OnceCell, RefCell};
use js_sys::{Function, Object};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket, console};

/// A running client. Cheap to clone.
#[derive(Clone)]
pub struct Client(Rc<Inner>);

struct Inner {
    machine: RefCell<Machine<JsValue>>,
    socket: RefCell<Option<Socket>>,
    /// Our shim's page; the io facade looks `Drupal.Nodejs` up at each delivery instead (the
    /// module's `nodejs.js` owns it there).
    page: Option<Page>,
    /// `Drupal.Nodejs.socket` (our shim) or the io facade's socket.
    socket_object: JsValue,
    /// Callbacks waiting for a reply: (id, function, node-style `(error, result)`).
    replies: RefCell<Vec<(u32, Function, bool)>>,
    next_id: Cell<u32>,
    timer: Cell<Option<i32>>,
    /// Feeds `Tick`; created once, re-armed after every input.
    tick: OnceCell<Closure<dyn FnMut()>>,
    /// Feeds `Wake` on `online` and `visibilitychange`.
    wake: OnceCell<Closure<dyn FnMut()>>,
}

/// An open WebSocket and the handlers that feed its events, tagged with the machine's `conn`.
struct Socket {
    conn: u32,
    ws: WebSocket,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

#[wasm_bindgen]
extern "C" {
    /// A `WebSocket` seen through a `send` that takes a JS string as it is (no round trip
    /// through a Rust `String`).
    type TextSocket;
    #[wasm_bindgen(method, catch)]
    fn send(this: &TextSocket, data: &JsValue) -> Result<(), JsValue>;
}

fn now() -> u64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now()) as u64
}

fn seed() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
}

impl Client {
    /// Our shim: reads the settings from `page` and connects; `socket_object` becomes
    /// `Drupal.Nodejs.socket`.
    pub fn start(page: Page, socket_object: JsValue) -> Result<Client, &'static str> {
        let settings = settings::parse(&page.settings(), &page::location())
            .map_err(|_| settings::MissingSettings::TEXT)?;
        set(&page.nodejs, "socket", &socket_object);
        Ok(Client::run(Machine::new(settings, seed()), Some(page), socket_object))
    }

    /// The io facade: connects to `url` (a `ws:` or `wss:` URL) and reports to `socket_object`.
    pub fn start_io(url: String, connect_timeout_ms: u64, socket_object: JsValue) -> Client {
        Client::run(Machine::for_facade(url, connect_timeout_ms, seed()), None, socket_object)
    }

    fn run(machine: Machine<JsValue>, page: Option<Page>, socket_object: JsValue) -> Client {
        let inner = Rc::new(Inner {
            machine: RefCell::new(machine),
            socket: RefCell::new(None),
            page,
            socket_object,
            replies: RefCell::new(Vec::new()),
            next_id: Cell::new(0),
            timer: Cell::new(None),
            tick: OnceCell::new(),
            wake: OnceCell::new(),
        });
        let weak = Rc::downgrade(&inner);
        let _ = inner.tick.set(Closure::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.timer.set(None);
                inner.feed(Input::Tick);
            }
        }));
        inner.listen(true);
        let client = Client(inner);
        client.feed(Input::Start);
        client
    }

    /// Keeps `callback` for the reply to a new request id; `None` without a callback.
    pub fn reply_id(&self, callback: Option<Function>, node_style: bool) -> Option<u32> {
        let f = callback?;
        let id = self.0.next_id.get().wrapping_add(1);
        self.0.next_id.set(id);
        self.0.replies.borrow_mut().push((id, f, node_style));
        Some(id)
    }

    pub fn is_facade(&self) -> bool {
        self.0.machine.borrow().is_facade()
    }

    /// Feeds one input to the machine and carries out what it decides.
    pub fn feed(&self, input: Input<JsValue>) {
        self.0.feed(input);
    }

    pub fn status(&self) -> Status {
        self.0.machine.borrow().status()
    }

    pub fn socket_id(&self) -> Option<String> {
        self.0.machine.borrow().socket_id().map(Into::into)
    }

    /// The page whose `Drupal.Nodejs` gets messages now.
    pub fn page(&self) -> Option<Page> {
        self.0.page.clone().or_else(Page::from_window)
    }

    /// Closes the socket and stops the timer and listeners, without telling the page (used by
    /// tests that run several clients in one page).
    pub fn shutdown(&self) {
        self.0.close_any("shutdown");
        if let Some(handle) = self.0.timer.take()
            && let Some(w) = web_sys::window()
        {
            w.clear_timeout_with_handle(handle);
        }
        self.0.listen(false);
    }
}

impl Inner {
    fn feed(self: &Rc<Self>, input: Input<JsValue>) {
        let actions = self.machine.borrow_mut().handle(now(), input);
        for action in actions {
            self.execute(action);
        }
        self.rearm();
    }

    fn execute(self: &Rc<Self>, action: Action<JsValue>) {
        match action {
            Action::Open { conn, url } => self.open(conn, &url),
            Action::Send { conn, frame } => match js_frames::encode(&frame) {
                Ok(text) => self.send(conn, &text),
                Err(e) => console::error_2(&"drupal-push: cannot encode a frame".into(), &e),
            },
            Action::Close { conn, reason } => {
                if self.socket.borrow().as_ref().is_some_and(|s| s.conn == conn) {
                    self.close_any(reason);
                }
            }
            Action::Dispatch { message, channel, meta } => {
                let own = self.machine.borrow().socket_id().map(String::from);
                let facade = self.page.is_none().then_some(&self.socket_object);
                if let Some(page) = self.page.clone().or_else(Page::from_window) {
                    page.deliver(&message, channel.as_deref(), &meta, own.as_deref(), facade);
                }
            }
            Action::Setup(event) => {
                if let Some(page) = &self.page {
                    page.run_setup_handlers(event.as_str());
                }
            }
            Action::Io(event) => {
                let arg = match event {
                    IoEvent::Disconnect { by_server: true } => JsValue::from_str("io server disconnect"),
                    IoEvent::Disconnect { by_server: false } => JsValue::from_str("transport close"),
                    IoEvent::ConnectError => js_sys::Error::new("drupal-push: could not connect").into(),
                    _ => JsValue::UNDEFINED,
                };
                if event == IoEvent::Connect {
                    let status = self.machine.borrow().status();
                    Page::show_status(&self.socket_object, &status, true);
                }
                page::fire(&self.socket_object, event.as_str(), &arg);
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
            Action::Warn(text) => console::warn_1(&text.into()),
            Action::Status(status) => Page::show_status(&self.socket_object, &status, self.page.is_none()),
        }
    }

    /// Calls the callback waiting for `id`: `callback(error, result)` node-style, else
    /// socket.io's ack style `ack(result)`, with `{error, code}` for a refusal.
    fn reply(&self, id: u32, result: Result<JsValue, Refusal>) {
        let waiting = {
            let mut replies = self.replies.borrow_mut();
            let at = replies.iter().position(|(i, _, _)| *i == id);
            at.map(|at| replies.swap_remove(at))
        };
        let Some((_, f, node_style)) = waiting else { return };
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
            console::error_2(&"drupal-push: a reply callback threw".into(), &e);
        }
    }

    fn open(self: &Rc<Self>, conn: u32, url: &str) {
        if let Some(page) = &self.page {
            let (token, tokens) = settings::credentials(&page.settings());
            self.machine.borrow_mut().refresh(token, tokens);
        }
        self.close_any("replaced");
        let ws = match WebSocket::new(url) {
            Ok(ws) => ws,
            Err(e) => {
                console::error_2(&["drupal-push: cannot open ", url].concat().into(), &e);
                return self.later(Input::Closed { conn, code: LOST });
            }
        };
        let weak = Rc::downgrade(self);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let data = event.data();
            if data.is_string() {
                inner.feed(Input::Frame { conn, frame: js_frames::parse(&data) });
            } else {
                console::warn_1(&"drupal-push: ignored a binary frame".into());
            }
        });
        let weak: Weak<Inner> = Rc::downgrade(self);
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if let Some(inner) = weak.upgrade() {
                inner.feed(Input::Closed { conn, code: event.code() });
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        *self.socket.borrow_mut() = Some(Socket { conn, ws, _on_message: on_message, _on_close: on_close });
    }

    fn send(&self, conn: u32, text: &JsValue) {
        let slot = self.socket.borrow();
        let Some(socket) = slot.as_ref().filter(|s| s.conn == conn) else { return };
        if let Err(e) = socket.ws.unchecked_ref::<TextSocket>().send(text) {
            console::warn_2(&"drupal-push: send failed".into(), &e);
        }
    }

    /// Closes the current socket, if any; its events are not reported any more.
    fn close_any(&self, reason: &str) {
        let Some(socket) = self.socket.borrow_mut().take() else { return };
        socket.ws.set_onmessage(None);
        socket.ws.set_onclose(None);
        let _ = socket.ws.close_with_code_and_reason(1000, reason);
    }

    /// Feeds `input` from a fresh task (when feeding it now would re-enter the machine).
    fn later(self: &Rc<Self>, input: Input<JsValue>) {
        let weak = Rc::downgrade(self);
        let mut input = Some(input);
        let f = Closure::once_into_js(move || {
            if let (Some(inner), Some(input)) = (weak.upgrade(), input.take()) {
                inner.feed(input);
            }
        });
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(f.unchecked_ref(), 0);
        }
    }

    /// Arms the one timer for the machine's next deadline.
    fn rearm(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else { return };
        if let Some(handle) = self.timer.take() {
            window.clear_timeout_with_handle(handle);
        }
        let Some(deadline) = self.machine.borrow().next_deadline() else { return };
        let delay = deadline.saturating_sub(now()).min(i32::MAX as u64) as i32;
        let Some(tick) = self.tick.get() else { return };
        let handle = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), delay);
        self.timer.set(handle.ok());
    }

    /// `online` and a tab becoming visible cut a pending backoff short. `on == false` removes
    /// the listeners again.
    fn listen(self: &Rc<Self>, on: bool) {
        let Some(window) = web_sys::window() else { return };
        let weak = Rc::downgrade(self);
        let wake = self.wake.get_or_init(|| {
            Closure::new(move || {
                let visible = web_sys::window()
                    .and_then(|w| w.document())
                    .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible);
                if let (true, Some(inner)) = (visible, weak.upgrade()) {
                    inner.feed(Input::Wake);
                }
            })
        });
        let f: &js_sys::Function = wake.as_ref().unchecked_ref();
        let document = window.document();
        if on {
            let _ = window.add_event_listener_with_callback("online", f);
            document.map(|d| d.add_event_listener_with_callback("visibilitychange", f));
        } else {
            let _ = window.remove_event_listener_with_callback("online", f);
            document.map(|d| d.remove_event_listener_with_callback("visibilitychange", f));
        }
    }
}
