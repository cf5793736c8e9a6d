//! Error types, one per boundary, each with one outward form: [`BackendError`] for calls to
//! Drupal (a close code for the waiting client), [`EngineError`] for the cluster-wide state
//! (the REST layer's `api::ApiError` words each kind with the original's strings; a socket gets
//! an `error` frame or a close code), [`ConfigError`] for a setting that cannot be used,
//! [`StartError`] for what stops the server from starting.

use drupal_push_protocol::{CloseCode, ErrorCode};

/// A failed call to Drupal's `/nodejs/message`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("backend unreachable: {0} (check backend.host, backend.port and backend.scheme)")]
    Unreachable(String),
    #[error("backend did not answer in time (backend.timeoutMs)")]
    Timeout,
    #[error(
        "backend busy: backend.queueLength authentications already wait for one of the backend.concurrency request slots"
    )]
    Busy,
    #[error(
        "backend busy for this address: it already has its backend.queueSharePerAddress of the authentication queue waiting"
    )]
    AddressBusy,
    #[error(
        "backend busy: backend.messageQueueLength browser messages already wait for one of the backend.messageConcurrency request slots"
    )]
    MessagesBusy,
    #[error(
        "backend answered HTTP {status} redirecting to {location:?}: point backend.* at the final address"
    )]
    Redirect { status: u16, location: String },
    #[error("backend answered HTTP {0} (check backend.basePath and backend.messagePath)")]
    Status(u16),
    #[error("backend answer is not JSON: {0}")]
    NotJson(String),
    #[error("backend answered with an error: {0} (a serviceKey mismatch shows as \"Invalid service key.\")")]
    Drupal(String),
    #[error("Drupal rejected the auth token")]
    InvalidToken,
}

impl BackendError {
    /// The `kind` label of `drupal_push_backend_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Unreachable(_) => "unreachable",
            BackendError::Timeout => "timeout",
            BackendError::Busy => "queue_full",
            BackendError::AddressBusy => "queue_share_full",
            BackendError::MessagesBusy => "message_queue_full",
            BackendError::Redirect { .. } => "redirect",
            BackendError::Status(_) => "http_status",
            BackendError::NotJson(_) => "not_json",
            BackendError::Drupal(_) => "drupal_error",
            BackendError::InvalidToken => "invalid_token",
        }
    }

    /// The close code a client gets when its authentication failed this way.
    pub fn close_code(&self) -> CloseCode {
        match self {
            BackendError::InvalidToken => CloseCode::AUTH_REJECTED,
            _ => CloseCode::BACKEND_UNAVAILABLE,
        }
    }
}

/// Why an engine operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The shared state cannot be reached (Redis is down).
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
    /// `channel/add` of a channel that exists.
    #[error("channel {0:?} already exists")]
    ChannelExists(String),
    /// A channel operation on a channel that does not exist.
    #[error("no such channel")]
    NoSuchChannel,
    /// `user/channel/add` for a user without sockets.
    #[error("the user has no sockets")]
    NoActiveSessions,
    /// `authtoken/channel/*` for a session without sockets, or a channel that does not exist.
    #[error("the session has no sockets or the channel does not exist")]
    InvalidParameters,
    /// `content/token/message` to a content-token channel nobody registered.
    #[error("no such content-token channel")]
    NoSuchTokenChannel,
    /// Joining a content-token channel with a token it does not know (or that expired).
    #[error("unknown or expired content token for this channel")]
    UnknownContentToken,
    /// Joining with a content token another session already used.
    #[error("this content token belongs to another session")]
    OtherSession,
}

impl EngineError {
    /// The `error` frame code a socket gets when its request failed this way.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            EngineError::UnknownContentToken | EngineError::OtherSession => ErrorCode::InvalidContentToken,
            _ => ErrorCode::BadFrame,
        }
    }
}

/// A setting that cannot be used: the key it is about (`backend.port`, `allowedOrigins[1]`) and
/// what is wrong with it. Shown as `key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { key: key.into(), message: message.into() }
    }
}

/// What keeps the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("backend: cannot build the HTTP client: {0}")]
    BackendClient(String),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Engine(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
