/**
 * drupal-push shim (drupal-push.js = core.js + this): the Drupal.Nodejs API of Drupal's nodejs
 * module on the drupal-push client, for themes that replace the module's nodejs.js.
 *
 * It keeps Drupal.Nodejs when the page already has one (callbacks registered by other scripts
 * stay), installs connect, runCallbacks, runSetupHandlers, sendAuthMessage, joinTokenChannel,
 * checkConnection and status (core.js adds sendMessage, publish, onChannel, onBroadcast; calls
 * made before the wasm is loaded are queued), connects once from Drupal.behaviors.nodejs, and adds the POST field
 * nodejs_client_socket_id to Drupal AJAX requests while connected. If the module's own
 * nodejs.js runs after this file, it replaces these functions and talks to core.js's `io`.
 */
(function (window, document) {
  'use strict';

  var push = window.drupalPush;
  var nodejs = push.nodejs();
  var Drupal = window.Drupal;
  var client = null;

  // Calls client[name](args) (or, before a client runs, fallback(wasm, args)) once loaded.
  function call(name, fallback) {
    return function () {
      var args = arguments;
      push.later(function (wasm) {
        if (client) {
          client[name].apply(client, args);
        }
        else if (fallback) {
          fallback(wasm, args);
        }
      });
    };
  }

  // The socket exists from the start (requests made before connect() wait for it).
  var socket = (push.socket = push.socket || new push.Socket());

  nodejs.connect = function () {
    push.later(function (wasm) {
      if (client) {
        return;
      }
      client = wasm.Client.start(socket) || null;
      if (client) {
        socket._started(client);
        patchAjax();
      }
    });
    return true;
  };
  nodejs.runCallbacks = call('runCallbacks', function (wasm, args) { wasm.runCallbacks(args[0]); });
  nodejs.runSetupHandlers = function (type) {
    push.later(function (wasm) { wasm.runSetupHandlers(type); });
  };
  nodejs.sendAuthMessage = function () {
    if (client) {
      client.reconnect();
    }
    else {
      nodejs.connect();
    }
  };
  nodejs.joinTokenChannel = function (channel, token) {
    socket._call('join', [String(channel), String(token)]);
  };
  nodejs.checkConnection = call('checkConnection', function (wasm) { wasm.runSetupHandlers('connectionFailure'); });
  nodejs.status = function () {
    return client ? client.status() : null;
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
