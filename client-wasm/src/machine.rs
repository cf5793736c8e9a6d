//! The connection state machine, free of I/O ("sans-IO"): the browser glue feeds it [`Input`]s
//! with the current time and carries out the [`Action`]s it returns; it asks
//! [`Machine::next_deadline`] when to feed the next [`Input::Tick`].
//!
//! ```text
//! Idle --Start--> Opening --hello--> Authenticating --authenticated--> Connected
//!                   |  ^                  |                               |
//!        close/timeout  `-- Waiting <-----+-------- close / silence ------'
//!                           (backoff)     close 4000-4099: Stopped
//! ```
//!
//! Rules (PROTOCOL.md, spec 4.3): `authenticate` carries the auth token and every content token
//! right after `hello`; `connect` setup handlers run on every authentication, `disconnect` ones
//! when an authenticated connection ends; `connectionFailure` runs once `connectTimeout + 250` ms
//! after start if the page is not connected by then, and when Drupal rejects the token (4001).
//! Heartbeat: `ping` after `heartbeatMs` without sending, give up after `2 * heartbeatMs + 10 s`
//! without hearing anything. Reconnects follow the close code's policy with [`Backoff`].
//!
//! **io facade mode** ([`Machine::for_facade`], the `socket.io.js` the module's own `nodejs.js`
//! loads): the page authenticates, not the machine. After `hello` the machine reports
//! [`IoEvent::Connect`] (the module answers with `emit('authenticate', …)`, which comes back as
//! [`Input::AuthenticateWith`]); if the page did not authenticate from its `connect` listeners
//! ([`Input::ConnectHandled`]) the last object it emitted is sent. The module runs its own setup
//! handlers and failure check there, so the machine reports io events instead of
//! [`SetupEvent`]s.
//!
//! **Recovery** ([`crate::recovery`]): the machine keeps the position of every recorded stream,
//! drops duplicates, and after a reconnect (any authentication but the first) sends the
//! positions in `authenticate`, on both paths. From the answer it reports an
//! [`Action::Recovery`] (the io facade too: the module knows nothing of it) and the presence
//! notifications that bring the page's picture up to date ([`Action::Presence`]).
//!
//! **Requests** (`message` to Drupal, `publish` to a channel) are sent once authenticated,
//! queued (at most [`QUEUE_MAX`]) while the client is connecting or waiting, and refused at once
//! when it is stopped. A request with an `id` gets exactly one [`Action::Reply`]: the server's
//! `ack` or `error`, or a local refusal (`not-connected`, `connection-lost`, `timeout` after
//! [`REQUEST_TIMEOUT_MS`]).

use crate::backoff::{Backoff, Rng, soon_delay};
use crate::incoming::{Envelope, Incoming};
use crate::out::{Out, Policy, Resume, digits, policy, stop_reason};
pub use crate::recovery::Outcome;
use crate::recovery::{Position, Positions, Presence};
pub use crate::status::{IoEvent, SetupEvent, State, Status};
use crate::tokens::TokenMap;
use crate::tokens::Tokens;
use alloc::string::String;
use alloc::vec::Vec;

/// A connection authenticated for this long resets the backoff when it drops.
pub const STABLE_MS: u64 = 5_000;
/// Code the machine reports for connections it gave up on itself (connect or heartbeat timeout).
pub const LOST: u16 = 1006;
/// Extra silence allowed on top of two heartbeat periods.
pub const HEARTBEAT_GRACE_MS: u64 = 10_000;
/// Requests held while not connected, at most.
pub const QUEUE_MAX: usize = 64;
/// A request still unanswered after this long gets a `timeout` refusal.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;

/// What the client needs from the page settings (our shim reads them in
/// `drupal-js/src/page.js`: Drupal 8+'s `drupalSettings.nodejs`, Drupal 7's
/// `Drupal.settings.nodejs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `ws://host:port/path` or `wss://…`.
    pub url: String,
    pub auth_token: String,
    /// Content-token channel -> token, from `contentTokens`.
    pub content_tokens: TokenMap,
    /// `connectionFailure` handlers run this long (plus 250 ms) after start when the page is
    /// not connected by then; also the time an attempt may take.
    pub connect_timeout_ms: u64,
}

