// End-to-end recovery (issue 8) on both install paths: the page's connection is cut by a TCP
// proxy between Chromium and the server, messages are published meanwhile, and once the page
// is back it gets each of them once, in order, before live ones; when recovery is impossible
// (history too short, a restarted memory-engine server) the recoveryFailed hook runs.
'use strict';

const {test, after} = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const stack = h.useStack();
let proxy;
let site;

// (Made on first use: the stack's own before hook may not have run yet.)
after(async () => {
  await proxy?.stop();
  await new Promise((resolve) => (site ? site.close(resolve) : resolve()));
});

/** A connected page of a fresh user through the proxy: our shim, or the zero-change path. */
async function userPage(path, uid, opts = {}) {
  proxy = proxy || (await new h.Proxy(stack.server.port).start());
  site = site || (await h.startSite(() => stack.server.url));
  const token = `rec-${uid}-${Math.random().toString(36).slice(2)}`;
  await stack.drupal.user(token, uid, opts);
  let page;
  if (path === 'shim') {
    page = await h.openPage(stack.browser, stack.server, proxy.settings(token));
  }
  else {
    page = await stack.browser.newPage();
    page.consoleLines = [];
    page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.addInitScript((nodejs) => { window.drupalSettings = {nodejs}; }, proxy.settings(token));
    await page.goto(`${site.url}/module.html`);
  }
  await h.waitForEvents(page, 'callback', 'clientAuthenticated');
  return page;
}

const connected = (page) => page.evaluate(() => Boolean(Drupal.Nodejs.socket && Drupal.Nodejs.socket.connected));

/** Cuts the page's connection and waits until the page knows. */
async function cut(page) {
  proxy.cut();
  await h.waitFor('the page to see the connection drop', async () => !(await connected(page)));
}

/** The `n`s of the data of the messages callback `name` got, in order. */
async function numbers(page, name) {
  return (await h.events(page, 'callback', name)).map((e) => e.message.data.n);
}

for (const path of ['shim', 'zero-change']) {
  test(`${path}: messages published while the connection is cut arrive once, in order, then live ones`, async () => {
    const uid = path === 'shim' ? 301 : 302;
    const page = await userPage(path, uid, {channels: ['rec_room']});
    await stack.server.api('POST', 'publish', {channel: 'rec_room', callback: 'a', data: {n: 0}});
    await h.waitForEvents(page, 'callback', 'a');
    await cut(page);
    for (let n = 1; n <= 20; n++) {
      await stack.server.api('POST', 'publish', {channel: n % 4 ? 'rec_room' : `nodejs_user_${uid}`, callback: 'a', data: {n}});
    }
    await stack.server.api('POST', 'publish', {broadcast: true, channel: 'nodejs_notify', callback: 'b', data: {n: 1}});
    proxy.restore();
    await h.waitFor('the missed messages', async () => (await numbers(page, 'a')).length >= 21, 20000);
    await h.waitForEvents(page, 'callback', 'b');
    await stack.server.api('POST', 'publish', {channel: 'rec_room', callback: 'a', data: {n: 21}});
    await h.waitFor('the live message', async () => (await numbers(page, 'a')).length >= 22);

    const got = await numbers(page, 'a');
    assert.deepEqual(got.filter((n) => n % 4), [...Array(22).keys()].filter((n) => n % 4), 'the room: each once, in order');
    assert.deepEqual(got.filter((n) => n && !(n % 4)), [4, 8, 12, 16, 20], 'the user channel: each once, in order');
    assert.equal(got[got.length - 1], 21, 'the live message after every missed one');
    assert.deepEqual(await numbers(page, 'b'), [1], 'the broadcast once');

    const [recovery] = await h.events(page, 'recovery');
    assert.deepEqual(recovery.message.failed, []);
    assert.deepEqual([...recovery.message.recovered].sort(), ['*', `nodejs_user_${uid}`, 'rec_room'].sort());
    assert.equal((await h.events(page, 'setup', 'recoveryFailed')).length, 0);
    assert.equal((await h.events(page, 'setup', 'connect')).length, 2, 'connect handlers run on every connection');

    await page.close();
  });
}

test('shim: channel callbacks get {channel, stream, offset, epoch}; offsets follow each other', async () => {
  const page = await userPage('shim', 303, {channels: ['rec_meta']});
  await page.evaluate(() => {
    window.__metas = [];
    Drupal.Nodejs.onChannel('rec_meta', (m, meta) => window.__metas.push(meta));
  });
  for (let n = 0; n < 3; n++) {
    await stack.server.api('POST', 'publish', {channel: 'rec_meta', data: {n}});
  }
  const metas = await h.waitFor('three metas', async () => {
    const m = await page.evaluate(() => window.__metas);
    return m.length >= 3 ? m : null;
  });
  assert.deepEqual(metas.map((m) => [m.channel, m.stream]), Array(3).fill(['rec_meta', 'rec_meta']));
  assert.equal(typeof metas[0].epoch, 'string');
  assert.ok(metas[0].epoch.length > 0);
  assert.deepEqual(metas.map((m) => m.offset - metas[0].offset), [0, 1, 2]);
  assert.ok(metas.every((m) => m.epoch === metas[0].epoch));
  await page.close();
});

