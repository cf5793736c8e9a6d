//! Browser client of drupal-push: speaks the drupal-push WebSocket protocol and offers the
//! `Drupal.Nodejs` API of Drupal's nodejs module, so page code written for the module keeps
//! working.
//!
//! Start reading at [`machine`]: the connection state machine (handshake, heartbeat,
//! reconnection, requests, setup-handler and io-facade events), pure Rust and tested natively.
//! Beside it, also pure: [`incoming`] (the frames it reads), [`out`] (the frames it sends, close
//! codes), [`settings`] (page settings), [`backoff`] (delays), [`tokens`] (content tokens) and
//! [`dispatch`] (which callbacks a message reaches). The browser glue is compiled for wasm32
//! only: `web` runs the machine with the JavaScript driver of `core.js` (WebSocket, timer), `js`
//! declares the JavaScript it calls, `js_frames` reads and writes
//! frames with `JSON.parse`/`JSON.stringify`, `page` reads the settings and calls page
//! callbacks, `api` is the exported JavaScript surface used by `drupal-js/src/*.js`.
//!
//! Size: the browser payload has a budget (`drupal-js/build.sh`). `drupal-js/build.sh` builds
//! without the default `std` feature: the crate is then `no_std` (with `alloc`, lol_alloc's
//! free-list allocator and a panic handler that traps), so no panic message formatting and no
//! `core::fmt` is linked; the code avoids `format!`, `to_string` and `concat` for the same
//! reason ([`out::digits`], [`out::cat`]). Tests build with `std`.
//!
//! Where the bytes are (`drupal-js/build.sh --sizes`, twiggy on the wasm before wasm-opt): the
//! machine, the glue modules and the frame reader/writer are most of it; `core::fmt` is not
//! quite gone (RefCell and bounds-check panic messages inside core/alloc/wasm-bindgen still
//! reference `u32` and `BorrowError` formatting, about 2 KB); the allocator is lol_alloc's.

#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

extern crate alloc;

#[cfg(all(not(feature = "std"), target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

/// A panic traps: the browser reports a `RuntimeError: unreachable` with the wasm stack.
#[cfg(all(not(feature = "std"), target_arch = "wasm32"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod backoff;
pub mod dispatch;
pub mod incoming;
pub mod machine;
pub mod out;
pub mod settings;
pub mod status;
pub mod tokens;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
pub mod js_frames;
#[cfg(target_arch = "wasm32")]
pub mod page;
#[cfg(target_arch = "wasm32")]
pub mod web;
