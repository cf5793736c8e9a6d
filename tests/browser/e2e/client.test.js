// End-to-end: the wasm client in Chromium against the real drupal-push server and a fake Drupal.
'use strict';

const {test} = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const stack = h.useStack();

/** A connected page of a fresh user. */
async function userPage(uid, opts = {}) {
  const token = `token-${uid}-${Math.random().toString(36).slice(2)}`;
  await stack.drupal.user(token, uid, opts);
  const page = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
  await h.waitConnected(page);
  await h.waitForEvents(page, 'setup', 'connect');
  return {page, token};
}

test('a published message reaches the named callback, exactly as Drupal sent it', async () => {
  const {page} = await userPage(11, {channels: ['news']});
  const auth = await h.waitForEvents(page, 'callback', 'clientAuthenticated');
  assert.equal(auth[0].message.data.uid, 11);
  assert.deepEqual(auth[0].message.data.channels, ['nodejs_user_11', 'news']);
  const body = {channel: 'news', callback: 'a', data: {subject: 'Hi', body: 'é ✓', n: [1, 2.5, null]}};
  assert.deepEqual(await stack.server.api('POST', 'publish', body), {status: 'success', sent: 1});
  const [got] = await h.waitForEvents(page, 'callback', 'a');
  assert.deepEqual(got.message, {...body, callback: ['a']}, 'verbatim, the name wrapped in an array');
  assert.equal((await h.events(page, 'callback', 'b')).length, 0, 'only the named callback runs');
  await page.close();
});

test('a list of callbacks runs each named one; a broken one does not stop the others', async () => {
  const {page} = await userPage(12);
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_12', callback: ['thrower', 'b', 'a'], data: 1});
  await h.waitForEvents(page, 'callback', 'a');
  const names = (await h.events(page, 'callback')).map((e) => e.name).filter((n) => n === 'a' || n === 'b');
  assert.deepEqual(names, ['b', 'a']);
  assert.ok(page.consoleLines.some((l) => l.startsWith('error:') && l.includes('thrower')), page.consoleLines.join('\n'));
  await page.close();
});

test('a message without callback reaches every callback', async () => {
  const {page} = await userPage(13);
  const body = {broadcast: true, channel: 'nodejs_notify', data: {subject: 's', body: 'b'}};
  await stack.server.api('POST', 'publish', body);
  const [a] = await h.waitForEvents(page, 'callback', 'a');
  const [b] = await h.waitForEvents(page, 'callback', 'b');
  assert.deepEqual(a.message, body);
  assert.deepEqual(b.message, body);
  assert.equal((await h.events(page, 'presence')).length, 0);
  await page.close();
});

test('presence online and offline (after the 2 s grace) reach presenceCallbacks', async () => {
  const watcher = await userPage(21);
  const watched = await userPage(22, {presenceUids: [21]});
  const [online] = await h.waitForEvents(watcher.page, 'presence', 'p');
  assert.deepEqual(online.message, {presenceNotification: {uid: 22, event: 'online'}});
  const closedAt = Date.now();
  await watched.page.close();
  const all = await h.waitForEvents(watcher.page, 'presence', 'p', 2, 10000);
  assert.deepEqual(all[1].message, {presenceNotification: {uid: 22, event: 'offline'}});
  const delay = all[1].at - closedAt;
  assert.ok(delay >= 1500 && delay < 6000, `offline after ${delay} ms`);
  assert.equal((await h.events(watcher.page, 'callback', 'a')).length, 0, 'presence does not reach callbacks');
  await watcher.page.close();
});

