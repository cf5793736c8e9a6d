//! Error types, one per boundary, each with one outward form.

use drupal_push_protocol::CloseCode;

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
    /// The close code a client gets when its authentication failed this way.
    pub fn close_code(&self) -> CloseCode {
        match self {
            BackendError::InvalidToken => CloseCode::AUTH_REJECTED,
            _ => CloseCode::BACKEND_UNAVAILABLE,
        }
    }
}
