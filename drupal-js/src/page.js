/**
 * drupal-push page helpers (after abi.js, the start of both socket.io.js and drupal-push.js;
 * build.sh joins abi.js, page.js, core.js and, for drupal-push.js, shim.js in one function
 * scope). What the wasm client leaves to JavaScript because it is a few lines here: reading the
 * module's settings, reading frames into the client's calls (JSON.parse), putting page values
 * into the frames it writes (JSON.stringify), and every dispatch rule: which Drupal.Nodejs
 * callbacks a message reaches (push.runCallbacks, push.listeners). The rules live here only:
 * they read the page's message objects and registries, where the module's own nodejs.js reads
 * them too (client-wasm/src/lib.rs says why the wasm does not decide them). The numbers
 * passed to the wasm are abi.js's, generated from client-wasm/src/abi.rs. Everything hangs
 * off window.drupalPush; no I/O here, so the wasm-bindgen tests evaluate abi.js and this file
 * on their own (client-wasm/tests/web.rs).
 */
(function (window) {
  'use strict';

  var push = (window.drupalPush = window.drupalPush || {});
  var console = window.console;
  var isArray = Array.isArray;
  var keys = function (o) { return o && typeof o === 'object' ? Object.keys(o) : []; };
  var str = function (v) { return typeof v === 'string' ? v : ''; };
  // A non-negative integer, or a string of at most 15 digits (Drupal 7 sends uids as strings).
  var num = function (v) { return typeof v === 'number' ? v : /^\d{1,15}$/.test(v) ? +v : NaN; };

  // A settings value as text: a non-empty trimmed string, or a whole number as its digits.
  function text(v) {
    if (typeof v === 'string' && v.trim()) {
      return v.trim();
    }
    if (typeof v === 'number' && v >= 0 && v % 1 === 0) {
      return String(v);
    }
  }
  // scheme ('https'/'wss' or not) when present, else Drupal 7's secure flag.
  function secureFlag(e) {
    var scheme = text(e.scheme);
    var s = e.secure;
    return scheme ? /^(https|wss)$/i.test(scheme) :
      typeof s === 'boolean' ? s : typeof s === 'number' ? s !== 0 :
        typeof s === 'string' ? !/^(|0|false)$/.test(s.trim()) : undefined;
  }
  function port(v) {
    v = text(v);
    return /^\d+$/.test(v) && +v > 0 && +v < 65536 ? +v : undefined;
  }
  function millis(v) {
    v = typeof v === 'string' ? num(v.trim()) : v;
    return typeof v === 'number' && v >= 1 && v < 9e15 ? Math.floor(v) : undefined;
  }

  /**
   * The nodejs settings (drupalSettings.nodejs, Drupal 7: Drupal.settings.nodejs) as the client
   * needs them: {url, authToken, tokens: [[channel, token], ...], timeout}, or null when they
   * are missing. The client endpoint wins over the server one, the page's location fills what
   * both leave out; client.path (default /ws) is the WebSocket path; connectTimeout (default
   * 5000 ms) as the module reads it.
   */
  push.settings = function (s, location) {
    if (!s || typeof s !== 'object') {
      return null;
    }
    var c = Object(s.client);
    var n = Object(s.nodejs);
    var secure = secureFlag(c);
    secure = secure === undefined ? secureFlag(n) : secure;
    secure = secure === undefined ? location.protocol === 'https:' : secure;
    var host = text(c.host) || text(n.host) || location.hostname;
    var p = port(c.port) || port(n.port);
    var path = text(c.path) || '/ws';
    if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') {
      host = '[' + host + ']';
    }
    return {
      url: (secure ? 'wss://' : 'ws://') + host + (p ? ':' + p : '') + (path.charAt(0) === '/' ? '' : '/') + path,
      authToken: text(s.authToken) || '',
      tokens: push.tokens(s),
      timeout: millis(s.connectTimeout) || millis(c.connectTimeout) || 5000
    };
  };
  // contentTokens as [[channel, token], ...]: an object of channel -> token, or [] (an empty
  // PHP array); whole numbers count as their digits, other values are skipped.
  push.tokens = function (s) {
    var t = Object(s).contentTokens;
    return keys(t).filter(function (k) { return text(t[k]); }).map(function (k) { return [k, text(t[k])]; });
  };

  /**
   * Reads a text frame into the input calls of the wasm client (or anything with its input
   * method): client-wasm/src/abi.rs, mod kind, says what each kind carries.
   */
  push.read = function (client, conn, data) {
    var f;
    var u;
    var frame = function (kind, a, n, b, v) { client.input(kind, conn, 0, n, 0, a + '\0' + b, v); };
    try {
      f = JSON.parse(data);
    }
    catch (e) {
      f = null;
    }
    if (!f || typeof f !== 'object' || isArray(f)) {
      return frame(KIND_INVALID, 'not a JSON object', 0, '', u);
    }
    var t = f.type;
    if (t === 'hello') {
      frame(KIND_HELLO, str(f.socketId), num(f.heartbeatMs), '', u);
    }
    else if (t === 'authenticated') {
      keys(f.streams).forEach(function (k) {
        var p = Object(f.streams[k]);
        frame(KIND_START, k, num(p.offset), str(p.epoch), u);
      });
      keys(f.recovered).forEach(function (k) { frame(KIND_OUTCOME, k, f.recovered[k] === true ? 1 : 0, '', u); });
      (isArray(f.online) ? f.online : []).forEach(function (uid) { frame(KIND_ONLINE, '', num(uid), '', u); });
      frame(KIND_AUTHENTICATED, str(f.socketId), f.uid == null || f.uid === false ? 0 : num(f.uid),
        isArray(f.online) ? 'online' : '', u);
    }
    else if (t === 'joined') {
      frame(KIND_JOINED, str(f.stream), num(f.offset), str(f.epoch), u);
    }
    else if (t === 'message' && f.message !== undefined) {
      var m = f.message;
      var p = Object(Object(m).presenceNotification);
      var event = p.event === 'online' ? MESSAGE_PRESENCE_ONLINE : p.event === 'offline' ? MESSAGE_PRESENCE_OFFLINE : 0;
      client.input(KIND_MESSAGE, conn, event, num(f.offset), event ? num(p.uid) : NaN,
        [str(f.channel), str(f.stream), str(f.epoch)].join('\0'), m);
    }
    else if (t === 'ack') {
      frame(KIND_ACK, '', num(f.id), '', f.result);
    }
    else if (t === 'error') {
      frame(KIND_ERROR, typeof f.code === 'string' ? f.code : 'unknown', num(f.id), str(f.message), u);
    }
    else if (t === 'ping' || t === 'pong') {
      frame(t === 'ping' ? KIND_PING : KIND_PONG, '', 0, '', u);
    }
    else {
      frame(KIND_INVALID, t === 'message' ? 'message frame without message' : "unknown frame type '" + t + "'", 0, '', u);
    }
  };

  // A frame text of the wasm client with a page value put in: as its message member, or
  // (members) the value's members after the frame's own.
  push.frame = function (text, value, members) {
    if (value === undefined) {
      return text;
    }
    var o = JSON.parse(text);
    if (!members) {
      o.message = value;
    }
    keys(members && value).forEach(function (k) {
      if (!(k in o)) {
        o[k] = value[k];
      }
    });
    return JSON.stringify(o);
  };

  // Calls entry[method](arg, meta) with the entry as `this`; an exception is logged with the
  // entry's name.
  function invoke(entry, method, name, arg, meta) {
    var f = entry && entry[method];
    if (typeof f === 'function') {
      try {
        f.call(entry, arg, meta);
      }
      catch (e) {
        console.error('drupal-push: ' + method + ' of "' + name + '" threw', e);
      }
    }
  }
  function callAll(registry, method, arg) {
    keys(registry).forEach(function (name) { invoke(registry[name], method, name, arg); });
  }

  // Whether message m came from this page's own action: its clientSocketId is the page's
  // socket id own (a string; an unknown or empty id matches nothing). Skipped by every rule.
  function own(m, id) {
    return Boolean(id) && Object(m).clientSocketId === id;
  }
  // Whether a channelCallbacks key matches a channel: equal, or a prefix ending in * (`chat_*`;
  // `*` alone matches every channel, never a broadcast).
  push.matches = function (pattern, channel) {
    return pattern.slice(-1) === '*' ? channel.startsWith(pattern.slice(0, -1)) : pattern === channel;
  };

  /**
   * The module's runCallbacks(message) on Drupal.Nodejs N, for a page whose socket id is id
   * (spec 4.2): the page's own message is skipped; a truthy callback runs exactly the
   * callbacks it names (a single name is wrapped into an array on the message first); else a
   * defined presenceNotification runs every presenceCallbacks entry, a defined
   * contentChannelNotification every contentChannelNotificationCallbacks entry, and anything
   * else every callbacks entry.
   */
  push.runCallbacks = function (N, m, id) {
    var o = Object(m);
    var cb = o.callback;
    if (own(o, id)) {
      return;
    }
    if (cb) {
      if (typeof cb === 'string') {
        o.callback = [cb];
      }
      (isArray(o.callback) ? o.callback : []).forEach(function (name) {
        invoke(Object(N.callbacks)[name], 'callback', name, m);
      });
    }
    else {
      var registry = o.presenceNotification !== undefined ? N.presenceCallbacks :
        o.contentChannelNotification !== undefined ? N.contentChannelNotificationCallbacks : N.callbacks;
      callAll(registry, 'callback', m);
    }
  };

  // Which of drupal-push's listeners message m, delivered with the envelope's channel (''
  // when none), reaches on a page whose socket id is id: 0 none (the page's own message, or a
  // server notice without a channel: presence, clientAuthenticated), 1 the channelCallbacks
  // matching the channel, 2 the broadcastCallbacks (no channel, broadcast truthy). Decided
  // before the module's rules run (page callbacks may change the message).
  push.listenersOf = function (channel, m, id) {
    return own(m, id) ? 0 : channel ? 1 : Object(m).broadcast ? 2 : 0;
  };

  // The module's runSetupHandlers(type): handler[type](arg) for every handler that has it.
  push.runSetupHandlers = function (N, type, arg) {
    callAll(N.connectionSetupHandlers, type, arg);
  };

  // drupal-push's listeners after the module's rules, as push.listenersOf decided (kind): 1
  // the channelCallbacks whose key matches channel (push.matches), 2 the broadcastCallbacks;
  // callback(m, meta).
  push.listeners = function (N, kind, channel, m, meta) {
    var entries = function (v) { return isArray(v) ? v.slice() : v && typeof v === 'object' ? [v] : []; };
    var run = function (v, name) {
      entries(v).forEach(function (entry) { invoke(entry, 'callback', name, m, meta); });
    };
    if (kind === 1) {
      var registry = Object(N.channelCallbacks);
      keys(registry).forEach(function (k) {
        if (push.matches(k, channel)) {
          run(registry[k], k);
        }
      });
    }
    else if (kind === 2) {
      run(N.broadcastCallbacks, 'onBroadcast');
    }
  };
})(window);
