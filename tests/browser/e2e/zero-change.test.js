// End-to-end, the zero-change path: a page on another origin than the push server loads
// {server}/socket.io/socket.io.js and the module's nodejs.js (test double: module-nodejs.js,
// which calls `io` as the module does), with jQuery and a Drupal stub. Nothing on the page knows
// drupal-push.
'use strict';

const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const h = require('../lib/harness');

const PAGES = path.resolve(__dirname, '..', 'pages');
const JQUERY = path.resolve(__dirname, '..', 'node_modules', 'jquery', 'dist', 'jquery.min.js');
const stack = h.useStack();
let site;

/** The Drupal site: a static server on another origin (localhost, its own port). */
before(async () => {
  site = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    const file = url.pathname === '/jquery.min.js' ? JQUERY : path.join(PAGES, path.basename(url.pathname));
    if (!fs.existsSync(file)) {
      res.writeHead(404);
      return res.end('not found');
    }
    let body = fs.readFileSync(file);
    if (file.endsWith('.html')) {
      body = body.toString().replaceAll('PUSH_SERVER', stack.server.url);
    }
    res.writeHead(200, {'Content-Type': file.endsWith('.html') ? 'text/html' : 'text/javascript'});
    res.end(body);
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
});

after(() => new Promise((resolve) => site.close(resolve)));

/** The settings the module renders: no path, no drupal-push specifics. */
function settings(token, contentTokens = {}) {
  const address = {scheme: 'http', host: '127.0.0.1', port: stack.server.port};
  return {nodejs: address, client: address, authToken: token, contentTokens, connectTimeout: 2000};
}

async function modulePage(token, contentTokens) {
  const page = await stack.browser.newPage();
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
  await page.addInitScript((nodejs) => {
    window.drupalSettings = {nodejs};
    window.__sockets = 0;
    const Real = window.WebSocket;
    window.WebSocket = function (url) {
      window.__sockets += 1;
      return new Real(url);
    };
    window.WebSocket.prototype = Real.prototype;
  }, settings(token, contentTokens));
  await page.goto(`http://localhost:${site.address().port}/module.html`);
  return page;
}

async function userPage(uid, opts = {}) {
  const token = `zc-${uid}-${Math.random().toString(36).slice(2)}`;
  await stack.drupal.user(token, uid, opts);
  const page = await modulePage(token);
  await h.waitForEvents(page, 'setup', 'connect');
  await h.waitForEvents(page, 'callback', 'clientAuthenticated');
  return {page, token};
}

const socketOf = (page) => page.evaluate(() => {
  const s = Drupal.Nodejs.socket;
  return {connected: s.connected, id: s.id, sessionid: s.sessionid, inner: s.socket.sessionid,
    innerConnected: s.socket.connected, sockets: window.__sockets, state: s.state};
});

test('the page and the server are on different origins, and io is defined before nodejs.js runs', async () => {
  const {page} = await userPage(101);
  assert.notEqual(new URL(page.url()).origin, stack.server.url);
  assert.equal(await page.evaluate(() => typeof io.connect), 'function');
  const s = await socketOf(page);
  assert.equal(s.connected, true);
  assert.match(s.id, /^[0-9a-z_-]+$/);
  assert.equal(s.sessionid, s.id);
  assert.equal(s.inner, s.id, 'socket.socket.sessionid, read by the Drupal.ajax patch');
  assert.equal(s.innerConnected, true);
  const res = await fetch(`${stack.server.url}/socket.io/socket.io.js`);
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
  assert.match(await res.text(), /"\/ws"/, 'the server wrote its wsPath in');
  assert.deepEqual(page.consoleLines.filter((l) => l.startsWith('error') || l.startsWith('pageerror')), []);
  await page.close();
});

test('user message, broadcast without callback, channel message; Drupal.ajax patch and self-skip', async () => {
  const {page} = await userPage(102, {channels: ['chan_exact', 'chan_room']});
  const body = {channel: 'nodejs_user_102', callback: 'a', data: {n: 1}};
  await stack.server.api('POST', 'publish', body);
  const [a] = await h.waitForEvents(page, 'callback', 'a');
  assert.deepEqual(a.message, {...body, callback: ['a']}, 'the module wrapped the name');

  const broadcast = {broadcast: true, channel: 'nodejs_notify', data: {subject: 's'}};
  await stack.server.api('POST', 'publish', broadcast);
  await h.waitForEvents(page, 'callback', 'b');
  const [b] = await h.waitForEvents(page, 'broadcast', 'b');
  assert.deepEqual(b.message, broadcast);
  assert.equal(b.meta.channel, null);
  assert.equal(typeof b.meta.offset, 'number', 'the broadcast stream is recorded');

  const channel = {channel: 'chan_exact', data: {text: 'room'}};
  await stack.server.api('POST', 'publish', channel);
  const [exact] = await h.waitForEvents(page, 'channel', 'exact');
  const [prefix] = await h.waitForEvents(page, 'channel', 'prefix');
  assert.equal(exact.meta.channel, 'chan_exact');
  assert.equal(typeof exact.meta.offset, 'number', 'meta carries the stream position');
  assert.equal(typeof exact.meta.epoch, 'string');
  assert.deepEqual(prefix.message, channel);
  await stack.server.api('POST', 'publish', {channel: 'chan_room', callback: 'a', data: 2});
  const prefixed = await h.waitForEvents(page, 'channel', 'prefix', 2);
  assert.equal(prefixed[1].meta.channel, 'chan_room');
  assert.equal((await h.events(page, 'channel', 'exact')).length, 1, 'the exact name only');
  assert.equal((await h.events(page, 'broadcast')).length, 1, 'channel messages are not broadcasts');

  const id = (await socketOf(page)).inner;
  const data = await page.evaluate(() => {
    const options = {data: {}};
    new Drupal.ajax().beforeSerialize(null, options);
    return options.data;
  });
  assert.equal(data.nodejs_client_socket_id, id);
  await stack.server.api('POST', 'publish', {channel: 'chan_exact', callback: 'a', clientSocketId: id, data: 'own'});
  await stack.server.api('POST', 'publish', {channel: 'chan_exact', callback: 'a', data: 'last'});
  await h.waitFor('the last message', async () => (await h.events(page, 'callback', 'a')).some((e) => e.message.data === 'last'));
  assert.ok(!(await h.events(page, 'callback', 'a')).some((e) => e.message.data === 'own'), 'module self-skip');
  assert.equal((await h.events(page, 'channel', 'exact')).length, 2, 'self-skip for channel callbacks too');
  await page.close();
});

