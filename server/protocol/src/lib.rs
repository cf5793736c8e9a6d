//! Wire types of drupal-push, shared by the server, the wasm client and the tests.
//!
//! Everything that crosses a socket is defined here and nowhere else:
//!
//! * [`frames`]: the browser <-> server WebSocket protocol: JSON text frames tagged by `type`
//!   ([`ClientFrame`], [`ServerFrame`]), with Drupal messages carried verbatim inside a
//!   `message` envelope. `PROTOCOL.md` beside this crate documents them for client authors.
//! * [`close`]: the close codes the server uses and what a client should do after each.
//! * [`names`]: validated channel names, user ids and socket ids.
//! * [`drupal`]: the Drupal-visible messages the server itself originates
//!   (`clientAuthenticated`, presence and content-channel notifications, token-channel joins).
//! * [`backend`]: the server -> Drupal callback (`/nodejs/message`): the message types it posts
//!   and the authentication answer it parses.
//!
//! The crate depends on serde only, so it compiles for `wasm32-unknown-unknown`. Golden tests in
//! each module pin the exact JSON.

pub mod backend;
pub mod close;
pub mod drupal;
pub mod frames;
pub mod names;

pub use close::{CloseCode, ReconnectPolicy};
pub use frames::{ClientFrame, ErrorCode, ServerFrame};
pub use names::{ChannelName, NameError, SocketId, Uid};

/// Version of the browser <-> server protocol, sent in the `hello` frame.
pub const PROTOCOL_VERSION: u32 = 1;
