//! Operations: one snapshot of the server's figures ([`figures`]) rendered as the public status
//! page's data, `health/check` and `/metrics`; the public status page and `/status.json` ([`status`]), Prometheus `/metrics`
//! and the counters behind the status page's rates ([`metrics`]), logging ([`logging`]), and
//! the graceful drain on shutdown ([`drain`]).

pub mod drain;
pub mod figures;
pub mod logging;
pub mod metrics;
pub mod status;
