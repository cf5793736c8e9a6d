//! Operations: the public status page and `/status.json` ([`status`]), Prometheus `/metrics`
//! and the counters behind the status page's rates ([`metrics`]), logging ([`logging`]), and
//! the graceful drain on shutdown ([`drain`]).

pub mod drain;
pub mod logging;
pub mod metrics;
pub mod status;
