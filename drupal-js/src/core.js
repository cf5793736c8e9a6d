/**
 * drupal-push core (after abi.js and page.js in both socket.io.js and drupal-push.js; build.sh
 * joins the files in one function scope): loads the WebAssembly client, adds drupal-push's
 * listener API to Drupal.Nodejs, defines the socket object that drives the client (WebSocket,
 * timer, page callbacks), and the global `io`: a facade with socket.io's API over the same
 * client, for the nodejs module's own nodejs.js.
 *
 * It runs synchronously: `io` exists as soon as this script has run. The glue and the wasm
 * load from beside this script (its src; window.drupalPushBaseUrl overrides), possibly from
 * another origin (the drupal-push server sends CORS headers); calls made before they are
 * loaded wait in order. Everything shared with shim.js hangs off window.drupalPush.
 *
 * The boundary with the wasm is positional: Client.input(kind, ...) one way, _do(kind, ...)
 * the other. Every kind and bit is a named constant of abi.js (KIND_, ACT_, REQUEST_,
 * MESSAGE_), generated from client-wasm/src/abi.rs, where each is documented; a Rust test
 * fails while abi.js is stale, so neither side can change alone. Dispatch rules (which
 * callbacks a message reaches) are decided in JavaScript only (page.js: push.runCallbacks,
 * push.listenersOf, push.listeners), next to Drupal.Nodejs, whose objects they read; the wasm
 * only hands over the message with its envelope channel (ACT_DELIVER).
 */
