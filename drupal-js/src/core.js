/**
 * drupal-push core (after page.js in both socket.io.js and drupal-push.js; build.sh joins the
 * files): loads the WebAssembly client, adds drupal-push's listener API to Drupal.Nodejs,
 * defines the socket object that drives the client (WebSocket, timer, page callbacks), and the
 * global `io`: a facade with socket.io's API over the same client, for the nodejs module's own
 * nodejs.js.
 *
 * It runs synchronously: `io` exists as soon as this script has run. The glue and the wasm
 * load from beside this script (its src; window.drupalPushBaseUrl overrides), possibly from
 * another origin (the drupal-push server sends CORS headers); calls made before they are
 * loaded wait in order. Everything shared with shim.js hangs off window.drupalPush.
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
    push.loaded = import(new URL('drupal_push_client.js', base).href)
      .then(function (m) {
        return m.default({module_or_path: new URL('drupal_push_client_bg.wasm', base)}).then(function () {
          push.wasm = m;
          waiting.splice(0).forEach(function (f) { f(m); });
        });
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
      socket._call('request', [channel, message, echo, socket._keep(callback, 0)]);
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
  // Calls client[name](args...) once the socket's client runs (calls wait in order).
  S._call = function (name, args) {
    var self = this;
    var call = function () { self._client[name].apply(self._client, args); };
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
    client.reconnect();
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
        this._call('authenticate', [data, this._keep(ack, 2)]);
      }
      else {
        this._call('reconnect', []);
      }
    }
    else if (event === 'join-token-channel' && data) {
      this._call('join', [String(data.channel), String(data.contentToken)]);
    }
    else if (event === 'message') {
      this._call('request', [undefined, data, false, this._keep(ack, 1)]);
    }
    else {
      console.warn('drupal-push: socket.emit(' + event + ') is not supported');
    }
    return this;
  };
  // The driver of the wasm client: one WebSocket, one timer, the page's callbacks.
  S._open = function (conn, url) {
    var self = this;
    this._close(this._conn, 'replaced');
    if (this._refresh) {
      this._refresh(this._client);
    }
    var ws;
    try {
      ws = new WebSocket(url);
    }
    catch (e) {
      console.error('drupal-push: cannot open ' + url, e);
      setTimeout(function () { self._client.closed(conn, 1006); }, 0);
      return;
    }
    ws.onmessage = function (event) {
      if (typeof event.data === 'string') {
        push.read(self._client, conn, event.data);
      }
    };
    ws.onclose = function (event) {
      self._ws = null;
      self._client.closed(conn, event.code);
    };
    this._ws = ws;
    this._conn = conn;
  };
  S._send = function (conn, text, value, members) {
    if (this._ws && this._conn === conn) {
      try {
        this._ws.send(push.frame(text, value, members));
      }
      catch (e) {
        console.warn('drupal-push: send failed', e);
      }
    }
  };
  S._close = function (conn, reason) {
    var ws = this._ws;
    if (ws && this._conn === conn) {
      this._ws = null;
      ws.onmessage = ws.onclose = null;
      ws.close(1000, reason);
    }
  };
  S._arm = function (delay) {
    var self = this;
    clearTimeout(this._timer);
    if (delay >= 0) {
      this._timer = setTimeout(function () { self._client.tick(); }, delay);
    }
  };
  S._fire = function (event, reason) {
    this._run(event, event === 'connect_error' ? new Error(reason) : reason || undefined);
  };
  // A Drupal message: the module's rules (the facade's message listeners are the module's
  // runCallbacks), then channel or broadcast callbacks with meta {channel, stream, offset, epoch}.
  S._deliver = function (m, listeners, channel, stream, offset, epoch) {
    var N = push.nodejs();
    var meta = {channel: channel || null};
    if (stream) {
      meta.stream = stream;
      meta.offset = offset;
      meta.epoch = epoch;
    }
    if (this._facade) {
      this._run('message', m);
    }
    else if (typeof N.runCallbacks === 'function') {
      try {
        N.runCallbacks(m);
      }
      catch (e) {
        console.error('drupal-push: runCallbacks threw', e);
      }
    }
    push.listeners(push.wasm, N, listeners, channel, m, meta);
  };
  S._presence = function (uid, online) {
    this._deliver({presenceNotification: {uid: uid, event: online ? 'online' : 'offline'}}, 0, '');
  };
  S._recovery = function (recovered, failed) {
    var list = function (s) { return s ? s.split('\0') : []; };
    this.recovery = {recovered: list(recovered), failed: list(failed)};
    if (failed) {
      push.runSetupHandlers(push.nodejs(), 'recoveryFailed', list(failed));
    }
  };
  S._setup = function (kind) {
    push.runSetupHandlers(push.nodejs(), kind);
  };
  S._reply = function (id, ok, value, code, message) {
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
        r[0](ok ? null : {code: code, message: message}, value);
      }
      else {
        r[0](ok ? value : {code: code, error: message});
      }
    }
    catch (e) {
      console.error('drupal-push: a reply callback threw', e);
    }
  };
  S._status = function (state, socketId, uid, attempts, lastClose, retryInMs) {
    var n = function (v) { return v < 0 ? null : v; };
    var up = state === 'connected' || (this._facade && state === 'authenticating');
    var id = socketId || undefined;
    this.connected = this.socket.connected = up;
    this.disconnected = !up;
    this.id = this.sessionid = this.socket.sessionid = id;
    this.state = state;
    this.status = {state: state, socketId: socketId || null, uid: n(uid), attempts: attempts,
      lastClose: n(lastClose), retryInMs: n(retryInMs), recovery: this.recovery};
    window.dispatchEvent(new CustomEvent('drupal-push:status', {detail: this.status}));
  };
  // Going online or becoming visible cuts a reconnect backoff short.
  function wake() {
    var socket = push.socket;
    if (socket && socket._client && document.visibilityState !== 'hidden') {
      socket._client.wake();
    }
  }
  window.addEventListener('online', wake);
  document.addEventListener('visibilitychange', wake);

  S.connect = S.open = function () {
    this._call('reconnect', []);
    return this;
  };
  S.disconnect = S.close = function () {
    this._call('stop', []);
    return this;
  };
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
