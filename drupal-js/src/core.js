/**
 * drupal-push core (the start of both socket.io.js and drupal-push.js; build.sh joins the
 * files): loads the WebAssembly client, adds drupal-push's listener API to Drupal.Nodejs, and
 * defines the global `io`: a facade with socket.io's API over the same client, for the nodejs
 * module's own nodejs.js.
 *
 * It runs synchronously: `io` exists as soon as this script has run. The glue and the wasm
 * load from beside this script (its src; window.drupalPushBaseUrl overrides), possibly from
 * another origin (the drupal-push server sends CORS headers); calls made before they are
 * loaded wait in order. Everything shared with shim.js hangs off window.drupalPush.
 */
(function (window, document) {
  'use strict';

  var push = window.drupalPush;
  if (!push) {
    var script = document.currentScript;
    var base = window.drupalPushBaseUrl || (script && script.src) || window.location.href;
    var wasm = null;
    var waiting = [];
    push = window.drupalPush = {
      // Runs f(wasm) now, or once the wasm is loaded.
      later: function (f) {
        if (wasm) {
          f(wasm);
        }
        else {
          waiting.push(f);
        }
      }
    };
    push.loaded = import(new URL('drupal_push_client.js', base).href)
      .then(function (m) {
        return m.default({module_or_path: new URL('drupal_push_client_bg.wasm', base)}).then(function () {
          wasm = m;
          waiting.splice(0).forEach(function (f) { f(m); });
        });
      })
      .catch(function (e) {
        window.console.error('drupal-push: could not load the client', e);
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
    callback = typeof callback === 'function' ? callback : undefined;
    if (push.socket) {
      push.socket._call('request', [channel, message, echo, callback, true]);
    }
    else if (callback) {
      callback({code: 'not-connected', message: 'drupal-push: not connected yet'});
    }
  }
  if (window.Drupal) {
    push.nodejs();
  }

  // A socket as socket.io's client shows it to nodejs.js: on/off/emit, connected, id,
  // sessionid, socket.sessionid and socket.connected (socket.io 0.9 names). The wasm client
  // sets the fields and calls _fire(event, arg).
  function Socket() {
    this.connected = false;
    this.disconnected = true;
    this.socket = {connected: false};
    this._on = {};
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
  S._fire = function (event, arg) {
    var self = this;
    (this._on[event] || []).slice().forEach(function (fn) {
      try {
        fn.call(self, arg);
      }
      catch (e) {
        window.console.error('drupal-push: a "' + event + '" listener threw', e);
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
  };
  S.emit = function (event, data, ack) {
    ack = typeof ack === 'function' ? ack : undefined;
    if (event === 'authenticate') {
      this._call('authenticate', [data, ack]);
    }
    else if (event === 'join-token-channel' && data) {
      this._call('join', [String(data.channel), String(data.contentToken)]);
    }
    else if (event === 'message') {
      this._call('request', [undefined, data, false, ack, false]);
    }
    else {
      window.console.warn('drupal-push: socket.emit(' + event + ') is not supported');
    }
    return this;
  };
  // The driver of the wasm client: one WebSocket, one timer (see client-wasm/src/js.rs).
  S._open = function (conn, url) {
    var self = this;
    this._close(this._conn, 'replaced');
    var ws;
    try {
      ws = new WebSocket(url);
    }
    catch (e) {
      window.console.error('drupal-push: cannot open ' + url, e);
      setTimeout(function () { self._client.closed(conn, 1006); }, 0);
      return;
    }
    ws.onmessage = function (event) {
      if (typeof event.data === 'string') {
        self._client.frame(conn, event.data);
      }
    };
    ws.onclose = function (event) {
      self._ws = null;
      self._client.closed(conn, event.code);
    };
    this._ws = ws;
    this._conn = conn;
  };
  S._send = function (conn, text) {
    if (this._ws && this._conn === conn) {
      try {
        this._ws.send(text);
      }
      catch (e) {
        window.console.warn('drupal-push: send failed', e);
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
  S._status = function (status, facade) {
    var up = status.state === 'connected' || (facade && status.state === 'authenticating');
    var id = status.socketId || undefined;
    this.connected = this.socket.connected = up;
    this.disconnected = !up;
    this.id = this.sessionid = this.socket.sessionid = id;
    this.state = status.state;
    this.status = status;
    window.dispatchEvent(new CustomEvent('drupal-push:status', {detail: status}));
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
    var socket = (push.socket = new Socket());
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
      socket._started(w.Client.startIo(target.href, timeout, socket));
    });
    return socket;
  }
  io.connect = io;
  io.Socket = Socket;
  window.io = io;
})(window, document);