/// A request of the page: a message for Drupal (`channel` is `None`) or a publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Request<M> {
    pub channel: Option<String>,
    pub message: M,
    pub echo: bool,
    /// Set when the page wants the answer ([`Action::Reply`] with this id).
    pub id: Option<u32>,
}

/// Why a request failed: the server's error code and text, or a local one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl Refusal {
    fn local(code: &str, message: &str) -> Self {
        Refusal { code: code.into(), message: message.into() }
    }
}

/// Something that happened. `M` is the Drupal message payload (a JS object in the browser).
#[derive(Debug, Clone, PartialEq)]
pub enum Input<M> {
    /// `Drupal.behaviors.nodejs` attached: connect.
    Start,
    /// A frame arrived on connection `conn`.
    Frame { conn: u32, frame: Incoming<M> },
    /// Connection `conn` closed (or could not be opened) with this close code.
    Closed { conn: u32, code: u16 },
    /// A deadline passed.
    Tick,
    /// The browser went online or the tab became visible: stop waiting.
    Wake,
    /// `Drupal.Nodejs.joinTokenChannel(channel, token)`.
    Join { channel: String, token: String },
    /// `Drupal.Nodejs.sendAuthMessage()`: (re)connect and authenticate with the current settings.
    Reauthenticate,
    /// The page emitted `authenticate` with this object (io facade); `id` asks for an
    /// [`Action::AuthAck`] once authenticated.
    AuthenticateWith { data: M, id: Option<u32> },
    /// The glue ran the page's `connect` listeners (io facade).
    ConnectHandled,
    /// A request of the page.
    Request(Request<M>),
    /// `socket.disconnect()`: close and stay disconnected.
    Stop,
}

/// Something the glue must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<M> {
    /// Open a WebSocket to `url`; its events are reported with `conn`.
    Open {
        conn: u32,
        url: String,
    },
    Send {
        conn: u32,
        frame: Out<M>,
    },
    /// Close connection `conn`; the machine has already moved on.
    Close {
        conn: u32,
        reason: &'static str,
    },
    /// Hand a Drupal message to the page, which applies every dispatch rule (the module's
    /// `runCallbacks`, or the io facade's `message` listeners, then drupal-push's listeners:
    /// `drupal-js/src/page.js`); the listeners' `meta` is the envelope's `channel`, and the
    /// stream and position of a recorded message.
    Dispatch {
        message: M,
        channel: Option<String>,
        recorded: Option<(String, Position)>,
    },
    /// After a reconnect: what was recovered; `recoveryFailed(failed)` handlers run when some
    /// stream was not, and the `drupal-push:status` event carries it.
    Recovery(Outcome),
    /// Hand the page a presence notification `{uid, event}` it missed while disconnected (like
    /// a message without a channel).
    Presence {
        uid: u64,
        online: bool,
    },
    /// Run this kind of `connectionSetupHandlers` (our shim).
    Setup(SetupEvent),
    /// Fire this event on the io facade's socket.
    Io(IoEvent),
    /// The answer to the request with this id.
    Reply {
        id: u32,
        result: Result<M, Refusal>,
    },
    /// Call the ack of the page's `authenticate` emit with this id.
    AuthAck(u32),
    /// `console.warn`.
    Warn(String),
    /// The state changed: update `Drupal.Nodejs.socket` and tell listeners.
    Status(Status),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Opening {
        conn: u32,
        since: u64,
    },
    /// `sent`: the `authenticate` frame went out on this connection.
    Authenticating {
        conn: u32,
        socket_id: String,
        sent: bool,
    },
    Connected {
        conn: u32,
        socket_id: String,
        since: u64,
    },
    Waiting {
        until: u64,
        delay: u64,
    },
    Stopped,
}

#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    every: u64,
    last_sent: u64,
    last_heard: u64,
}

