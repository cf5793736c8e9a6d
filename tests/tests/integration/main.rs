//! The integration tests of drupal-push, one binary: each module is one subject, served by an
//! in-process server on port 0 (`drupal_push_tests::server`) in front of the real HTTP fake of
//! Drupal (`drupal_push_tests::fake_drupal`), driven over real sockets. `tests/run-all.sh` runs
//! the binary twice: on the memory engine, then with `DRUPAL_PUSH_TEST_ENGINE=redis` on the Redis
//! engine (each server with a `redis-server` of its own). A test about one engine's own feature
//! asks for it by name (`Setup::memory_engine`) and runs on it in both passes; none returns
//! early.
//!
//! One binary rather than one per file: each binary links the whole server (CI once ran out of
//! disk with about 25 of them), and one binary runs its tests in parallel threads.

mod admission;
mod api_routes;
mod auth_fairness;
mod backend_failures;
mod backend_load;
mod bad_input;
mod client_channels;
mod client_messages;
mod delivery;
mod fuzz_corpus;
mod metrics;
mod open_modes;
mod presence;
mod presence_notices;
mod recovery;
mod redis_keys;
mod shutdown;
mod slow_consumer;
mod stream_names;
mod tls;
mod token_channel_abuse;
mod token_channels;
mod token_join_cost;
mod untrusted_proxy;
mod ws_conformance;