test('presence online and offline after the 2 s grace, and no flap on reload', async () => {
  const watcher = await userPage(111);
  const watched = await userPage(112, {presenceUids: [111]});
  const [online] = await h.waitForEvents(watcher.page, 'presence', 'p');
  assert.deepEqual(online.message, {presenceNotification: {uid: 112, event: 'online'}});
  await watched.page.reload();
  await h.waitForEvents(watched.page, 'setup', 'connect');
  const marker = Date.now();
  await h.waitFor('3 s to pass', async () => {
    await stack.server.api('POST', 'publish', {channel: 'nodejs_user_111', callback: 'b', data: 0});
    return Date.now() - marker > 3000;
  }, 10000);
  const seen = (await h.events(watcher.page, 'presence', 'p')).map((e) => e.message.presenceNotification.event);
  assert.deepEqual(seen, ['online'], 'a reload within the grace period is not an offline + online');
  const closedAt = Date.now();
  await watched.page.close();
  const both = await h.waitForEvents(watcher.page, 'presence', 'p', 2, 10000);
  assert.deepEqual(both[1].message, {presenceNotification: {uid: 112, event: 'offline'}});
  const delay = both[1].at - closedAt;
  assert.ok(delay >= 1500 && delay < 6000, `offline after ${delay} ms`);
  await watcher.page.close();
});

test('content-token channel: the module joins with emit(join-token-channel) and gets its messages', async () => {
  const room = `zc_room_${Date.now()}`;
  const {page} = await userPage(121);
  assert.equal((await stack.server.api('POST', 'content/token', {channel: room, token: `${room}-t`, notifyOnDisconnect: true})).status, 'success');
  await page.evaluate(([c, t]) => Drupal.Nodejs.joinTokenChannel(c, t), [room, `${room}-t`]);
  const [joined] = await h.waitForEvents(page, 'callback', 'clientJoinedTokenChannel');
  assert.equal(joined.message.data.channel, room);
  const message = {channel: room, callback: 'b', data: 'in the room'};
  await stack.server.api('POST', 'content/token/message', message);
  const [got] = await h.waitForEvents(page, 'callback', 'b');
  assert.deepEqual(got.message, {...message, callback: ['b']});
  await page.close();
});

test('kick: disconnect handlers run and the page does not reconnect', async () => {
  const {page, token} = await userPage(131);
  const auths = (await stack.drupal.messages('authenticate', (m) => m.authToken === token)).length;
  assert.deepEqual(await stack.server.api('POST', 'user/kick/131'), {status: 'success'});
  await h.waitForEvents(page, 'setup', 'disconnect');
  await h.waitFor('the stopped state', async () => (await socketOf(page)).state === 'stopped');
  const probe = await userPage(132);
  for (let i = 1; i <= 10; i++) {
    await stack.server.api('POST', 'publish', {channel: 'nodejs_user_132', callback: 'a', data: i});
    await h.waitForEvents(probe.page, 'callback', 'a', i);
  }
  const s = await socketOf(page);
  assert.equal(s.connected, false);
  assert.equal(s.sockets, 1, 'no second WebSocket');
  assert.equal((await stack.drupal.messages('authenticate', (m) => m.authToken === token)).length, auths);
  await probe.page.close();
  await page.close();
});

test('server restart: the page reconnects and nodejs.js authenticates again', async () => {
  const {page, token} = await userPage(141, {channels: ['zc_after']});
  const first = await socketOf(page);
  await stack.server.kill('SIGKILL');
  await h.waitForEvents(page, 'setup', 'disconnect');
  await stack.server.start();
  await h.waitForEvents(page, 'setup', 'connect', 2, 40000);
  const again = await h.waitFor('connected again', async () => {
    const s = await socketOf(page);
    return s.connected ? s : null;
  });
  assert.notEqual(again.id, first.id);
  assert.ok((await stack.drupal.messages('authenticate', (m) => m.authToken === token)).length >= 2, 're-authenticated');
  await h.waitForEvents(page, 'callback', 'clientAuthenticated', 2);
  await stack.server.api('POST', 'publish', {channel: 'zc_after', callback: 'a', data: 'after'});
  const [got] = await h.waitForEvents(page, 'callback', 'a');
  assert.equal(got.message.data, 'after');
  await page.close();
});
