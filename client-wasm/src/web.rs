//! The runtime glue: runs the [`Machine`] over a real WebSocket (gloo-net), one `setTimeout`
//! for its next deadline, and the browser's `online` / `visibilitychange` events, and carries
//! out its actions on the [`Page`].
//!
//! Every input goes through [`Client::feed`]: the machine is borrowed only while it decides,
//! never while page code runs, so callbacks may call back into the client (for example
//! `joinTokenChannel` from a `connect` handler).

use crate::machine::{Action, Input, Machine, Status};
use crate::page::Page;
use crate::settings;
use futures_util::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use js_sys::Object;
use std::cell::{Cell, OnceCell, RefCell};
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::console;

/// A running client. Cheap to clone.
#[derive(Clone)]
pub struct Client(Rc<Inner>);

struct Inner {
    machine: RefCell<Machine>,
    socket: RefCell<Option<Socket>>,
    page: Page,
    socket_object: Object,
    timer: Cell<Option<i32>>,
    /// Fed `Tick` by the timer; created once, re-armed after every input.
    tick: OnceCell<Closure<dyn FnMut()>>,
    /// Fed `Wake` by `online` and `visibilitychange`.
    wake: OnceCell<Closure<dyn FnMut()>>,
}

struct Socket {
    conn: u32,
    ws: WebSocket,
    /// The reader task waiting on this socket, woken when the socket is taken away.
    reader: Option<Waker>,
}

fn now() -> u64 {
    web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now()) as u64
}

