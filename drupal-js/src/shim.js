/**
 * drupal-push shim (drupal-push.js = abi.js + page.js + core.js + this): the Drupal.Nodejs API of Drupal's nodejs
 * module on the drupal-push client, for themes that replace the module's nodejs.js.
 *
 * It keeps Drupal.Nodejs when the page already has one (callbacks registered by other scripts
 * stay), installs connect, runCallbacks, runSetupHandlers, sendAuthMessage, joinTokenChannel,
 * checkConnection and status (core.js adds sendMessage, publish, onChannel, onBroadcast; calls
 * made before the wasm is loaded are queued), reads the settings (page.js), connects once from
 * Drupal.behaviors.nodejs, and adds the POST field
 * nodejs_client_socket_id to Drupal AJAX requests while connected. If the module's own
 * nodejs.js runs after this file, it replaces these functions and talks to core.js's `io`.
 */
(function (window, document) {
  'use strict';

  var push = window.drupalPush;
  var nodejs = push.nodejs();
  var Drupal = window.Drupal;
  var started = false;
  // The socket exists from the start (requests made before connect() wait for it).
  var socket = (push.socket = push.socket || new push.Socket(false));

  // drupalSettings.nodejs (Drupal 8+) or Drupal.settings.nodejs (Drupal 7), looked up each time:
  // Drupal AJAX may add content tokens.
  function settings() {
    return Object(window.drupalSettings || {}).nodejs || Object(Drupal.settings).nodejs;
  }
  // Before each connection: the credentials the settings hold now.
  socket._refresh = function (client) {
    var s = settings();
    var token = (push.settings(s, window.location) || {}).authToken;
    if (token) {
      client.input(KIND_CREDENTIALS, 0, 0, 0, 0, token);
    }
    push.tokens(s).forEach(function (t) { client.input(KIND_TOKEN, 0, 0, 0, 0, t[0] + '\0' + t[1]); });
  };

  nodejs.connect = function () {
    push.later(function (w) {
      var s = push.settings(settings(), window.location);
      if (started) {
        return;
      }
      if (!s) {
        return window.console.warn('drupal-push: no drupalSettings.nodejs (Drupal 7: Drupal.settings.nodejs)');
      }
      started = true;
      nodejs.socket = socket;
      socket._started(new w.Client(socket, false, s.url, s.timeout, s.authToken));
      patchAjax();
    });
    return true;
  };
  nodejs.runCallbacks = function (message) {
    push.runCallbacks(nodejs, message, socket.sessionid);
  };
  nodejs.runSetupHandlers = function (type) {
    push.runSetupHandlers(nodejs, type);
  };
  nodejs.sendAuthMessage = function () {
    if (started) {
      socket._call(KIND_RECONNECT);
    }
    else {
      nodejs.connect();
    }
  };
  nodejs.joinTokenChannel = function (channel, token) {
    var s = settings();
    if (s && typeof s === 'object') {
      if (!s.contentTokens || typeof s.contentTokens !== 'object' || Array.isArray(s.contentTokens)) {
        s.contentTokens = {};
      }
      s.contentTokens[channel] = String(token);
    }
    socket._call(KIND_JOIN, 0, 0, channel + '\0' + token);
  };
  nodejs.checkConnection = function () {
    var connected = socket.state === 'connected';
    if (!connected) {
      nodejs.runSetupHandlers('connectionFailure');
    }
    return connected;
  };
  nodejs.status = function () {
    return socket.status || null;
  };
  nodejs.loaded = push.loaded;

  // The module's beforeSerialize patch: Drupal echoes this id back as clientSocketId, and the
  // page then skips the message its own AJAX request caused.
  function patchAjax() {
    var Ajax = Drupal.Ajax || Drupal.ajax;
    var proto = Ajax && Ajax.prototype;
    if (!proto || typeof proto.beforeSerialize !== 'function' || proto.beforeSerialize.drupalPush) {
      return;
    }
    var original = proto.beforeSerialize;
    var patched = function (element, options) {
      var result = original.apply(this, arguments);
      var socket = nodejs.socket;
      if (socket && socket.connected && socket.sessionid && options) {
        options.data = options.data || {};
        options.data.nodejs_client_socket_id = socket.sessionid;
      }
      return result;
    };
    patched.drupalPush = true;
    proto.beforeSerialize = patched;
  }

  var attached = false;
  function attachOnce() {
    if (!attached) {
      attached = true;
      nodejs.connect();
    }
  }

  Drupal.behaviors = Drupal.behaviors || {};
  Drupal.behaviors.nodejs = {attach: attachOnce};

  // A page without Drupal's behaviour runner (no drupal.js) still connects.
  if (typeof Drupal.attachBehaviors !== 'function') {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', attachOnce);
    }
    else {
      attachOnce();
    }
  }
})(window, document);