/// The connection state machine; see the module docs.
#[derive(Debug)]
pub struct Machine<M> {
    url: String,
    auth_token: String,
    connect_timeout_ms: u64,
    tokens: Tokens,
    phase: Phase,
    heartbeat: Option<Heartbeat>,
    backoff: Backoff,
    rng: Rng,
    next_conn: u32,
    attempts: u32,
    uid: Option<u64>,
    last_close: Option<u16>,
    failure_check_at: Option<u64>,
    failure_reported: bool,
    /// io facade mode (see the module docs).
    facade: bool,
    /// io facade: the last object the page emitted with `authenticate`.
    page_auth: Option<M>,
    /// io facade: acks of `authenticate` emits to call once authenticated.
    auth_acks: Vec<u32>,
    /// io facade: `connect` was reported for some connection already.
    connected_before: bool,
    /// Some connection authenticated before: the next `authenticate` carries the positions.
    authenticated_before: bool,
    positions: Positions,
    presence: Presence,
    queue: Vec<Request<M>>,
    /// Requests sent with an id, and when they time out.
    pending: Vec<(u32, u64)>,
    out: Vec<Action<M>>,
}

impl<M: Clone> Machine<M> {
    /// The io facade's machine: connects to `url`; the page authenticates.
    pub fn for_facade(url: String, connect_timeout_ms: u64, seed: u64) -> Self {
        let settings = Settings {
            url,
            auth_token: String::new(),
            content_tokens: TokenMap::default(),
            connect_timeout_ms,
        };
        Machine::with_role(settings, seed, true)
    }

    /// Our shim's machine (`facade` false) or the io facade's (the settings' auth token and
    /// content tokens are then unused: the page authenticates).
    pub fn with_role(settings: Settings, seed: u64, facade: bool) -> Self {
        Machine { facade, ..Machine::new(settings, seed) }
    }

