/*
 * Test double of the nodejs module's own nodejs.js (Drupal 8+), written for these tests: it
 * makes the same calls on `io` and keeps the same dispatch rules (spec 4.2, 4.3), so the
 * zero-change path is tested the way a site runs it. It runs on jQuery like the module.
 */
(function ($, Drupal, settings) {
  'use strict';

  var N = (Drupal.Nodejs = Drupal.Nodejs || {
    callbacks: {}, presenceCallbacks: {}, contentChannelNotificationCallbacks: {},
    connectionSetupHandlers: {}, socket: false
  });

  function callEach(registry, method, message) {
    $.each(registry, function () {
      if ($.isFunction(this[method])) {
        try {
          this[method](message);
        }
        catch (ignored) {
          // The module swallows callback exceptions.
        }
      }
    });
  }

  N.runCallbacks = function (message) {
    // Loose comparison on purpose: the module compares with ==.
    if (N.socket.sessionid && message.clientSocketId == N.socket.sessionid) {
      return;
    }
    if (message.callback) {
      if (typeof message.callback === 'string') {
        message.callback = [message.callback];
      }
      $.each(message.callback, function (i, name) {
        var entry = N.callbacks[name];
        if (entry && $.isFunction(entry.callback)) {
          try {
            entry.callback(message);
          }
          catch (ignored) {
            // as the module
          }
        }
      });
    }
    else if (message.presenceNotification != undefined) {
      callEach(N.presenceCallbacks, 'callback', message);
    }
    else if (message.contentChannelNotification != undefined) {
      callEach(N.contentChannelNotificationCallbacks, 'callback', message);
    }
    else {
      callEach(N.callbacks, 'callback', message);
    }
  };

  N.runSetupHandlers = function (type) {
    callEach(N.connectionSetupHandlers, type);
  };

  N.sendAuthMessage = function () {
    N.socket.emit('authenticate', {authToken: settings.nodejs.authToken, contentTokens: settings.nodejs.contentTokens});
  };

  N.joinTokenChannel = function (channel, contentToken) {
    settings.nodejs.contentTokens = settings.nodejs.contentTokens || {};
    settings.nodejs.contentTokens[channel] = contentToken;
    N.socket.emit('join-token-channel', {channel: channel, contentToken: contentToken});
  };

  N.checkConnection = function () {
    if (!N.socket.connected) {
      N.runSetupHandlers('connectionFailure');
    }
  };

  N.connect = function () {
    var client = settings.nodejs.client;
    var url = client.scheme + '://' + client.host + ':' + client.port;
    settings.nodejs.connectTimeout = settings.nodejs.connectTimeout || 5000;
    if (typeof io === 'undefined') {
      return false;
    }
    N.socket = io.connect(url, {'connect timeout': settings.nodejs.connectTimeout});
    N.socket.on('connect', function () {
      N.sendAuthMessage();
      N.runSetupHandlers('connect');
      if (Drupal.ajax != undefined) {
        N.originalBeforeSerialize = Drupal.ajax.prototype.beforeSerialize;
        Drupal.ajax.prototype.beforeSerialize = function (elementSettings, options) {
          // socket.io 0.9's name, as the module reads it.
          options.data.nodejs_client_socket_id = N.socket.socket.sessionid;
          return N.originalBeforeSerialize(elementSettings, options);
        };
      }
    });
    N.socket.on('message', N.runCallbacks);
    N.socket.on('disconnect', function () {
      N.runSetupHandlers('disconnect');
      if (Drupal.ajax != undefined) {
        Drupal.ajax.prototype.beforeSerialize = N.originalBeforeSerialize;
      }
    });
    setTimeout(function () { N.checkConnection(); }, settings.nodejs.connectTimeout + 250);
    return true;
  };

  Drupal.behaviors.nodejs = {
    attach: function () {
      if (!N.socket) {
        N.connect();
      }
    }
  };
})(jQuery, Drupal, drupalSettings);
