// End-to-end: what the client does when the connection ends (kick, bad token, server restart).
'use strict';

const {test} = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const stack = h.useStack();

/** Publishes to a second, healthy page until it has seen `rounds` messages: lets time pass
 *  while proving the server and the browser keep working. */
async function roundTrips(rounds) {
  const token = `probe-${Math.random()}`;
  await stack.drupal.user(token, 99);
  const probe = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
  await h.waitConnected(probe);
  for (let i = 1; i <= rounds; i++) {
    await stack.server.api('POST', 'publish', {channel: 'nodejs_user_99', callback: 'a', data: i});
    await h.waitForEvents(probe, 'callback', 'a', i);
  }
  await probe.close();
}

test('kick stops the client: disconnect handlers run, no reconnect', async () => {
  await stack.drupal.user('kick-me', 61);
  const page = await h.openPage(stack.browser, stack.server, stack.server.settings('kick-me'));
  await h.waitConnected(page);
  const authsBefore = (await stack.drupal.messages('authenticate', (m) => m.authToken === 'kick-me')).length;
  assert.deepEqual(await stack.server.api('POST', 'user/kick/61'), {status: 'success'});
  await h.waitForEvents(page, 'setup', 'disconnect');
  const s = await h.waitFor('the stopped state', async () => {
    const st = await h.socketState(page);
    return st.state === 'stopped' ? st : null;
  });
  assert.equal(s.status.lastClose, 4002);
  assert.equal(s.connected, false);
  assert.equal(s.sessionid, undefined);
  await roundTrips(20);
  assert.equal((await h.socketState(page)).sockets, 1, 'no second WebSocket was opened');
  assert.equal((await stack.drupal.messages('authenticate', (m) => m.authToken === 'kick-me')).length, authsBefore);
  assert.equal((await h.events(page, 'setup', 'connect')).length, 1);
  await page.close();
});

test('a token Drupal rejects: connectionFailure, and no reconnect loop', async () => {
  const page = await h.openPage(stack.browser, stack.server, stack.server.settings('bad-token'));
  await h.waitForEvents(page, 'setup', 'connectionFailure');
  const s = await h.waitFor('the stopped state', async () => {
    const st = await h.socketState(page);
    return st.state === 'stopped' ? st : null;
  });
  assert.equal(s.status.lastClose, 4001);
  await roundTrips(20);
  assert.equal((await h.socketState(page)).sockets, 1);
  assert.equal((await stack.drupal.messages('authenticate', (m) => m.authToken === 'bad-token')).length, 1);
  assert.equal((await h.events(page, 'setup', 'connectionFailure')).length, 1, 'reported once');
  assert.equal((await h.events(page, 'setup', 'connect')).length, 0);
  assert.ok(page.consoleLines.some((l) => l.startsWith('warning:') && l.includes('4001')), page.consoleLines.join('\n'));
  await page.close();
});

test('the server is killed and restarted: the page reconnects and gets the next message', async () => {
  await stack.drupal.user('survivor', 71, {channels: ['after_restart']});
  const page = await h.openPage(stack.browser, stack.server, stack.server.settings('survivor'));
  const first = await h.waitConnected(page);
  const pageId = await page.evaluate(() => window.__pageId);
  const port = stack.server.port;
  await stack.server.kill('SIGKILL');
  await h.waitForEvents(page, 'setup', 'disconnect');
  const down = await h.waitFor('the waiting state', async () => {
    const st = await h.socketState(page);
    return st.state === 'waiting' || st.state === 'connecting' ? st : null;
  });
  assert.equal(down.connected, false);
  await stack.server.start();
  assert.equal(stack.server.port, port, 'same port');
  const again = await h.waitConnected(page, 40000);
  assert.notEqual(again.id, first.id, 'a new socket');
  await h.waitForEvents(page, 'setup', 'connect', 2);
  assert.ok((await stack.drupal.messages('authenticate', (m) => m.authToken === 'survivor')).length >= 2, 're-authenticated');
  await stack.server.api('POST', 'publish', {channel: 'after_restart', callback: 'a', data: 'after'});
  const [got] = await h.waitForEvents(page, 'callback', 'a');
  assert.equal(got.message.data, 'after');
  assert.equal(await page.evaluate(() => window.__pageId), pageId, 'no reload');
  const attempts = again.status.attempts;
  assert.ok(attempts >= 2 && attempts < 20, `reconnected in ${attempts} attempts`);
  await page.close();
});

test('content tokens joined later are re-sent after a reconnect', async () => {
  await stack.drupal.user('rejoin', 72);
  const room = `rejoin_${Date.now()}`;
  const page = await h.openPage(stack.browser, stack.server, stack.server.settings('rejoin'));
  await h.waitConnected(page);
  await stack.server.api('POST', 'content/token', {channel: room, token: `${room}-t`, notifyOnDisconnect: false});
  await page.evaluate(([c, t]) => Drupal.Nodejs.joinTokenChannel(c, t), [room, `${room}-t`]);
  await h.waitForEvents(page, 'callback', 'clientJoinedTokenChannel');
  await stack.server.restart();
  // A fresh server knows no tokens: Drupal hands out this one again, as a new page would get it.
  await stack.server.api('POST', 'content/token', {channel: room, token: `${room}-t`, notifyOnDisconnect: false});
  await h.waitForEvents(page, 'setup', 'connect', 2, 40000);
  const auth = await stack.drupal.messages('authenticate', (m) => m.authToken === 'rejoin');
  assert.deepEqual(auth[auth.length - 1].contentTokens, {[room]: `${room}-t`});
  await stack.server.api('POST', 'content/token/message', {channel: room, callback: 'b', data: 'still in the room'});
  const [got] = await h.waitForEvents(page, 'callback', 'b');
  assert.equal(got.message.data, 'still in the room');
  await page.close();
});

test('an unreachable server: connectionFailure once, backoff, and going online cuts the wait short', async () => {
  const closed = require('node:net').createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const settings = {client: {scheme: 'http', host: '127.0.0.1', port, path: '/ws'}, authToken: 'x', connectTimeout: 300};
  const page = await h.openPage(stack.browser, stack.server, settings);
  await h.waitForEvents(page, 'setup', 'connectionFailure');
  const waiting = await h.waitFor('a backoff wait of at least 400 ms', async () => {
    const s = await h.socketState(page);
    return s.state === 'waiting' && s.status.retryInMs >= 400 ? s : null;
  }, 30000);
  const attempts = await page.evaluate(() => {
    window.dispatchEvent(new Event('online'));
    return Drupal.Nodejs.socket.status.attempts;
  });
  assert.equal(attempts, waiting.status.attempts + 1, 'reconnected at once, not after the backoff');
  assert.equal((await h.events(page, 'setup', 'connectionFailure')).length, 1);
  assert.equal((await h.events(page, 'setup', 'connect')).length, 0);
  assert.equal((await h.socketState(page)).connected, false);
  await page.close();
});