test('zero-change: a gap longer than the history fails that channel only', async () => {
  const page = await userPage('zero-change', 304, {channels: ['rec_long']});
  await cut(page);
  for (let n = 1; n <= 60; n++) {
    await stack.server.api('POST', 'publish', {channel: 'rec_long', callback: 'b', data: {n}});
  }
  await stack.server.api('POST', 'publish', {channel: 'nodejs_user_304', callback: 'a', data: {n: 1}});
  proxy.restore();
  const [failed] = await h.waitForEvents(page, 'setup', 'recoveryFailed', 1, 20000);
  assert.deepEqual(failed.message, ['rec_long'], 'more missed than historySize (50)');
  await h.waitForEvents(page, 'callback', 'a');
  assert.deepEqual(await numbers(page, 'a'), [1], 'the user channel was recovered');
  assert.deepEqual(await numbers(page, 'b'), [], 'no partial replay of the failed channel');
  const [recovery] = await h.events(page, 'recovery');
  assert.deepEqual(recovery.message.failed, ['rec_long']);
  assert.deepEqual([...recovery.message.recovered].sort(), ['*', 'nodejs_user_304']);
  await stack.server.api('POST', 'publish', {channel: 'rec_long', callback: 'b', data: {n: 61}});
  await h.waitForEvents(page, 'callback', 'b');
  assert.deepEqual(await numbers(page, 'b'), [61], 'live messages of the failed channel follow');
  await page.close();
});

for (const path of ['shim', 'zero-change']) {
  test(`${path}: presence changes missed while cut reach presenceCallbacks after the reconnect`, async () => {
    const [w, x, y] = path === 'shim' ? [311, 312, 313] : [321, 322, 323];
    const watcher = await userPage(path, w);
    const direct = async (uid) => {
      const token = `rec-${uid}`;
      await stack.drupal.user(token, uid, {presenceUids: [w]});
      const page = await h.openPage(stack.browser, stack.server, stack.server.settings(token));
      await h.waitConnected(page);
      return page;
    };
    const gone = await direct(x);
    await h.waitFor('x online', async () => (await h.events(watcher, 'presence')).length >= 1);
    await cut(watcher);
    await gone.close();
    await h.waitFor('x offline on the server', async () => (await stack.drupal.messages('userOffline', (m) => Number(m.uid) === x)).length > 0);
    const arrived = await direct(y);
    proxy.restore();
    const seen = await h.waitFor('the missed presence changes', async () => {
      const p = await h.events(watcher, 'presence');
      return p.length >= 3 ? p.map((e) => e.message.presenceNotification) : null;
    }, 20000);
    assert.deepEqual(seen, [{uid: x, event: 'online'}, {uid: x, event: 'offline'}, {uid: y, event: 'online'}]);
    await arrived.close();
    await watcher.close();
  });
}

// Last: it restarts the shared server.
for (const path of ['shim', 'zero-change']) {
  test(`${path}: after a restart of a memory-engine server every stream fails and recoveryFailed runs`, async () => {
    const uid = path === 'shim' ? 305 : 306;
    const page = await userPage(path, uid, {channels: ['rec_restart']});
    await stack.server.api('POST', 'publish', {channel: 'rec_restart', callback: 'a', data: {n: 0}});
    await h.waitForEvents(page, 'callback', 'a');
    await stack.server.restart();
    const [failed] = await h.waitForEvents(page, 'setup', 'recoveryFailed', 1, 20000);
    assert.deepEqual([...failed.message].sort(), ['*', `nodejs_user_${uid}`, 'rec_restart'], 'new epochs');
    const [recovery] = await h.events(page, 'recovery');
    assert.deepEqual(recovery.message.recovered, []);
    assert.deepEqual([...recovery.message.failed].sort(), ['*', `nodejs_user_${uid}`, 'rec_restart']);
    await stack.server.api('POST', 'publish', {channel: 'rec_restart', callback: 'a', data: {n: 1}});
    await h.waitFor('a live message after the restart', async () => (await numbers(page, 'a')).length >= 2);
    assert.deepEqual(await numbers(page, 'a'), [0, 1]);
    await page.close();
  });
}
