//! Browser client of drupal-push: speaks the drupal-push WebSocket protocol and offers the
//! `Drupal.Nodejs` API of Drupal's nodejs module, so page code written for the module keeps
//! working.
//!
//! Start reading at [`machine`]: the connection state machine (handshake, heartbeat,
//! reconnection, setup-handler events), pure Rust and tested natively. Beside it, also pure:
//! [`incoming`] (the frames it reads), [`settings`] (page settings), [`backoff`] (delays),
//! [`tokens`] (content tokens) and [`dispatch`] (which callbacks a message reaches). The
//! browser glue is compiled for wasm32 only: `web` runs the machine over a real WebSocket and
//! timers, `js_frames` parses frames with `JSON.parse`, `page` reads the settings and calls page
//! callbacks, `api` is the exported JavaScript surface used by `drupal-js/drupal-push.js`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backoff;
pub mod dispatch;
pub mod incoming;
pub mod machine;
pub mod settings;
pub mod status;
pub mod tokens;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod js_frames;
#[cfg(target_arch = "wasm32")]
pub mod page;
#[cfg(target_arch = "wasm32")]
pub mod web;
