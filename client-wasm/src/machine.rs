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

use crate::backoff::{Backoff, Rng, soon_delay};
use crate::incoming::Incoming;
pub use crate::status::{SetupEvent, State, Status};
use crate::tokens::Tokens;
use drupal_push_protocol::frames::{Authenticate, JoinTokenChannel};
use drupal_push_protocol::{ClientFrame, CloseCode, ReconnectPolicy};
use serde_json::Map;
use std::collections::BTreeMap;

/// A connection authenticated for this long resets the backoff when it drops.
pub const STABLE_MS: u64 = 5_000;
/// Code the machine reports for connections it gave up on itself (connect or heartbeat timeout).
pub const LOST: u16 = 1006;
/// Extra silence allowed on top of two heartbeat periods.
pub const HEARTBEAT_GRACE_MS: u64 = 10_000;

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
        frame: ClientFrame,
    },
    /// Close connection `conn`; the machine has already moved on.
    Close {
        conn: u32,
        reason: &'static str,
    },
    /// Hand a Drupal message to `Drupal.Nodejs.runCallbacks`.
    Dispatch(M),
    /// Run this kind of `connectionSetupHandlers`.
    Setup(SetupEvent),
    /// `console.warn`.
    Warn(String),
    /// The state changed: update `Drupal.Nodejs.socket` and tell listeners.
    Status(Status),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Opening { conn: u32, since: u64 },
    Authenticating { conn: u32, socket_id: String },
    Connected { conn: u32, socket_id: String, since: u64 },
    Waiting { until: u64, delay: u64 },
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
    out: Vec<Action<M>>,
}

impl<M> Machine<M> {
    pub fn new(settings: crate::settings::Settings, seed: u64) -> Self {
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
            out: Vec::new(),
        }
    }

    /// Takes the auth token and content tokens the page settings hold now (the glue calls it
    /// before opening a connection, so `authenticate` sees what Drupal AJAX added meanwhile).
    pub fn refresh(&mut self, auth_token: Option<String>, tokens: BTreeMap<String, String>) {
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
                    self.failure_check_at = Some(now + self.connect_timeout_ms + 250);
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
        }
        let after = self.status();
        if after != before {
            self.out.push(Action::Status(after));
        }
        std::mem::take(&mut self.out)
    }

    /// When the glue must feed the next [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<u64> {
        let phase = match self.phase {
            Phase::Opening { since, .. } => Some(since + self.connect_timeout_ms),
            Phase::Waiting { until, .. } => Some(until),
            _ => None,
        };
        let heartbeat = self.heartbeat.map(|h| (h.last_sent + h.every).min(h.dead_at()));
        [phase, heartbeat, self.failure_check_at].into_iter().flatten().min()
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

    fn send(&mut self, now: u64, frame: ClientFrame) {
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
                self.phase = Phase::Authenticating { conn, socket_id };
                let frame = ClientFrame::Authenticate(Authenticate {
                    auth_token: self.auth_token.clone(),
                    content_tokens: self.tokens.for_authenticate(),
                    positions: None,
                    extra: Map::new(),
                });
                self.send(now, frame);
            }
            Incoming::Authenticated { socket_id, uid } => {
                if !matches!(self.phase, Phase::Authenticating { .. }) {
                    return;
                }
                self.phase = Phase::Connected { conn, socket_id, since: now };
                self.uid = Some(uid);
                self.failure_reported = false;
                for (channel, content_token) in self.tokens.take_deferred() {
                    let join = JoinTokenChannel { channel, content_token };
                    self.send(now, ClientFrame::JoinTokenChannel(join));
                }
                self.out.push(Action::Setup(SetupEvent::Connect));
            }
            Incoming::Message(message) => self.out.push(Action::Dispatch(message)),
            Incoming::Error { code, message } => {
                let text = ["drupal-push: the server refused a frame (", &code, "): ", &message];
                self.out.push(Action::Warn(text.concat()));
            }
            Incoming::Ping => self.send(now, ClientFrame::Pong),
            Incoming::Pong => {}
            Incoming::Invalid(why) => {
                self.out.push(Action::Warn(["drupal-push: ignored a frame: ", &why].concat()))
            }
        }
    }

    fn on_tick(&mut self, now: u64) {
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
            self.send(now, ClientFrame::Ping);
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
                let join = JoinTokenChannel { channel: channel.into(), content_token: token.into() };
                self.send(now, ClientFrame::JoinTokenChannel(join));
            }
            Phase::Authenticating { .. } if changed => self.tokens.defer(channel, token),
            _ => {}
        }
    }

    /// The current connection ended with `code`: tell the page and decide what comes next.
    fn lost(&mut self, now: u64, code: u16) {
        if let Phase::Connected { since, .. } = self.phase {
            if now.saturating_sub(since) >= STABLE_MS {
                self.backoff.reset();
            }
            self.out.push(Action::Setup(SetupEvent::Disconnect));
        }
        self.heartbeat = None;
        self.last_close = Some(code);
        let code = CloseCode(code);
        match code.policy() {
            ReconnectPolicy::Stop => {
                self.phase = Phase::Stopped;
                self.failure_check_at = None;
                self.out.push(Action::Warn(format!(
                    "drupal-push: the server closed the connection ({} {}); not reconnecting",
                    code.0,
                    code.reason()
                )));
                if code == CloseCode::AUTH_REJECTED {
                    self.report_failure();
                }
            }
            ReconnectPolicy::Backoff => {
                let delay = self.backoff.next_delay(self.rng.unit());
                self.phase = Phase::Waiting { until: now + delay, delay };
            }
            ReconnectPolicy::Soon => {
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
