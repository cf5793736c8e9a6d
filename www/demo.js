/**
 * The demo page plays a Drupal page: a small stand-in for Drupal core's drupal.js (behaviours,
 * settings), the page settings the nodejs module would render (fetched from the server's demo
 * backend), the drupal-push shim in place of the module's nodejs.js, and callbacks registered
 * the way nodejs_notify, nodejs_ajax and a buddy list do.
 */
(function () {
  'use strict';

  // --- what Drupal core's drupal.js provides ---------------------------------------------
  var Drupal = (window.Drupal = {behaviors: {}, settings: {}});
  Drupal.attachBehaviors = function (context, settings) {
    Object.keys(Drupal.behaviors).forEach(function (name) {
      var behavior = Drupal.behaviors[name];
      if (behavior && typeof behavior.attach === 'function') {
        try {
          behavior.attach(context || document, settings || window.drupalSettings);
        }
        catch (e) {
          console.error(e);
        }
      }
    });
  };

  var $ = function (id) { return document.getElementById(id); };
  var connects = 0;
  var uid = null;

  function log(kind, text, detail) {
    var li = document.createElement('li');
    var k = document.createElement('span');
    k.className = 'kind ' + kind.split(' ')[0];
    k.textContent = kind;
    li.appendChild(k);
    li.appendChild(document.createTextNode(' ' + text));
    if (detail !== undefined) {
      var pre = document.createElement('pre');
      pre.textContent = JSON.stringify(detail);
      li.appendChild(pre);
    }
    $('log').insertBefore(li, $('log').firstChild);
  }

  function toast(subject, body) {
    var t = document.createElement('div');
    t.className = 'toast';
    var s = document.createElement('strong');
    s.textContent = subject;
    t.appendChild(s);
    t.appendChild(document.createTextNode(body));
    $('toasts').appendChild(t);
    setTimeout(function () { t.remove(); }, 6000);
  }

  function presence(who, online) {
    var li = document.querySelector('#presence li[data-uid="' + who + '"]');
    if (li) {
      li.classList.toggle('online', online);
    }
  }

  // A tiny runner for Drupal AJAX commands (the "insert" family), as nodejs_ajax hands them to
  // Drupal.ajax.
  function runCommands(commands) {
    (commands || []).forEach(function (command) {
      var target = document.querySelector(command.selector || '#ajax-target');
      if (!target || command.command !== 'insert') {
        return;
      }
      var method = command.method || 'html';
      if (method === 'html' || method === 'replaceWith') {
        target.textContent = command.data;
      }
      else {
        target.insertAdjacentText(method === 'prepend' ? 'afterbegin' : 'beforeend', command.data);
      }
    });
  }

  function registerCallbacks() {
    var N = Drupal.Nodejs;
    // nodejs_notify
    N.callbacks.nodejsNotify = {
      callback: function (message) {
        var data = message.data || {};
        toast(data.subject || '(no subject)', data.body || '');
        log('notify', (data.subject || '') + ': ' + (data.body || ''), message);
      }
    };
    // nodejs_ajax
    N.callbacks.nodejsNodeAjax = {
      callback: function (message) {
        runCommands(message.commands);
        log('ajax', 'ran ' + (message.commands || []).length + ' command(s)', message);
      }
    };
    N.callbacks.nodejsNodeAjaxBroadcast = {
      callback: function (message) {
        if (message.channel === 'nodejs_ajax_broadcast') {
          runCommands(message.commands);
          log('ajax broadcast', 'ran commands', message);
        }
      }
    };
    N.callbacks.clientAuthenticated = {
      callback: function (message) {
        log('auth', 'authenticated as uid ' + message.data.uid, message.data);
        presence(message.data.uid, true);
      }
    };
    N.callbacks.clientJoinedTokenChannel = {
      callback: function (message) {
        log('room', 'someone joined ' + message.data.channel, message.data);
      }
    };
    N.callbacks.demoRoom = {
      callback: function (message) {
        log('room', (message.data && message.data.text) || '', message);
      }
    };
    // a buddy list
    N.presenceCallbacks.buddyList = {
      callback: function (message) {
        var p = message.presenceNotification;
        presence(p.uid, p.event === 'online');
        log('presence', 'uid ' + p.uid + ' is ' + p.event);
      }
    };
    N.contentChannelNotificationCallbacks.demoRoom = {
      callback: function (message) {
        log('room', 'uid ' + message.data.uid + ' left ' + message.channel);
      }
    };
    N.connectionSetupHandlers.demo = {
      connect: function () { log('setup', 'connect'); },
      disconnect: function () { log('setup', 'disconnect'); },
      connectionFailure: function () { log('setup error', 'connectionFailure'); }
    };
  }

  window.addEventListener('drupal-push:status', function (event) {
    var s = event.detail;
    if (s.state === 'connected') {
      connects += 1;
    }
    $('state').textContent = s.state + (s.retryInMs != null ? ' (retry in ' + (s.retryInMs / 1000).toFixed(1) + ' s)' : '');
    $('state').dataset.state = s.state;
    $('socket-id').textContent = s.socketId || '–';
    $('counts').textContent = connects + ' / ' + s.attempts;
    $('last-close').textContent = s.lastClose == null ? '–' : s.lastClose;
  });

  function post(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) { return r.json(); }).then(function (answer) {
      $('api-result').textContent = path + ' → ' + JSON.stringify(answer);
      return answer;
    });
  }

  function forms() {
    $('publish-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var f = e.target;
      var message = {channel: f.channel.value, data: {subject: f.subject.value, body: f.body.value}};
      if (f.broadcast.checked) {
        message.broadcast = true;
      }
      if (f.callback.value) {
        message.callback = f.callback.value;
      }
      if (f.callback.value === 'nodejsNodeAjax') {
        message.commands = [{command: 'insert', method: 'append', selector: '#ajax-target', data: f.body.value + ' '}];
      }
      post('/demo/publish', message);
    });
    $('content-form').addEventListener('submit', function (e) {
      e.preventDefault();
      post('/demo/content-message', {channel: 'demo_room', callback: 'demoRoom', data: {text: e.target.text.value, from: uid}});
    });
    $('kick-form').addEventListener('submit', function (e) {
      e.preventDefault();
      post('/demo/kick/' + encodeURIComponent(e.target.uid.value));
    });
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  var wanted = new URLSearchParams(window.location.search).get('uid');
  fetch('/demo/settings' + (wanted ? '?uid=' + encodeURIComponent(wanted) : ''))
    .then(function (r) { return r.json(); })
    .then(function (settings) {
      uid = settings.uid;
      window.drupalSettings = {nodejs: settings.nodejs};
      $('uid').textContent = uid;
      $('other-user').href = '?uid=' + (uid % 9 + 1);
      for (var u = 1; u <= 9; u++) {
        var li = document.createElement('li');
        li.dataset.uid = u;
        li.textContent = 'uid ' + u;
        li.classList.toggle('self', u === uid);
        $('presence').appendChild(li);
      }
      return loadScript('/dist/drupal-push.js');
    })
    .then(function () {
      registerCallbacks();
      forms();
      Drupal.attachBehaviors(document, window.drupalSettings);
    })
    .catch(function (e) {
      log('error', 'could not start the demo: ' + e);
    });
})();
