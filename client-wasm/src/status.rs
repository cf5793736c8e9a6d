//! What the machine tells the page: the kinds of `connectionSetupHandlers` it fires, and the
//! coarse connection state shown on `Drupal.Nodejs.socket` and in `drupal-push:status` events.

/// The kinds of `connectionSetupHandlers` the module fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupEvent {
    Connect,
    Disconnect,
    ConnectionFailure,
}

impl SetupEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            SetupEvent::Connect => "connect",
            SetupEvent::Disconnect => "disconnect",
            SetupEvent::ConnectionFailure => "connectionFailure",
        }
    }
}

/// Events of the io facade's socket (socket.io's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoEvent {
    /// The WebSocket is up (`hello`): the page authenticates now.
    Connect,
    /// After `Connect`, on every connection but the first.
    Reconnect,
    /// A connection that fired `Connect` ended; `by_server` when it will not come back
    /// (kick, logout, rejected token: socket.io's "io server disconnect").
    Disconnect { by_server: bool },
    /// An attempt failed before the WebSocket was up.
    ConnectError,
}

impl IoEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            IoEvent::Connect => "connect",
            IoEvent::Reconnect => "reconnect",
            IoEvent::Disconnect { .. } => "disconnect",
            IoEvent::ConnectError => "connect_error",
        }
    }
}

/// Coarse state, for the page and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Idle,
    Connecting,
    Authenticating,
    Connected,
    Waiting,
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Connecting => "connecting",
            State::Authenticating => "authenticating",
            State::Connected => "connected",
            State::Waiting => "waiting",
            State::Stopped => "stopped",
        }
    }
}

use alloc::string::String;

/// What `Drupal.Nodejs.socket` and the `drupal-push:status` event show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub state: State,
    /// Socket id while a connection is up (from `hello`).
    pub socket_id: Option<String>,
    pub uid: Option<u64>,
    /// WebSockets opened so far.
    pub attempts: u32,
    /// Close code of the last connection.
    pub last_close: Option<u16>,
    /// Delay before the next attempt while waiting.
    pub retry_in_ms: Option<u64>,
}
