//! Browser client of drupal-push: speaks the drupal-push WebSocket protocol and offers the
//! `Drupal.Nodejs` API of Drupal's nodejs module, so page code written for the module keeps
//! working.
//!
//! Start reading at [`machine`]: the connection state machine (handshake, heartbeat,
//! reconnection, recovery, requests, setup-handler and io-facade events), pure Rust and tested
//! natively. Beside it, also pure: [`incoming`] (the frames it reads), [`out`] (the frames it
//! sends, their JSON, close codes), [`recovery`] (stream positions and the presence picture
//! across reconnects), [`backoff`] (delays) and [`tokens`] (content tokens). [`abi`] holds
//! every number of the boundary with JavaScript; `drupal-js/src/abi.js` is generated from it
//! (a test fails while that file is stale). The browser glue is compiled for wasm32 only:
//! `api` is the exported surface, `web` runs the machine and carries out its actions, `js`
//! declares the JavaScript it calls. Page objects (settings, `Drupal.Nodejs`, frames as JS
//! objects, callbacks) are handled by the JavaScript driver, `drupal-js/src/page.js` and
//! `core.js`: the wasm decides about the connection, the driver reads and calls.
//!
//! Dispatch (which `Drupal.Nodejs` callbacks a message reaches: `callbacks`,
//! `presenceCallbacks`, `contentChannelNotificationCallbacks`, then drupal-push's
//! `channelCallbacks` and `broadcastCallbacks`, spec 4.2) is decided in JavaScript only, in
//! `page.js` (`push.runCallbacks`, `push.listeners`). Those rules read the page's message
//! object (truthiness, `typeof`, defined members) and the page's registries at dispatch time,
//! and `Drupal.Nodejs` itself lives in JavaScript; the module's own nodejs.js, on the io
//! facade, runs its own copy of the module's rules in JavaScript anyway. Deciding in the wasm
//! meant describing every message to it in flag bits and a second implementation of the same
//! rules, pinned to the first by tests. The wasm hands over each message with its envelope
//! channel ([`machine::Action::Dispatch`]) and keeps only what the connection needs from a
//! message: its stream position (duplicates after a reconnect) and presence notifications.
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

pub mod abi;
pub mod backoff;
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
