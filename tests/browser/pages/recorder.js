/* A module's script: registers callbacks the Drupal way and records every call. */
(function () {
  var events = (window.__events = []);
  var record = function (kind, name) {
    return function (message, meta) {
      events.push({kind: kind, name: name, message: JSON.parse(JSON.stringify(message)),
        meta: meta && JSON.parse(JSON.stringify(meta)), at: Date.now()});
    };
  };
  var N = Drupal.Nodejs;
  N.callbacks.a = {callback: record('callback', 'a')};
  N.callbacks.b = {callback: record('callback', 'b')};
  N.callbacks.thrower = {callback: function () { throw new Error('a broken callback'); }};
  N.callbacks.clientAuthenticated = {callback: record('callback', 'clientAuthenticated')};
  N.callbacks.clientJoinedTokenChannel = {callback: record('callback', 'clientJoinedTokenChannel')};
  N.presenceCallbacks.p = {callback: record('presence', 'p')};
  N.contentChannelNotificationCallbacks.c = {callback: record('content', 'c')};
  // drupal-push's listeners (our shim and socket.io.js both add them to Drupal.Nodejs).
  if (N.onChannel) {
    N.onChannel('chan_exact', record('channel', 'exact'));
    N.onChannel('chan_*', record('channel', 'prefix'));
    N.channelCallbacks.nodejs_user_9 = {callback: record('channel', 'own-user')};
    N.onBroadcast(record('broadcast', 'b'));
  }
  N.connectionSetupHandlers.h = {
    connect: function () { events.push({kind: 'setup', name: 'connect', at: Date.now()}); },
    disconnect: function () { events.push({kind: 'setup', name: 'disconnect', at: Date.now()}); },
    connectionFailure: function () { events.push({kind: 'setup', name: 'connectionFailure', at: Date.now()}); },
    recoveryFailed: function (channels) {
      events.push({kind: 'setup', name: 'recoveryFailed', message: channels.slice(), at: Date.now()});
    }
  };
  // The recovery outcome of each reconnect, as the drupal-push:status event carries it.
  var lastRecovery = null;
  window.addEventListener('drupal-push:status', function (e) {
    var recovery = e.detail.recovery;
    if (recovery && recovery !== lastRecovery) {
      lastRecovery = recovery;
      events.push({kind: 'recovery', name: e.detail.state, message: JSON.parse(JSON.stringify(recovery)), at: Date.now()});
    }
  });
})();
