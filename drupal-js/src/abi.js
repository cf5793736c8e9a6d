// Generated from client-wasm/src/abi.rs; do not edit. After changing abi.rs:
//   DRUPAL_PUSH_WRITE_ABI=1 cargo test -p drupal-push-client --lib abi
// (cargo test fails while this file is stale). drupal-js/build.sh puts it first, in
// one function scope with the other scripts.

// The kinds of `Client.input(kind, conn, bits, n, m, text, value)` calls of the browser
// driver (`drupal-js/src/page.js`, `core.js`) and what each carries. `text` holds fields
// separated by NUL characters; the frame kinds up to [`kind::INVALID`] (read by
// `FrameReader::frame`) carry two, `a` and `b`, with their number `n` on connection `conn`.
// The frame kinds come first and [`kind::MESSAGE`] after them (`Client.input` relies on
// that order).
// `hello`: a = socketId, n = heartbeatMs.
var KIND_HELLO = 0;
// `authenticated`: a = socketId, n = uid, b = "online" when the frame has `online`;
// after the START, OUTCOME and ONLINE calls for its members.
var KIND_AUTHENTICATED = 1;
// A member of `authenticated.streams`: a = stream, n = offset, b = epoch.
var KIND_START = 2;
// A member of `authenticated.recovered`: a = stream, n = 1 (recovered) or 0.
var KIND_OUTCOME = 3;
// An element of `authenticated.online`: n = uid.
var KIND_ONLINE = 4;
// `joined`: a = stream, n = offset, b = epoch.
var KIND_JOINED = 5;
// `ack`: n = id, value = result.
var KIND_ACK = 6;
// `error`: a = code, n = id (or NaN), b = message.
var KIND_ERROR = 7;
// `ping`.
var KIND_PING = 8;
// `pong`.
var KIND_PONG = 9;
// Anything else: a = what is wrong.
var KIND_INVALID = 10;
// `message`: text = channel, stream, epoch; n = offset (NaN when absent), m = the
// presence notification's uid, bits = MESSAGE_ bits, value = the message.
var KIND_MESSAGE = 11;
// Connection `conn` closed (or could not be opened) with the close code `bits`.
var KIND_CLOSED = 12;
// The timer the client armed fired.
var KIND_TICK = 13;
// The browser went online or the tab became visible.
var KIND_WAKE = 14;
// Connect (the first time, `sendAuthMessage()`, `socket.connect()`), or reconnect a
// stopped or waiting client now.
var KIND_RECONNECT = 15;
// `socket.disconnect()`: close and stay disconnected.
var KIND_STOP = 16;
// The io facade's `emit('authenticate', value, ack)`; n = the ack's id (NaN: none).
var KIND_AUTHENTICATE = 17;
// `joinTokenChannel` / `emit('join-token-channel')`: text = channel, token.
var KIND_JOIN = 18;
// A request: value = the message; bits = REQUEST_ bits; text = the channel (with
// REQUEST_CHANNEL); n = the callback's id (NaN: none).
var KIND_REQUEST = 19;
// Our shim, before a connection opens: text = the auth token the settings hold now.
var KIND_CREDENTIALS = 20;
// Our shim: text = channel, token: a content token the settings hold.
var KIND_TOKEN = 21;

// The bits of a [`kind::MESSAGE`] input: a presence notification `{uid, event}` with a
// known event (the machine keeps the presence picture across reconnects).
// `presenceNotification.event` is `online`.
var MESSAGE_PRESENCE_ONLINE = 1;
// `presenceNotification.event` is `offline`.
var MESSAGE_PRESENCE_OFFLINE = 2;

// The bits of a [`kind::REQUEST`] input.
// `text` is a channel to publish to (else the message goes to Drupal).
var REQUEST_CHANNEL = 1;
// The publish is delivered to this page too (`{echo: true}`).
var REQUEST_ECHO = 2;

// The kinds of the wasm's `_do(kind, a, n, m, o, x, y, z, value)` calls of the driver
// (`S._do` in `drupal-js/src/core.js`); "none" numbers are -1, absent strings empty.
// "text = a, b" means x = a, y = b.
// Open a WebSocket to text = url; its frames and close come back tagged with `a` =
// conn. Our shim hands the client the page's current credentials first.
var ACT_OPEN = 0;
// Send text on connection `a`, with `value` (unless undefined) put in as the `message`
// member (`n` = 0) or as members after the frame's own (`n` = 1).
var ACT_SEND = 1;
// Close connection `a` (text = reason) without reporting its close.
var ACT_CLOSE = 2;
// Call the client's tick input after `n` ms (one timer; a negative delay cancels it).
var ACT_ARM = 3;
// Run the socket's listeners of the socket.io event text = event, reason (io facade);
// the reason is the `disconnect` reason or the `connect_error` message.
var ACT_FIRE = 4;
// Deliver the Drupal message `value` (the driver applies every dispatch rule: the
// module's, then drupal-push's listeners) with meta {channel, stream, offset, epoch}:
// text = channel, stream, epoch; `n` = offset (negative: not recorded).
var ACT_DELIVER = 5;
// Deliver the presence notification `{uid: n, event}` the page missed while
// disconnected (`a` = 1 online, 0 offline).
var ACT_PRESENCE = 6;
// After a reconnect: x = the channels recovered, y = those not recovered, each list
// joined with NUL characters: `recoveryFailed` handlers, status.
var ACT_RECOVERY = 7;
// Run text = this kind of `connectionSetupHandlers` (our shim).
var ACT_SETUP = 8;
// The answer to the request `a`: `value` (`n` = 1), or (`n` = 0) the refusal text =
// code, message.
var ACT_REPLY = 9;
// Show the state on the socket and dispatch `drupal-push:status`: text = state,
// socketId; `a` = attempts, `n` = uid, `m` = last close code, `o` = retry in ms.
var ACT_STATUS = 10;