impl Client {
    /// Reads the settings from `page`, installs `Drupal.Nodejs.socket` and connects.
    pub fn start(page: Page) -> Result<Client, String> {
        let settings = settings::parse(&page.settings_json(), &crate::page::location())
            .map_err(|e| format!("drupal-push: {e}"))?;
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let socket_object = page.install_socket_object();
        let inner = Rc::new(Inner {
            machine: RefCell::new(Machine::new(settings, seed)),
            socket: RefCell::new(None),
            page,
            socket_object,
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
        Ok(client)
    }

    /// Feeds one input to the machine and carries out what it decides.
    pub fn feed(&self, input: Input) {
        self.0.feed(input);
    }

    pub fn status(&self) -> Status {
        self.0.machine.borrow().status()
    }

    pub fn socket_id(&self) -> Option<String> {
        self.0.machine.borrow().socket_id().map(str::to_owned)
    }

    pub fn page(&self) -> &Page {
        &self.0.page
    }

    /// Closes the socket and stops the timer and listeners, without telling the page (used by
    /// tests that run several clients in one page).
    pub fn shutdown(&self) {
        self.0.close_any();
        if let Some(handle) = self.0.timer.take()
            && let Some(w) = web_sys::window()
        {
            w.clear_timeout_with_handle(handle);
        }
        self.0.listen(false);
    }
}

impl Inner {
    fn feed(self: &Rc<Self>, input: Input) {
        let actions = self.machine.borrow_mut().handle(now(), input);
        for action in actions {
            self.execute(action);
        }
        self.rearm();
    }

    fn execute(self: &Rc<Self>, action: Action) {
        match action {
            Action::Open { conn, url } => self.open(conn, &url),
            Action::Send { conn, frame } => self.send(conn, frame.encode()),
            Action::Close { conn, reason } => self.close(conn, reason),
            Action::Dispatch(message) => {
                let own = self.machine.borrow().socket_id().map(str::to_owned);
                self.page.deliver(&message, own.as_deref());
            }
            Action::Setup(event) => self.page.run_setup_handlers(event.as_str()),
            Action::Warn(text) => console::warn_1(&text.into()),
            Action::Status(status) => self.page.show_status(&self.socket_object, &status),
        }
    }

    fn conn(&self) -> Option<u32> {
        self.socket.borrow().as_ref().map(|s| s.conn)
    }

    fn open(self: &Rc<Self>, conn: u32, url: &str) {
        let (token, tokens) = settings::credentials(&self.page.settings_json());
        self.machine.borrow_mut().refresh(token, tokens);
        self.close_any();
        match WebSocket::open(url) {
            Ok(ws) => {
                *self.socket.borrow_mut() = Some(Socket { conn, ws, reader: None });
                self.spawn_reader(conn);
            }
            Err(e) => {
                console::error_1(&format!("drupal-push: cannot open {url}: {e}").into());
                let weak = Rc::downgrade(self);
                wasm_bindgen_futures::spawn_local(async move {
                    if let Some(inner) = weak.upgrade() {
                        inner.feed(Input::Closed { conn, code: crate::machine::LOST });
                    }
                });
            }
        }
    }

    fn send(&self, conn: u32, text: String) {
        let mut slot = self.socket.borrow_mut();
        let Some(socket) = slot.as_mut().filter(|s| s.conn == conn) else {
            return;
        };
        match socket.ws.send(Message::Text(text)).now_or_never() {
            Some(Ok(())) => {}
            Some(Err(e)) => console::warn_1(&format!("drupal-push: send failed: {e}").into()),
            None => console::warn_1(&"drupal-push: socket not open, frame dropped".into()),
        }
    }

    fn close(&self, conn: u32, reason: &str) {
        let taken = {
            let mut slot = self.socket.borrow_mut();
            if slot.as_ref().is_some_and(|s| s.conn == conn) { slot.take() } else { None }
        };
        if let Some(socket) = taken {
            let _ = socket.ws.close(Some(1000), Some(reason));
            if let Some(waker) = socket.reader {
                waker.wake();
            }
        }
    }

    fn close_any(&self) {
        if let Some(conn) = self.conn() {
            self.close(conn, "replaced");
        }
    }

    /// Reads connection `conn` until it closes or is taken away, feeding frames to the machine.
    fn spawn_reader(self: &Rc<Self>, conn: u32) {
        let weak: Weak<Inner> = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let item = futures_util::future::poll_fn(|cx| {
                    let Some(inner) = weak.upgrade() else {
                        return Poll::Ready(None);
                    };
                    let mut slot = inner.socket.borrow_mut();
                    match slot.as_mut() {
                        Some(s) if s.conn == conn => {
                            s.reader = Some(cx.waker().clone());
                            s.ws.poll_next_unpin(cx).map(Some)
                        }
                        _ => Poll::Ready(None),
                    }
                })
                .await;
                let (Some(item), Some(inner)) = (item, weak.upgrade()) else {
                    return;
                };
                match item {
                    Some(Ok(Message::Text(text))) => inner.feed(Input::Text { conn, text }),
                    Some(Ok(Message::Bytes(_))) => {
                        console::warn_1(&"drupal-push: ignored a binary frame".into())
                    }
                    Some(Err(WebSocketError::ConnectionClose(event))) => {
                        return inner.feed(Input::Closed { conn, code: event.code });
                    }
                    Some(Err(_)) => {} // an error event; the close event follows
                    None => {
                        return inner.feed(Input::Closed { conn, code: crate::machine::LOST });
                    }
                }
            }
        });
    }

    /// Arms the one timer for the machine's next deadline.
    fn rearm(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(handle) = self.timer.take() {
            window.clear_timeout_with_handle(handle);
        }
        let Some(deadline) = self.machine.borrow().next_deadline() else {
            return;
        };
        let delay = deadline.saturating_sub(now()).min(i32::MAX as u64) as i32;
        let Some(tick) = self.tick.get() else { return };
        let handle = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), delay);
        self.timer.set(handle.ok());
    }

    /// `online` and a tab becoming visible cut a pending backoff short. `on == false` removes
    /// the listeners again.
    fn listen(self: &Rc<Self>, on: bool) {
        let Some(window) = web_sys::window() else {
            return;
        };
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