test('content-token channels: join, content messages, notifyOnDisconnect', async () => {
  const room = `room_${Date.now()}`;
  const alice = await userPage(31);
  const bob = await userPage(32);
  for (const [token, uid] of [['tok-a', 31], ['tok-b', 32]]) {
    const ok = await stack.server.api('POST', 'content/token', {channel: room, token: `${room}-${token}`, notifyOnDisconnect: true, userData: {uid}});
    assert.equal(ok.status, 'success');
  }
  await alice.page.evaluate(([c, t]) => Drupal.Nodejs.joinTokenChannel(c, t), [room, `${room}-tok-a`]);
  const [joined] = await h.waitForEvents(alice.page, 'callback', 'clientJoinedTokenChannel');
  assert.equal(joined.message.data.channel, room);
  assert.equal(joined.message.data.token, undefined, 'the secret token is not echoed');
  const stored = await alice.page.evaluate(() => drupalSettings.nodejs.contentTokens);
  assert.equal(stored[room], `${room}-tok-a`, 'joinTokenChannel stores the token in the settings');
  await bob.page.evaluate(([c, t]) => Drupal.Nodejs.joinTokenChannel(c, t), [room, `${room}-tok-b`]);
  await h.waitForEvents(alice.page, 'callback', 'clientJoinedTokenChannel', 2);

  const message = {channel: room, callback: 'b', data: {text: 'to the room'}};
  assert.equal((await stack.server.api('POST', 'content/token/message', message)).status, 'success');
  const [got] = await h.waitForEvents(alice.page, 'callback', 'b');
  assert.deepEqual(got.message, {...message, callback: ['b']});
  await h.waitForEvents(bob.page, 'callback', 'b');

  await bob.page.close();
  const [left] = await h.waitForEvents(alice.page, 'content', 'c', 1, 10000);
  assert.deepEqual(left.message, {channel: room, contentChannelNotification: true, data: {uid: 32, type: 'disconnect'}});
  await alice.page.close();
});

test('the Drupal.ajax patch posts nodejs_client_socket_id, and own messages are skipped', async () => {
  const {page} = await userPage(41);
  const s = await h.socketState(page);
  assert.match(s.id, /^[0-9a-z_-]+$/);
  assert.equal(s.sessionid, s.id);
  assert.equal(s.inner, s.id, 'socket.socket.sessionid as the D8 patch reads it');
  const data = await page.evaluate(() => {
    const options = {};
    new Drupal.Ajax().beforeSerialize(null, options);
    return options.data;
  });
  assert.deepEqual(data, {'ajax_page_state[theme]': 'test', nodejs_client_socket_id: s.id});
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_41', callback: 'a', clientSocketId: s.id, data: 'own'});
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_41', callback: 'a', clientSocketId: 'someone-else', data: 'other'});
  const [got] = await h.waitForEvents(page, 'callback', 'a');
  assert.equal(got.message.data, 'other');
  assert.equal((await h.events(page, 'callback', 'a')).length, 1, 'the message this page caused was skipped');
  await page.close();
});

test('two tabs of one user both receive, and closing one keeps the user online', async () => {
  const token = 'two-tabs-token';
  await stack.drupal.user(token, 51);
  const watcher = await userPage(52);
  await stack.drupal.user(token, 51, {presenceUids: [52]});
  const tab1 = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
  const tab2 = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
  const [s1, s2] = [await h.waitConnected(tab1), await h.waitConnected(tab2)];
  assert.notEqual(s1.id, s2.id);
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_51', callback: 'a', data: 1});
  await h.waitForEvents(tab1, 'callback', 'a');
  await h.waitForEvents(tab2, 'callback', 'a');
  await h.waitForEvents(watcher.page, 'presence', 'p');
  await tab1.close();
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_51', callback: 'a', data: 2});
  await h.waitForEvents(tab2, 'callback', 'a', 2);
  // Keep the watcher busy past the 2 s grace period: no offline notice may arrive for uid 51.
  const marker = Date.now();
  await h.waitFor('2.5 s to pass with the watcher connected', async () => {
    await stack.server.api('POST', 'publish', {channel: 'nodejs_user_52', callback: 'b', data: Date.now()});
    return Date.now() - marker > 2500;
  }, 10000);
  const presence = await h.events(watcher.page, 'presence', 'p');
  assert.deepEqual(presence.map((e) => e.message.presenceNotification.event), ['online'], 'still online');
  assert.equal((await stack.drupal.messages('userOffline', (m) => m.uid == 51)).length, 0);
  await tab2.close();
  await watcher.page.close();
});
