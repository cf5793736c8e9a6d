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

/// Coarse state, for the page and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
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

/// What `Drupal.Nodejs.socket` and the `drupal-push:status` event show.
#[derive(Debug, Clone, PartialEq, Eq)]
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
