//! The numbers of the boundary between the wasm and its JavaScript driver, defined once: the
//! kinds of the driver's `Client.input` calls ([`kind`]), the kinds of the wasm's `_do` actions
//! ([`act`]) and the bits some of them carry ([`message`], [`request`]).
//!
//! `drupal-js/src/abi.js` is generated from this file: the test `abi::tests::abi_js_is_current`
//! fails when it is stale, and writes it anew with `DRUPAL_PUSH_WRITE_ABI=1`:
//!
//! ```text
//! DRUPAL_PUSH_WRITE_ABI=1 cargo test -p drupal-push-client --lib abi
//! ```
//!
//! In JavaScript a constant is its group and name in capitals (`KIND_HELLO`, `ACT_OPEN`);
//! `drupal-js/build.sh` puts abi.js before the other scripts in one function scope, where
//! terser replaces each constant by its value, so the names cost the page no bytes.
//!
//! Numbers that are booleans (1 or 0) or "none" (-1, NaN) are described where they are passed
//! and have no names.

/// Defines the groups of constants and [`GROUPS`], the table the generator reads.
macro_rules! abi {
    ($(
        $(#[doc = $group_doc:literal])*
        pub mod $group:ident {
            $( $(#[doc = $doc:literal])* $name:ident = $value:literal; )*
        }
    )*) => {
        $(
            $(#[doc = $group_doc])*
            pub mod $group {
                $( $(#[doc = $doc])* pub const $name: u32 = $value; )*
            }
        )*

        /// Every group: its name, its doc lines and its constants (name, value, doc lines).
        #[cfg(feature = "std")]
        pub const GROUPS: &[Group] = &[$(
            Group {
                name: stringify!($group),
                doc: &[$($group_doc),*],
                constants: &[$( Constant { name: stringify!($name), value: $value, doc: &[$($doc),*] } ),*],
            }
        ),*];
    };
}

/// A group of [`GROUPS`].
#[cfg(feature = "std")]
pub struct Group {
    pub name: &'static str,
    pub doc: &'static [&'static str],
    pub constants: &'static [Constant],
}

/// A constant of a [`Group`].
#[cfg(feature = "std")]
pub struct Constant {
    pub name: &'static str,
    pub value: u32,
    pub doc: &'static [&'static str],
}

abi! {
    /// The kinds of `Client.input(kind, conn, bits, n, m, text, value)` calls of the browser
    /// driver (`drupal-js/src/page.js`, `core.js`) and what each carries. `text` holds fields
    /// separated by NUL characters; the frame kinds up to [`kind::INVALID`] (read by
    /// `FrameReader::frame`) carry two, `a` and `b`, with their number `n` on connection `conn`.
    /// The frame kinds come first and [`kind::MESSAGE`] after them (`Client.input` relies on
    /// that order).
    pub mod kind {
        /// `hello`: a = socketId, n = heartbeatMs.
        HELLO = 0;
        /// `authenticated`: a = socketId, n = uid, b = "online" when the frame has `online`;
        /// after the START, OUTCOME and ONLINE calls for its members.
        AUTHENTICATED = 1;
        /// A member of `authenticated.streams`: a = stream, n = offset, b = epoch.
        START = 2;
        /// A member of `authenticated.recovered`: a = stream, n = 1 (recovered) or 0.
        OUTCOME = 3;
        /// An element of `authenticated.online`: n = uid.
        ONLINE = 4;
        /// `joined`: a = stream, n = offset, b = epoch.
        JOINED = 5;
        /// `ack`: n = id, value = result.
        ACK = 6;
        /// `error`: a = code, n = id (or NaN), b = message.
        ERROR = 7;
        /// `ping`.
        PING = 8;
        /// `pong`.
        PONG = 9;
        /// Anything else: a = what is wrong.
        INVALID = 10;
        /// `message`: text = channel, stream, epoch; n = offset (NaN when absent), m = the
        /// presence notification's uid, bits = MESSAGE_ bits, value = the message.
        MESSAGE = 11;
        /// Connection `conn` closed (or could not be opened) with the close code `bits`.
        CLOSED = 12;
        /// The timer the client armed fired.
        TICK = 13;
        /// The browser went online or the tab became visible.
        WAKE = 14;
        /// Connect (the first time, `sendAuthMessage()`, `socket.connect()`), or reconnect a
        /// stopped or waiting client now.
        RECONNECT = 15;
        /// `socket.disconnect()`: close and stay disconnected.
        STOP = 16;
        /// The io facade's `emit('authenticate', value, ack)`; n = the ack's id (NaN: none).
        AUTHENTICATE = 17;
        /// `joinTokenChannel` / `emit('join-token-channel')`: text = channel, token.
        JOIN = 18;
        /// A request: value = the message; bits = REQUEST_ bits; text = the channel (with
        /// REQUEST_CHANNEL); n = the callback's id (NaN: none).
        REQUEST = 19;
        /// Our shim, before a connection opens: text = the auth token the settings hold now.
        CREDENTIALS = 20;
        /// Our shim: text = channel, token: a content token the settings hold.
        TOKEN = 21;
    }

    /// The bits of a [`kind::MESSAGE`] input: a presence notification `{uid, event}` with a
    /// known event (the machine keeps the presence picture across reconnects).
    pub mod message {
        /// `presenceNotification.event` is `online`.
        PRESENCE_ONLINE = 1;
        /// `presenceNotification.event` is `offline`.
        PRESENCE_OFFLINE = 2;
    }

    /// The bits of a [`kind::REQUEST`] input.
    pub mod request {
        /// `text` is a channel to publish to (else the message goes to Drupal).
        CHANNEL = 1;
        /// The publish is delivered to this page too (`{echo: true}`).
        ECHO = 2;
    }

    /// The kinds of the wasm's `_do(kind, a, n, m, o, x, y, z, value)` calls of the driver
    /// (`S._do` in `drupal-js/src/core.js`); "none" numbers are -1, absent strings empty.
    /// "text = a, b" means x = a, y = b.
    pub mod act {
        /// Open a WebSocket to text = url; its frames and close come back tagged with `a` =
        /// conn. Our shim hands the client the page's current credentials first.
        OPEN = 0;
        /// Send text on connection `a`, with `value` (unless undefined) put in as the `message`
        /// member (`n` = 0) or as members after the frame's own (`n` = 1).
        SEND = 1;
        /// Close connection `a` (text = reason) without reporting its close.
        CLOSE = 2;
        /// Call the client's tick input after `n` ms (one timer; a negative delay cancels it).
        ARM = 3;
        /// Run the socket's listeners of the socket.io event text = event, reason (io facade);
        /// the reason is the `disconnect` reason or the `connect_error` message.
        FIRE = 4;
        /// Deliver the Drupal message `value` (the driver applies every dispatch rule: the
        /// module's, then drupal-push's listeners) with meta {channel, stream, offset, epoch}:
        /// text = channel, stream, epoch; `n` = offset (negative: not recorded).
        DELIVER = 5;
        /// Deliver the presence notification `{uid: n, event}` the page missed while
        /// disconnected (`a` = 1 online, 0 offline).
        PRESENCE = 6;
        /// After a reconnect: x = the channels recovered, y = those not recovered, each list
        /// joined with NUL characters: `recoveryFailed` handlers, status.
        RECOVERY = 7;
        /// Run text = this kind of `connectionSetupHandlers` (our shim).
        SETUP = 8;
        /// The answer to the request `a`: `value` (`n` = 1), or (`n` = 0) the refusal text =
        /// code, message.
        REPLY = 9;
        /// Show the state on the socket and dispatch `drupal-push:status`: text = state,
        /// socketId; `a` = attempts, `n` = uid, `m` = last close code, `o` = retry in ms.
        STATUS = 10;
    }
}

/// abi.js: the constants as `var GROUP_NAME = value;` lines with their docs as comments.
#[cfg(feature = "std")]
pub fn javascript() -> String {
    let mut js = String::from(
        "// Generated from client-wasm/src/abi.rs; do not edit. After changing abi.rs:\n\
         //   DRUPAL_PUSH_WRITE_ABI=1 cargo test -p drupal-push-client --lib abi\n\
         // (cargo test fails while this file is stale). drupal-js/build.sh puts it first, in\n\
         // one function scope with the other scripts.\n",
    );
    for group in GROUPS {
        js.push('\n');
        for line in group.doc {
            js.push_str(&["//", line, "\n"].concat());
        }
        for c in group.constants {
            for line in c.doc {
                js.push_str(&["//", line, "\n"].concat());
            }
            let name = [group.name, "_", c.name].concat().to_uppercase();
            js.push_str(&["var ", &name, " = ", &c.value.to_string(), ";\n"].concat());
        }
    }
    js
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// drupal-js/src/abi.js is what [`javascript`] writes (with DRUPAL_PUSH_WRITE_ABI=1: write it).
    #[test]
    fn abi_js_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../drupal-js/src/abi.js");
        let want = javascript();
        if std::env::var_os("DRUPAL_PUSH_WRITE_ABI").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `DRUPAL_PUSH_WRITE_ABI=1 cargo test -p drupal-push-client --lib abi`",
            path.display()
        );
    }

    #[test]
    fn values_are_distinct_within_a_group_and_bits_are_single() {
        for group in GROUPS {
            let values: HashSet<u32> = group.constants.iter().map(|c| c.value).collect();
            assert_eq!(values.len(), group.constants.len(), "{}", group.name);
            if ["message", "request"].contains(&group.name) {
                assert!(group.constants.iter().all(|c| c.value.is_power_of_two()), "{}", group.name);
            }
        }
        assert!((kind::HELLO..=kind::INVALID).all(|k| k < kind::MESSAGE), "frame kinds come first");
        assert_eq!(
            act::STATUS as usize + 1,
            GROUPS.iter().find(|g| g.name == "act").unwrap().constants.len()
        );
    }
}
