//! Test support for drupal-push: everything the integration tests (in `tests/tests/`) need to
//! drive a real server over real sockets.
//!
//! * [`fake_drupal`]: a real HTTP server playing Drupal's `/nodejs/message` endpoint, scriptable
//!   per auth token (valid, invalid, slow, 404, redirect, garbage, error, hang-up), recording
//!   every message the server sends it. The browser tests run the same fake as a process
//!   (`fake-drupal`, `src/bin/fake-drupal.rs`), so there is one fake Drupal for every test.
//! * [`server`]: starts the drupal-push server in-process on port 0 against a fake Drupal, and
//!   calls its REST API like Drupal does.
//! * [`client`]: a WebSocket test client built on the protocol crate; every wait has a timeout.
//! * [`redis`] and [`cluster`]: real `redis-server` processes, and several nodes of the real
//!   binary sharing one (for the tests of the Redis engine).
//! * [`logs`]: the log lines of in-process servers, captured for tests that assert what is logged.
//! * [`fuzz`]: what each fuzz target of `server/fuzz/` runs on one input; the corpus replay test
//!   runs the same functions under plain `cargo test`.
//!
//! The load generator is a crate of its own, `tests/loadgen/` (`drupal-push-bench`).

pub mod client;
pub mod cluster;
pub mod fake_drupal;
pub mod fuzz;
pub mod logs;
pub mod redis;
pub mod server;

pub use client::TestClient;
pub use fake_drupal::{Answer, FakeDrupal};
pub use server::{Setup, TestServer};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until `cond` holds, polling every 10 ms, failing the test after [`WAIT`].
pub async fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(WAIT, what, cond).await
}

/// [`wait_until`] with another limit.
pub async fn wait_until_within(limit: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// An HTTP client for tests (installs the TLS crypto provider reqwest needs first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
