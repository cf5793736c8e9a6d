// End-to-end, what a page sends besides `authenticate` (issue 10, items 2 and 3), on both
// install paths: a message for Drupal's hook_nodejs_message_callback through the module's own
// `Drupal.Nodejs.socket.emit('message', data, ack)` (zero-change path) and through our
// `Drupal.Nodejs.sendMessage` (shim), with the server-set uid and socket id and Drupal's answer
// back in the ack; a refused type never reaches Drupal; a publish to a client-writable channel
// reaches the other member and not the sender, and may drive only the callbacks the site allows.
'use strict';

const {test, after} = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const stack = h.useStack({
  extra: 'clientMessages = ["chatMessage"]\nclientWritableChannels = ["chan_*"]\nclientPublishCallbacks = ["a"]'
});
let site;

after(() => new Promise((resolve) => (site ? site.close(resolve) : resolve())));

/** A connected page of user `uid`: our shim, or the module's nodejs.js on socket.io.js. */
async function userPage(path, uid, opts = {}) {
  site = site || (await h.startSite(() => stack.server.url));
  const token = `req-${uid}-${Math.random().toString(36).slice(2)}`;
  await stack.drupal.user(token, uid, opts);
  let page;
  if (path === 'shim') {
    page = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
  }
  else {
    page = await stack.browser.newPage();
    await page.addInitScript((nodejs) => { window.drupalSettings = {nodejs}; }, stack.server.settings(token));
    await page.goto(`${site.url}/module.html`);
  }
  await h.waitForEvents(page, 'callback', 'clientAuthenticated');
  return page;
}

/** Sends a message for Drupal the way each path offers; resolves with the ack's arguments. */
function sendMessage(page, path, message) {
  return page.evaluate(([path, message]) => new Promise((resolve) => {
    if (path === 'zero-change') {
      Drupal.Nodejs.socket.emit('message', message, (...args) => resolve(args));
    }
    else {
      Drupal.Nodejs.sendMessage(message, (...args) => resolve(args));
    }
  }), [path, message]);
}

for (const path of ['shim', 'zero-change']) {
  test(`${path}: a message for Drupal carries the server's uid and socket id, and the ack gets Drupal's answer`, async () => {
    const uid = path === 'shim' ? 401 : 402;
    const page = await userPage(path, uid);
    const socketId = await page.evaluate(() => Drupal.Nodejs.socket.id);
    const text = `hello from ${path}`;
    const args = await sendMessage(page, path, {type: 'chatMessage', text, uid: 999999, clientId: 'forged'});
    const answer = {status: 'handled', messageType: 'chatMessage', text};
    // Our shim calls back (error, result); socket.io's ack style gets the answer alone.
    const got = args.find((a) => a && a.status === 'handled');
    assert.deepEqual(got, answer, `the ack got ${JSON.stringify(args)}`);
    if (path === 'shim') {
      assert.equal(args[0], null, 'no error');
    }
    const received = await stack.drupal.messages('chatMessage', (m) => m.text === text);
    assert.equal(received.length, 1);
    assert.equal(Number(received[0].uid), uid, 'the uid is the socket\'s, not the forged one');
    assert.equal(received[0].clientId, socketId);

    const before = (await stack.drupal.received()).length;
    const refused = await sendMessage(page, path, {type: 'deleteEverything'});
    assert.match(JSON.stringify(refused), /message-type-not-allowed/);
    assert.equal((await stack.drupal.received()).length, before, 'a refused message never reaches Drupal');
    assert.equal(await page.evaluate(() => Drupal.Nodejs.socket.connected), true, 'the socket stays');
    await page.close();
  });
}

// Security review finding 5: a publish named any page callback (the module's nodejsNotify
// renders HTML), and one without a callback ran every callback through the module's fallback.
// Now only callbacks of clientPublishCallbacks pass, a plain publish runs no callback and
// reaches the channel listeners (onChannel), and server members are refused.
test('shim: a publish to a client-writable channel reaches the other member, not the sender', async () => {
  const sender = await userPage('shim', 411, {channels: ['chan_room']});
  const other = await userPage('zero-change', 412, {channels: ['chan_room']});
  const publish = (message) => sender.evaluate((message) => new Promise((resolve) => {
    Drupal.Nodejs.publish('chan_room', message, (error, result) => resolve({error, result}));
  }), message);
  assert.deepEqual(await publish({callback: 'a', data: {n: 1}}), {error: null, result: {sent: 1}});
  const [e] = await h.waitForEvents(other, 'callback', 'a');
  assert.equal(e.message.data.n, 1);
  assert.equal(e.message.senderUid, 411);
  assert.equal(e.message.senderSocketId, await sender.evaluate(() => Drupal.Nodejs.socket.id));

  const refused = await publish({callback: 'b', data: {n: 2}});
  assert.equal(refused.error && refused.error.code, 'callback-not-allowed', JSON.stringify(refused));
  const reserved = await publish({clientSocketId: 'x', data: {n: 3}});
  assert.equal(reserved.error && reserved.error.code, 'reserved-member', JSON.stringify(reserved));

  assert.deepEqual(await publish({data: {n: 4}}), {error: null, result: {sent: 1}});
  const heard = await h.waitForEvents(other, 'channel', 'prefix', 2);
  assert.deepEqual(heard.map((x) => x.message.data.n), [1, 4], 'the listener got the allowed ones only');
  assert.deepEqual(heard[1].message.callback, [], 'the server set an empty callback list');
  assert.equal((await h.events(other, 'callback', 'b')).length, 0, 'no fallback to every callback');
  assert.equal((await h.events(other, 'callback', 'a')).length, 1, 'a ran for its own publish only');

  const denied = await sender.evaluate(() => new Promise((resolve) => {
    Drupal.Nodejs.publish('nodejs_user_412', {callback: 'a'}, (error) => resolve(error));
  }));
  assert.match(JSON.stringify(denied), /channel-not-writable|not-a-member/);
  assert.equal((await h.events(sender, 'callback', 'a')).length, 0, 'no echo to the sender');
  await sender.close();
  await other.close();
});
