/**
 * drupal-push: the Drupal.Nodejs API of Drupal's nodejs module, on top of the drupal-push
 * WebSocket client (WebAssembly, built into the same directory as this file by build.sh).
 *
 * Load it as a classic script, not aggregated (Drupal: preprocess: false), so that it can find
 * drupal_push_client.js and drupal_push_client_bg.wasm beside itself. Set
 * window.drupalPushBaseUrl to load them from elsewhere.
 *
 * It keeps Drupal.Nodejs when the page already has one (callbacks registered by other scripts
 * stay), creates it with the module's initial shape otherwise, installs connect, runCallbacks,
 * runSetupHandlers, sendAuthMessage, joinTokenChannel and checkConnection (calls made before
 * the wasm is loaded are queued), connects once from Drupal.behaviors.nodejs, and adds the
 * POST field nodejs_client_socket_id to Drupal AJAX requests while connected.
 */
(function (window, document) {
  'use strict';

  var Drupal = (window.Drupal = window.Drupal || {});
  var nodejs = (Drupal.Nodejs = Drupal.Nodejs || {});
  ['callbacks', 'presenceCallbacks', 'contentChannelNotificationCallbacks', 'connectionSetupHandlers']
    .forEach(function (key) {
      if (!nodejs[key] || typeof nodejs[key] !== 'object') {
        nodejs[key] = {};
      }
    });
  if (!('socket' in nodejs)) {
    nodejs.socket = false;
  }

  var script = document.currentScript;
  var base = window.drupalPushBaseUrl || (script && script.src) || window.location.href;
  var client = null;
  var queued = [];

  var loading = import(new URL('drupal_push_client.js', base).href)
    .then(function (module) {
      return module
        .default({module_or_path: new URL('drupal_push_client_bg.wasm', base)})
        .then(function () {
          client = module;
          queued.splice(0).forEach(function (call) { call(); });
        });
    })
    .catch(function (error) {
      window.console.error('drupal-push: could not load the client', error);
    });

  // Calls the wasm export `name` now, or as soon as the wasm is loaded.
  function whenLoaded(name, after) {
    return function () {
      var args = arguments;
      var run = function () {
        var result = client[name].apply(null, args);
        return after ? after(result) : result;
      };
      if (client) {
        return run();
      }
      queued.push(run);
      return undefined;
    };
  }

  function socketEmit(event, data) {
    if (event === 'join-token-channel' && data) {
      nodejs.joinTokenChannel(data.channel, data.contentToken);
    }
    else if (event === 'authenticate') {
      nodejs.sendAuthMessage();
    }
    else {
      window.console.warn('drupal-push: socket.emit(' + event + ') is not supported');
    }
  }

  nodejs.connect = whenLoaded('connect', function (started) {
    if (started && nodejs.socket && !nodejs.socket.emit) {
      nodejs.socket.emit = socketEmit;
    }
    patchAjax();
    return started;
  });
  nodejs.runCallbacks = whenLoaded('runCallbacks');
  nodejs.runSetupHandlers = whenLoaded('runSetupHandlers');
  nodejs.sendAuthMessage = whenLoaded('sendAuthMessage');
  nodejs.joinTokenChannel = whenLoaded('joinTokenChannel');
  nodejs.checkConnection = whenLoaded('checkConnection');
  nodejs.status = whenLoaded('status');
  nodejs.loaded = loading;

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