(function (window, document) {
  'use strict';

  var push = window.drupalPush;
  var console = window.console;
  if (!push.later) {
    var script = document.currentScript;
    var base = window.drupalPushBaseUrl || (script && script.src) || window.location.href;
    var waiting = [];
    // Runs f(wasm) now, or once the wasm is loaded.
    push.later = function (f) {
      if (push.wasm) {
        f(push.wasm);
      }
      else {
        waiting.push(f);
      }
    };
    // The glue and the wasm load in parallel; the glue exports initSync only (build.sh).
    var wasm = fetch(new URL('drupal_push_client_bg.wasm', base)).then(function (r) {
      if (!r.ok) {
        throw new Error('HTTP ' + r.status + ' for ' + r.url);
      }
      return r.arrayBuffer();
    });
    push.loaded = Promise.all([import(new URL('drupal_push_client.js', base).href), wasm.then(WebAssembly.compile)])
      .then(function (loaded) {
        var m = loaded[0];
        m.initSync({module: loaded[1]});
        push.wasm = m;
        waiting.splice(0).forEach(function (f) { f(m); });
      })
      .catch(function (e) {
        console.error('drupal-push: could not load the client', e);
      });
  }

  // Drupal.Nodejs with the module's initial shape (kept when it exists), plus channelCallbacks,
  // broadcastCallbacks, onChannel(pattern, fn) and onBroadcast(fn); both return a function that
  // unregisters fn. The wasm client calls fn(message, meta) for every message on a matching
  // channel (onChannel) or every broadcast (onBroadcast), after the module's callbacks.
  push.nodejs = function () {
    var Drupal = (window.Drupal = window.Drupal || {});
    var N = (Drupal.Nodejs = Drupal.Nodejs || {socket: false});
    ['callbacks', 'presenceCallbacks', 'contentChannelNotificationCallbacks', 'connectionSetupHandlers',
      'channelCallbacks'].forEach(function (key) {
      if (!N[key] || typeof N[key] !== 'object') {
        N[key] = {};
      }
    });
    if (!Array.isArray(N.broadcastCallbacks)) {
      N.broadcastCallbacks = [];
    }
    N.onChannel = N.onChannel || function (pattern, fn) {
      var entry = {callback: fn};
      var list = N.channelCallbacks[pattern];
      list = N.channelCallbacks[pattern] = !list ? [] : Array.isArray(list) ? list : [list];
      list.push(entry);
      return function () {
        var now = N.channelCallbacks[pattern];
        var i = Array.isArray(now) ? now.indexOf(entry) : -1;
        if (i >= 0) {
          now.splice(i, 1);
          if (!now.length) {
            delete N.channelCallbacks[pattern];
          }
        }
      };
    };
    // Requests (our shim and the io facade alike): a message for Drupal's
    // hook_nodejs_message_callback handlers (its messageType, else its type, names the
    // handler), and a publish to a client-writable channel ({echo: true} also delivers it to
    // this page). callback(error, result) gets Drupal's answer, or {sent: N}.
    N.sendMessage = N.sendMessage || function (message, callback) {
      request(undefined, message, false, callback);
    };
    N.publish = N.publish || function (channel, message, options, callback) {
      if (typeof options === 'function') {
        callback = options;
        options = undefined;
      }
      request(String(channel), message, Boolean(options && options.echo), callback);
    };
    N.onBroadcast = N.onBroadcast || function (fn) {
      var entry = {callback: fn};
      N.broadcastCallbacks.push(entry);
      return function () {
        var i = N.broadcastCallbacks.indexOf(entry);
        if (i >= 0) {
          N.broadcastCallbacks.splice(i, 1);
        }
      };
    };
    return N;
  };
  function request(channel, message, echo, callback) {
    var socket = push.socket;
    if (socket) {
      socket._call(KIND_REQUEST, channel === undefined ? 0 : REQUEST_CHANNEL | (echo ? REQUEST_ECHO : 0),
        socket._keep(callback, 0), channel, message);
    }
    else if (callback) {
      callback({code: 'not-connected', message: 'drupal-push: not connected yet'});
    }
  }
  if (window.Drupal) {
    push.nodejs();
  }

  // A socket as socket.io's client shows it to nodejs.js: on/off/emit, connected, id,
  // sessionid, socket.sessionid and socket.connected (socket.io 0.9 names). It is also the
  // driver of the wasm client (the _ methods, see client-wasm/src/js.rs). _facade: the io
  // facade's socket (the page runs its own runCallbacks and authenticates itself).
  function Socket(facade) {
    this.connected = false;
    this.disconnected = true;
    this.socket = {connected: false};
    this.recovery = null;
    this._on = {};
    this._replies = {};
    this._id = 0;
    this._facade = facade;
  }
  var S = Socket.prototype;
  S.on = S.addListener = function (event, fn) {
    (this._on[event] = this._on[event] || []).push(fn);
    return this;
  };
  S.off = S.removeListener = function (event, fn) {
    var list = this._on[event] || [];
    var i = list.indexOf(fn);
    if (i >= 0) {
      list.splice(i, 1);
    }
    return this;
  };
  // Runs the listeners of a socket.io event.
  S._run = function (event, arg) {
    var self = this;
    (this._on[event] || []).slice().forEach(function (fn) {
      try {
        fn.call(self, arg);
      }
      catch (e) {
        console.error('drupal-push: a "' + event + '" listener threw', e);
      }
    });
  };
  // Feeds the client an input (KIND_, client-wasm/src/abi.rs, mod kind) once it runs (inputs
  // wait in order); n is NaN when undefined.
  S._call = function (kind, bits, n, text, value) {
    var self = this;
    var call = function () { self._client.input(kind, 0, bits || 0, n === undefined ? NaN : n, 0, text || '', value); };
    if (this._client) {
      call();
    }
    else {
      (this._waiting = this._waiting || []).push(call);
    }
  };
  S._started = function (client) {
    this._client = client;
    (this._waiting || []).splice(0).forEach(function (call) { call(); });
    this._call(KIND_RECONNECT);
  };
  // Keeps a callback for the answer to a request; style 0: callback(error, result), 1:
  // socket.io's ack(result) or ack({error, code}), 2: an authenticate ack ({result: 'success'}).
  S._keep = function (f, style) {
    if (typeof f === 'function') {
      this._replies[++this._id] = [f, style];
      return this._id;
    }
  };
  S.emit = function (event, data, ack) {
    if (event === 'authenticate') {
      if (this._facade) {
        this._call(KIND_AUTHENTICATE, 0, this._keep(ack, 2), '', data);
      }
      else {
        this._call(KIND_RECONNECT);
      }
    }
    else if (event === 'join-token-channel' && data) {
      this._call(KIND_JOIN, 0, 0, data.channel + '\0' + data.contentToken);
    }
    else if (event === 'message') {
      this._call(KIND_REQUEST, 0, this._keep(ack, 1), '', data);
    }
    else {
      console.warn('drupal-push: socket.emit(' + event + ') is not supported');
    }
    return this;
  };
  // The driver of the wasm client: one WebSocket, one timer, the page's callbacks. The wasm
  // calls _do(kind, a, n, m, o, x, y, z, value) for every action (ACT_, client-wasm/src/abi.rs,
  // mod act); f holds the texts [x, y, z].
  S._do = function (kind, a, n, m, o, x, y, z, v) {
    acts[kind].call(this, a, n, m, o, [x, y, z], v);
  };
  S._open = function (conn, n, m, o, f) {
    var self = this;
    var url = f[0];
    this._close(this._conn);
    if (this._refresh) {
      this._refresh(this._client);
    }
    var ws;
    try {
      ws = new WebSocket(url);
    }
    catch (e) {
      console.error('drupal-push: cannot open ' + url, e);
      setTimeout(function () { self._client.input(KIND_CLOSED, conn, 1006, 0, 0, ''); }, 0);
      return;
    }
    ws.onmessage = function (event) {
      if (typeof event.data === 'string') {
        push.read(self._client, conn, event.data);
      }
    };
    ws.onclose = function (event) {
      self._ws = null;
      self._client.input(KIND_CLOSED, conn, event.code, 0, 0, '');
    };
    this._ws = ws;
    this._conn = conn;
  };
  // Sends the frame text with the page's value put in (members: n = 1).
  S._send = function (conn, members, m, o, f, value) {
    if (this._ws && this._conn === conn) {
      try {
        this._ws.send(push.frame(f[0], value, members));
      }
      catch (e) {
        console.warn('drupal-push: send failed', e);
      }
    }
  };
  // Closes without reporting the close (the wasm has moved on).
  S._close = function (conn, n, m, o, f) {
    var ws = this._ws;
    if (ws && this._conn === conn) {
      this._ws = null;
      ws.onmessage = ws.onclose = null;
      ws.close(1000, f ? f[0] : 'replaced');
    }
  };
  S._arm = function (a, delay) {
    var self = this;
    clearTimeout(this._timer);
    if (delay >= 0) {
      this._timer = setTimeout(function () { self._client.input(KIND_TICK, 0, 0, 0, 0, ''); }, delay);
    }
  };
  // A socket.io event f[0] with the reason f[1].
  S._fire = function (a, n, m, o, f) {
    this._run(f[0], f[0] === 'connect_error' ? new Error(f[1]) : f[1] || undefined);
  };
  // A Drupal message: the module's rules (the facade's message listeners are the module's
  // runCallbacks), then channel or broadcast callbacks (push.listenersOf) with meta {channel,
  // stream, offset, epoch} (f: channel, stream, epoch).
  S._deliver = function (a, offset, m, o, f, message) {
    var N = push.nodejs();
    var listeners = push.listenersOf(f[0], message, this.sessionid);
    var meta = {channel: f[0] || null};
    if (f[1]) {
      meta.stream = f[1];
      meta.offset = offset;
      meta.epoch = f[2];
    }
    if (this._facade) {
      this._run('message', message);
    }
    else if (typeof N.runCallbacks === 'function') {
      try {
        N.runCallbacks(message);
      }
      catch (e) {
        console.error('drupal-push: runCallbacks threw', e);
      }
    }
    push.listeners(N, listeners, f[0], message, meta);
  };
  S._presence = function (online, uid) {
    this._deliver(0, 0, 0, 0, [''], {presenceNotification: {uid: uid, event: online ? 'online' : 'offline'}});
  };
  // After a reconnect: the channels recovered (f[0]) and not recovered (f[1]), NUL-separated.
  S._recovery = function (a, n, m, o, f) {
    var list = function (s) { return s ? s.split('\0') : []; };
    var failed = list(f[1]);
    this.recovery = {recovered: list(f[0]), failed: failed};
    if (failed.length) {
      push.runSetupHandlers(push.nodejs(), 'recoveryFailed', failed);
    }
  };
  S._setup = function (a, n, m, o, f) {
    push.runSetupHandlers(push.nodejs(), f[0]);
  };
  // The answer to request id: value (ok), or the refusal f = code, message.
  S._reply = function (id, ok, m, o, f, value) {
    var r = this._replies[id];
    delete this._replies[id];
    try {
      if (!r) {
        return;
      }
      if (r[1] === 2) {
        r[0]({result: 'success'});
      }
      else if (r[1] === 0) {
        r[0](ok ? null : {code: f[0], message: f[1]}, value);
      }
      else {
        r[0](ok ? value : {code: f[0], error: f[1]});
      }
    }
    catch (e) {
      console.error('drupal-push: a reply callback threw', e);
    }
  };
  // f = state, socketId; numbers are -1 when unknown.
  S._status = function (attempts, uid, lastClose, retryInMs, f) {
    var n = function (v) { return v < 0 ? null : v; };
    var state = f[0];
    var up = state === 'connected' || (this._facade && state === 'authenticating');
    this.connected = this.socket.connected = up;
    this.disconnected = !up;
    this.id = this.sessionid = this.socket.sessionid = f[1] || undefined;
    this.state = state;
    this.status = {state: state, socketId: f[1] || null, uid: n(uid), attempts: attempts,
      lastClose: n(lastClose), retryInMs: n(retryInMs), recovery: this.recovery};
    window.dispatchEvent(new CustomEvent('drupal-push:status', {detail: this.status}));
  };
  // Going online or becoming visible cuts a reconnect backoff short.
  function wake() {
    var socket = push.socket;
    if (socket && socket._client && document.visibilityState !== 'hidden') {
      socket._client.input(KIND_WAKE, 0, 0, 0, 0, '');
    }
  }
  window.addEventListener('online', wake);
  document.addEventListener('visibilitychange', wake);

  S.connect = S.open = function () {
    this._call(KIND_RECONNECT);
    return this;
  };
  S.disconnect = S.close = function () {
    this._call(KIND_STOP);
    return this;
  };
  // The actions of _do by kind.
  var acts = [];
  acts[ACT_OPEN] = S._open;
  acts[ACT_SEND] = S._send;
  acts[ACT_CLOSE] = S._close;
  acts[ACT_ARM] = S._arm;
  acts[ACT_FIRE] = S._fire;
  acts[ACT_DELIVER] = S._deliver;
  acts[ACT_PRESENCE] = S._presence;
  acts[ACT_RECOVERY] = S._recovery;
  acts[ACT_SETUP] = S._setup;
  acts[ACT_REPLY] = S._reply;
  acts[ACT_STATUS] = S._status;
  push.Socket = Socket;

  // The WebSocket path: the server writes its wsPath here when it serves socket.io.js.
  var wsPath = '__DRUPAL_PUSH_WS_PATH__';

  // io(url, options) / io.connect(url, options): one client per page; url is where the module
  // reaches the server (http(s)://host:port), options may set 'connect timeout' or timeout (ms).
  function io(url, options) {
    if (push.socket) {
      return push.socket;
    }
    var socket = (push.socket = new Socket(true));
    var settings = (window.drupalSettings || (window.Drupal && window.Drupal.settings) || {}).nodejs || {};
    var path = wsPath.charAt(0) === '/' ? wsPath : (settings.client && settings.client.path) || '/ws';
    var target = new URL(url || '/', window.location.href);
    target.protocol = target.protocol === 'https:' || target.protocol === 'wss:' ? 'wss:' : 'ws:';
    target.pathname = path;
    target.search = target.hash = '';
    options = options || {};
    var timeout = Number(options['connect timeout'] || options.timeout) || 5000;
    if (window.Drupal) {
      push.nodejs();
    }
    push.later(function (w) {
      socket._started(new w.Client(socket, true, target.href, timeout, ''));
    });
    return socket;
  }
  io.connect = io;
  io.Socket = Socket;
  window.io = io;
})(window, document);
