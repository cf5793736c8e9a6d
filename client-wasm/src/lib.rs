//! Browser client of drupal-push: speaks the drupal-push WebSocket protocol and offers the
//! `Drupal.Nodejs` API of Drupal's nodejs module, so page code written for the module keeps
//! working.
//!
//! Start reading at [`machine`]: the connection state machine (handshake, heartbeat,
//! reconnection, recovery, requests, setup-handler and io-facade events), pure Rust and tested
//! natively. Beside it, also pure: [`incoming`] (the frames it reads), [`out`] (the frames it
//! sends, their JSON, close codes), [`recovery`] (stream positions and the presence picture
//! across reconnects), [`backoff`] (delays), [`tokens`] (content tokens) and [`dispatch`]
//! (which callbacks a message reaches). The browser glue is compiled for wasm32 only: `api` is
//! the exported surface, `web` runs the machine and carries out its actions, `js` declares the
//! JavaScript it calls. Page objects (settings, `Drupal.Nodejs`, frames as JS objects,
//! callbacks) are handled by the JavaScript driver, `drupal-js/src/page.js` and `core.js`: the
//! wasm decides, the driver reads and calls.
//!
//! Size: the browser payload has a budget of 20 KiB gzipped (`drupal-js/build.sh`). The build
//! there is `no_std` (without the default `std` feature: `alloc`, lol_alloc's free-list
//! allocator, a panic handler that traps) with core and alloc rebuilt for size and panics that
//! abort at once, so no panic message formatting and no `core::fmt` is linked; the code avoids
//! `format!`, `to_string` and `concat` for the same reason ([`out::digits`], [`out::cat`]).
//! The boundary with JavaScript passes numbers and strings only (no `js-sys`, no `Reflect`
//! calls, no closures), through one export (`Client.input`) and one driver import (`_do`), so
//! the glue stays small. Tests build with `std`.
//!
//! Where the bytes are: `drupal-js/build.sh --sizes` prints twiggy's largest items of the
//! wasm before wasm-opt.

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
pub mod recovery;
pub mod status;
pub mod tokens;

#[cfg(target_arch = "wasm32")]
pub mod api;
#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
pub mod web;
