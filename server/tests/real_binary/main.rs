//! Tests of the real `drupal-push` binary, one test binary: each module starts processes of it
//! (`CARGO_BIN_EXE_drupal-push`) and talks to them over real sockets: start-up with a TOML file
//! and a `nodejs.config.js`, several nodes on real `redis-server`s, shutdown and logs, and the
//! limits that need a process of their own (file descriptors, RSS).
//!
//! One binary rather than one per file: each links the whole server and its test support.

mod binary;
mod cluster;
mod cluster_client_requests;
mod drain_and_logs;
mod http_limits;
mod ping_flood;
mod process;
