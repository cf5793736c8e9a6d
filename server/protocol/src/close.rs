//! WebSocket close codes and the reconnection policy a client follows after each.
//!
//! Ranges (design section 1): 4000-4099 never reconnect (the server refused this client);
//! 4100-4199 reconnect with backoff (a transient problem); 1001 reconnect soon (the server is
//! restarting). Any other close, or a dropped connection (1006), reconnects with backoff.

/// A close code sent by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// The server is shutting down or restarting.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// A frame the server cannot accept (binary data).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// A frame larger than the server's frame limit.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// Drupal said the auth token is not valid (`nodejsValidAuthToken` false).
    pub const AUTH_REJECTED: CloseCode = CloseCode(4001);
    /// Drupal kicked this user (`/nodejs/user/kick/:uid`).
    pub const KICKED: CloseCode = CloseCode(4002);
    /// Drupal logged this session out (`/nodejs/user/logout/:authToken`).
    pub const LOGGED_OUT: CloseCode = CloseCode(4003);
    /// The client broke the protocol in a way retrying cannot fix.
    pub const PROTOCOL_VIOLATION: CloseCode = CloseCode(4004);
    /// Drupal could not be asked (down, slow, redirecting, 404, garbage answer).
    pub const BACKEND_UNAVAILABLE: CloseCode = CloseCode(4100);
    /// The client did not read its messages fast enough; it may reconnect and catch up.
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4101);
    /// No `authenticate` frame arrived in time after the upgrade.
    pub const AUTH_TIMEOUT: CloseCode = CloseCode(4102);
    /// Nothing arrived from the client for longer than the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4103);
    /// The server holds as many connections as it is configured for (in all, or from this address).
    pub const TOO_MANY_CONNECTIONS: CloseCode = CloseCode(4104);
    /// The client's address sent more authentications than the server's per-address rate allows.
    pub const RATE_LIMITED: CloseCode = CloseCode(4105);

    /// What a client should do after the server closed with this code.
    pub fn policy(self) -> ReconnectPolicy {
        match self.0 {
            1001 => ReconnectPolicy::Soon,
            4000..=4099 => ReconnectPolicy::Stop,
            _ => ReconnectPolicy::Backoff,
        }
    }

    /// A short machine-readable name, also used as the close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self.0 {
            1001 => "going-away",
            1003 => "unsupported-data",
            1009 => "message-too-big",
            4001 => "auth-rejected",
            4002 => "kicked",
            4003 => "logged-out",
            4004 => "protocol-violation",
            4100 => "backend-unavailable",
            4101 => "slow-consumer",
            4102 => "auth-timeout",
            4103 => "heartbeat-timeout",
            4104 => "too-many-connections",
            4105 => "rate-limited",
            _ => "closed",
        }
    }
}

/// What a client does after a close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconnectPolicy {
    /// Do not reconnect: the server refused this client on purpose.
    Stop,
    /// Reconnect after an exponential, jittered backoff.
    Backoff,
    /// Reconnect after a short jittered delay (the server restarts).
    Soon,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_decide_the_policy() {
        assert_eq!(CloseCode::AUTH_REJECTED.policy(), ReconnectPolicy::Stop);
        assert_eq!(CloseCode::KICKED.policy(), ReconnectPolicy::Stop);
        assert_eq!(CloseCode::LOGGED_OUT.policy(), ReconnectPolicy::Stop);
        assert_eq!(CloseCode::PROTOCOL_VIOLATION.policy(), ReconnectPolicy::Stop);
        assert_eq!(CloseCode::BACKEND_UNAVAILABLE.policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode::SLOW_CONSUMER.policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode::HEARTBEAT_TIMEOUT.policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode::RATE_LIMITED.policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode::GOING_AWAY.policy(), ReconnectPolicy::Soon);
        assert_eq!(CloseCode(1006).policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode(1000).policy(), ReconnectPolicy::Backoff);
        assert_eq!(CloseCode::KICKED.reason(), "kicked");
    }
}