    pub fn new(settings: Settings, seed: u64) -> Self {
        Machine {
            url: settings.url,
            auth_token: settings.auth_token,
            connect_timeout_ms: settings.connect_timeout_ms,
            tokens: Tokens::new(settings.content_tokens),
            phase: Phase::Idle,
            heartbeat: None,
            backoff: Backoff::default(),
            rng: Rng::new(seed),
            next_conn: 0,
            attempts: 0,
            uid: None,
            last_close: None,
            failure_check_at: None,
            failure_reported: false,
            facade: false,
            page_auth: None,
            auth_acks: Vec::new(),
            connected_before: false,
            authenticated_before: false,
            positions: Positions::default(),
            presence: Presence::default(),
            queue: Vec::new(),
            pending: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn is_facade(&self) -> bool {
        self.facade
    }

    /// Takes the auth token and content tokens the page settings hold now (the glue calls it
    /// before opening a connection, so `authenticate` sees what Drupal AJAX added meanwhile).
    pub fn refresh(&mut self, auth_token: Option<String>, tokens: TokenMap) {
        if let Some(token) = auth_token {
            self.auth_token = token;
        }
        self.tokens.merge(tokens);
    }

    /// Feeds one input at time `now` (milliseconds); returns what to do.
    pub fn handle(&mut self, now: u64, input: Input<M>) -> Vec<Action<M>> {
        let before = self.status();
        match input {
            Input::Start => {
                if self.phase == Phase::Idle {
                    if !self.facade {
                        self.failure_check_at = Some(now + self.connect_timeout_ms + 250);
                    }
                    self.open(now);
                }
            }
            Input::Frame { conn, frame } if Some(conn) == self.conn() => self.on_frame(now, conn, frame),
            Input::Closed { conn, code } if Some(conn) == self.conn() => self.lost(now, code),
            Input::Frame { .. } | Input::Closed { .. } => {}
            Input::Tick => self.on_tick(now),
            Input::Wake => {
                if matches!(self.phase, Phase::Waiting { .. }) {
                    self.open(now);
                }
            }
            Input::Join { channel, token } => self.on_join(now, &channel, &token),
            Input::Reauthenticate => match self.phase {
                Phase::Idle => return self.handle(now, Input::Start),
                Phase::Waiting { .. } | Phase::Stopped => {
                    self.backoff.reset();
                    self.open(now);
                }
                _ => {}
            },
            Input::AuthenticateWith { data, id } => self.on_page_auth(now, data, id),
            Input::ConnectHandled => {
                if let (Phase::Authenticating { sent: false, .. }, Some(data)) =
                    (&self.phase, &self.page_auth)
                {
                    let frame = Out::AuthenticateWith { data: data.clone(), positions: self.resume() };
                    self.auth_sent(now, frame);
                }
            }
            Input::Request(request) => self.on_request(now, request),
            Input::Stop => {
                if let Some(conn) = self.conn() {
                    self.out.push(Action::Close { conn, reason: "closed by the page" });
                }
                self.lost(now, 1000);
                self.phase = Phase::Stopped;
                self.failure_check_at = None;
                for request in core::mem::take(&mut self.queue) {
                    self.refuse(request.id, "not-connected", "the client is stopped");
                }
            }
        }
        let after = self.status();
        if after != before {
            self.out.push(Action::Status(after));
        }
        core::mem::take(&mut self.out)
    }

    /// When the glue must feed the next [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<u64> {
        let phase = match self.phase {
            Phase::Opening { since, .. } => Some(since + self.connect_timeout_ms),
            Phase::Waiting { until, .. } => Some(until),
            _ => None,
        };
        let heartbeat = self.heartbeat.map(|h| (h.last_sent + h.every).min(h.dead_at()));
        let request = self.pending.iter().map(|(_, at)| *at).min();
        [phase, heartbeat, self.failure_check_at, request].into_iter().flatten().min()
    }

    pub fn status(&self) -> Status {
        let (state, socket_id, retry_in_ms) = match &self.phase {
            Phase::Idle => (State::Idle, None, None),
            Phase::Opening { .. } => (State::Connecting, None, None),
            Phase::Authenticating { socket_id, .. } => (State::Authenticating, Some(socket_id.clone()), None),
            Phase::Connected { socket_id, .. } => (State::Connected, Some(socket_id.clone()), None),
            Phase::Waiting { delay, .. } => (State::Waiting, None, Some(*delay)),
            Phase::Stopped => (State::Stopped, None, None),
        };
        Status {
            state,
            socket_id,
            uid: self.uid.filter(|_| state == State::Connected),
            attempts: self.attempts,
            last_close: self.last_close,
            retry_in_ms,
        }
    }

    /// The socket id messages are compared with for the self-skip rule.
    pub fn socket_id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Authenticating { socket_id, .. } | Phase::Connected { socket_id, .. } => Some(socket_id),
            _ => None,
        }
    }

    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The positions for an `authenticate`: after a reconnect only (even none: the server then
    /// still sends the presence picture).
    fn resume(&self) -> Resume {
        self.authenticated_before.then(|| self.positions.iter().cloned().collect())
    }

    fn conn(&self) -> Option<u32> {
        match self.phase {
            Phase::Opening { conn, .. }
            | Phase::Authenticating { conn, .. }
            | Phase::Connected { conn, .. } => Some(conn),
            _ => None,
        }
    }

    fn open(&mut self, now: u64) {
        self.next_conn = self.next_conn.wrapping_add(1);
        self.attempts = self.attempts.saturating_add(1);
        let conn = self.next_conn;
        self.phase = Phase::Opening { conn, since: now };
        self.heartbeat = None;
        self.out.push(Action::Open { conn, url: self.url.clone() });
    }

    fn send(&mut self, now: u64, frame: Out<M>) {
        let Some(conn) = self.conn() else { return };
        if let Some(h) = &mut self.heartbeat {
            h.last_sent = now;
        }
        self.out.push(Action::Send { conn, frame });
    }

    fn on_frame(&mut self, now: u64, conn: u32, frame: Incoming<M>) {
        if let Some(h) = &mut self.heartbeat {
            h.last_heard = now;
        }
        match frame {
            Incoming::Hello { socket_id, heartbeat_ms } => {
                if !matches!(self.phase, Phase::Opening { .. }) {
                    return self.out.push(Action::Warn("drupal-push: unexpected hello".into()));
                }
                let every = heartbeat_ms.max(1000);
                self.heartbeat = Some(Heartbeat { every, last_sent: now, last_heard: now });
                self.phase = Phase::Authenticating { conn, socket_id, sent: false };
                if self.facade {
                    self.out.push(Action::Io(IoEvent::Connect));
                    if self.connected_before {
                        self.out.push(Action::Io(IoEvent::Reconnect));
                    }
                    self.connected_before = true;
                } else {
                    let frame = Out::Authenticate {
                        auth_token: self.auth_token.clone(),
                        content_tokens: self.tokens.for_authenticate(),
                        positions: self.resume(),
                    };
                    self.auth_sent(now, frame);
                }
            }
            Incoming::Authenticated { socket_id, uid, streams, recovered, online } => {
                if !matches!(self.phase, Phase::Authenticating { .. }) {
                    return;
                }
                let outcome = self.positions.settle(streams, &recovered);
                self.phase = Phase::Connected { conn, socket_id, since: now };
                self.uid = Some(uid);
                self.failure_reported = false;
                for (channel, token) in self.tokens.take_deferred() {
                    self.send(now, Out::Join { channel, token });
                }
                for request in core::mem::take(&mut self.queue) {
                    self.send_request(now, request);
                }
                if self.facade {
                    for id in core::mem::take(&mut self.auth_acks) {
                        self.out.push(Action::AuthAck(id));
                    }
                } else {
                    self.out.push(Action::Setup(SetupEvent::Connect));
                }
                if core::mem::replace(&mut self.authenticated_before, true) {
                    self.out.push(Action::Recovery(outcome));
                    for (uid, online) in online.map(|o| self.presence.replace(&o)).unwrap_or_default() {
                        self.out.push(Action::Presence { uid, online });
                    }
                }
            }
            Incoming::Joined { stream, position } => self.positions.start(stream, position),
            Incoming::Message(envelope) => self.on_message(envelope),
            Incoming::Ack { id, result } => self.reply(id, Ok(result)),
            Incoming::Error { code, message, id: Some(id) } if self.is_pending(id) => {
                self.reply(id, Err(Refusal { code, message }))
            }
            Incoming::Error { code, message, .. } => {
                let text = ["drupal-push: the server refused a frame (", &code, "): ", &message];
                self.out.push(Action::Warn(crate::out::cat(&text)));
            }
            Incoming::Ping => self.send(now, Out::Pong),
            Incoming::Pong => {}
            Incoming::Invalid(why) => {
                self.out.push(Action::Warn(crate::out::cat(&["drupal-push: ignored a frame: ", &why])))
            }
        }
    }

    /// A Drupal message: dropped when its stream already had it, else handed to the page.
    fn on_message(&mut self, envelope: Envelope<M>) {
        let Envelope { message, channel, recorded, presence } = envelope;
        if let Some((key, p)) = &recorded
            && !self.positions.accept(key, p.offset, &p.epoch)
        {
            return;
        }
        if let Some((uid, online)) = presence {
            self.presence.note(uid, online);
        }
        self.out.push(Action::Dispatch { message, channel, recorded });
    }

    fn on_tick(&mut self, now: u64) {
        self.expire_requests(now);
        if self.failure_check_at.is_some_and(|at| now >= at) {
            self.failure_check_at = None;
            if !matches!(self.phase, Phase::Connected { .. }) {
                self.report_failure();
            }
        }
        match self.phase {
            Phase::Opening { conn, since } if now >= since + self.connect_timeout_ms => {
                self.give_up(now, conn, "connect-timeout")
            }
            Phase::Waiting { until, .. } if now >= until => self.open(now),
            _ => {}
        }
        let (Some(h), Some(conn)) = (self.heartbeat, self.conn()) else {
            return;
        };
        if now >= h.dead_at() {
            self.give_up(now, conn, "heartbeat-timeout");
        } else if now >= h.last_sent + h.every {
            self.send(now, Out::Ping);
        }
    }

    fn give_up(&mut self, now: u64, conn: u32, reason: &'static str) {
        self.out.push(Action::Close { conn, reason });
        self.lost(now, LOST);
    }

    fn report_failure(&mut self) {
        if !self.failure_reported {
            self.failure_reported = true;
            self.out.push(Action::Setup(SetupEvent::ConnectionFailure));
        }
    }

    fn on_join(&mut self, now: u64, channel: &str, token: &str) {
        let changed = self.tokens.join(channel, token);
        match self.phase {
            Phase::Connected { .. } => {
                self.send(now, Out::Join { channel: channel.into(), token: token.into() });
            }
            Phase::Authenticating { .. } if changed || self.facade => self.tokens.defer(channel, token),
            _ => {}
        }
    }

    fn auth_sent(&mut self, now: u64, frame: Out<M>) {
        if let Phase::Authenticating { sent, .. } = &mut self.phase {
            *sent = true;
        }
        self.send(now, frame);
    }

    /// io facade: the page emitted `authenticate`. Sent now if this connection awaits it, else
    /// kept for the next one (the module emits it again from every `connect` anyway).
    fn on_page_auth(&mut self, now: u64, data: M, id: Option<u32>) {
        let awaiting = matches!(self.phase, Phase::Authenticating { sent: false, .. });
        self.page_auth = Some(data.clone());
        match (&self.phase, id) {
            (Phase::Connected { .. }, Some(id)) => self.out.push(Action::AuthAck(id)),
            (_, Some(id)) => self.auth_acks.push(id),
            _ => {}
        }
        if awaiting {
            let frame = Out::AuthenticateWith { data, positions: self.resume() };
            self.auth_sent(now, frame);
        }
    }

    fn on_request(&mut self, now: u64, request: Request<M>) {
        match self.phase {
            Phase::Connected { .. } => self.send_request(now, request),
            Phase::Stopped => self.refuse(request.id, "not-connected", "the client is stopped"),
            _ if self.queue.len() >= QUEUE_MAX => {
                self.refuse(request.id, "not-connected", "too many requests wait for the connection")
            }
            _ => self.queue.push(request),
        }
    }

    fn send_request(&mut self, now: u64, request: Request<M>) {
        let Request { channel, message, echo, id } = request;
        if let Some(id) = id {
            self.pending.push((id, now + REQUEST_TIMEOUT_MS));
        }
        let frame = match channel {
            Some(channel) => Out::Publish { channel, message, echo, id },
            None => Out::Message { message, id },
        };
        self.send(now, frame);
    }

    fn is_pending(&self, id: u64) -> bool {
        self.pending.iter().any(|(p, _)| u64::from(*p) == id)
    }

    fn reply(&mut self, id: u64, result: Result<M, Refusal>) {
        if self.is_pending(id) {
            self.pending.retain(|(p, _)| u64::from(*p) != id);
            self.out.push(Action::Reply { id: id as u32, result });
        }
    }

    fn refuse(&mut self, id: Option<u32>, code: &str, message: &str) {
        if let Some(id) = id {
            self.out.push(Action::Reply { id, result: Err(Refusal::local(code, message)) });
        }
    }

    fn expire_requests(&mut self, now: u64) {
        let (late, keep): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(_, at)| now >= *at);
        self.pending = keep;
        for (id, _) in late {
            self.refuse(Some(id), "timeout", "no answer from the server");
        }
    }

    /// The current connection ended with `code`: tell the page and decide what comes next.
    fn lost(&mut self, now: u64, code: u16) {
        let stop = policy(code) == Policy::Stop;
        match self.phase {
            Phase::Connected { since, .. } => {
                if now.saturating_sub(since) >= STABLE_MS {
                    self.backoff.reset();
                }
                if !self.facade {
                    self.out.push(Action::Setup(SetupEvent::Disconnect));
                }
            }
            Phase::Opening { .. } if self.facade => self.out.push(Action::Io(IoEvent::ConnectError)),
            _ => {}
        }
        if self.facade && matches!(self.phase, Phase::Authenticating { .. } | Phase::Connected { .. }) {
            self.out.push(Action::Io(IoEvent::Disconnect { by_server: stop }));
        }
        for (id, _) in core::mem::take(&mut self.pending) {
            self.refuse(Some(id), "connection-lost", "the connection closed before the answer");
        }
        self.heartbeat = None;
        self.last_close = Some(code);
        match policy(code) {
            Policy::Stop => {
                self.phase = Phase::Stopped;
                self.failure_check_at = None;
                self.auth_acks.clear();
                for request in core::mem::take(&mut self.queue) {
                    self.refuse(request.id, "not-connected", "the client is stopped");
                }
                let text = [
                    "drupal-push: the server closed the connection (",
                    &digits(code.into()),
                    " ",
                    stop_reason(code),
                    "); not reconnecting",
                ];
                self.out.push(Action::Warn(crate::out::cat(&text)));
                if code == 4001 && !self.facade {
                    self.report_failure();
                }
            }
            Policy::Backoff => {
                let delay = self.backoff.next_delay(self.rng.unit());
                self.phase = Phase::Waiting { until: now + delay, delay };
            }
            Policy::Soon => {
                let delay = soon_delay(self.rng.unit());
                self.phase = Phase::Waiting { until: now + delay, delay };
            }
        }
    }
}

impl Heartbeat {
    fn dead_at(&self) -> u64 {
        self.last_heard + 2 * self.every + HEARTBEAT_GRACE_MS
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
