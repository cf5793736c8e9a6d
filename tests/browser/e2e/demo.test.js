// The demo page (www/) against the server in --demo mode: two users, a publish through the
// page's form, presence, a content-channel message, and a screenshot for humans. A first-time
// user opening the developer tools must see nothing red: every response the pages trigger
// (favicon included) is below 400, and the console has no error (issue 14.3).
'use strict';

const {test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const {spawn} = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const h = require('../lib/harness');

let proc;
let url;
let browser;

before(async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DRUPAL_PUSH_')));
  proc = spawn(h.serverBinary(), ['--demo', '--port', '0'], {cwd: h.ROOT, env, stdio: ['ignore', 'pipe', 'pipe']});
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({input: proc.stdout}).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`demo server exited with ${code}: ${stderr}`)));
  });
  url = /listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line)[1];
  browser = await h.launchBrowser();
  watch(browser);
});

after(async () => {
  await browser?.close();
  proc?.kill('SIGKILL');
});

/**
 * What a developer would see as an error, in every tab of the browser: console errors,
 * uncaught exceptions, failed requests and responses with a 4xx/5xx status (`seen.problems`),
 * and every response (`seen.responses`, to show what was checked). Responses are watched on
 * the browser context: the favicon a page links to is fetched outside the page's own events.
 * (A default `/favicon.ico` that is missing shows only as a console error, which is watched too.)
 */
const seen = {problems: [], responses: []};
/** `seen.problems`, for tests with a `seen` of their own. */
const problems = () => seen.problems;

function watch(context) {
  context.on('requestfailed', (r) => seen.problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  context.on('response', (r) => {
    seen.responses.push(`${r.status()} ${r.url()}`);
    if (r.status() >= 400) {
      seen.problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
}

async function watchedPage() {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') {
      seen.problems.push(`console error: ${m.text()} (${m.location().url})`);
    }
  });
  page.on('pageerror', (e) => seen.problems.push(`pageerror: ${e.message}`));
  return page;
}

/**
 * Waits until the page is idle and has fetched its favicon (browsers do that after the load
 * event), or until a problem shows, which the caller's assertion then names.
 */
async function settled(page) {
  await page.waitForLoadState('networkidle');
  await h.waitFor('the favicon request', () =>
    seen.problems.length > 0 || seen.responses.some((r) => /\/favicon\.svg$/.test(r)));
}

async function demoPage(uid) {
  const page = await watchedPage();
  await page.goto(`${url}/?uid=${uid}`);
  await h.waitFor(`uid ${uid} connected`, () => page.evaluate(() => document.getElementById('state').dataset.state === 'connected'));
  return page;
}

test('the demo page connects, publishes through its form and shows what arrives', async () => {
  const alice = await demoPage(3);
  const bob = await demoPage(4);
  await h.waitFor('bob online on alice\'s presence list',
    () => alice.evaluate(() => document.querySelector('#presence li[data-uid="4"]').classList.contains('online')));

  await alice.fill('#publish-form input[name=subject]', 'Release');
  await alice.fill('#publish-form input[name=body]', 'drupal-push is up');
  await alice.click('#publish-form button');
  for (const page of [alice, bob]) {
    await h.waitFor('the notify toast', () => page.evaluate(() =>
      [...document.querySelectorAll('#toasts .toast')].some((t) => t.textContent === 'Releasedrupal-push is up')));
  }
  await bob.fill('#content-form input[name=text]', 'hello room');
  await bob.click('#content-form button');
  await h.waitFor('the room message at alice', () => alice.evaluate(() =>
    document.getElementById('log').textContent.includes('hello room')));
  await alice.selectOption('#publish-form select[name=callback]', 'nodejsNodeAjax');
  await alice.fill('#publish-form input[name=body]', 'inserted by nodejsNodeAjax');
  await alice.click('#publish-form button');
  await h.waitFor('the AJAX insert at bob', () => bob.evaluate(() =>
    document.getElementById('ajax-target').textContent.includes('inserted by nodejsNodeAjax')));

  const counts = await alice.evaluate(() => document.getElementById('counts').textContent);
  assert.equal(counts, '1 / 1');
  fs.mkdirSync(h.ARTIFACTS, {recursive: true});
  await alice.setViewportSize({width: 1280, height: 900});
  await alice.screenshot({path: path.join(h.ARTIFACTS, 'demo.png'), fullPage: true});
  await settled(alice);
  await settled(bob);
  assert.deepEqual(seen.problems, [], `responses: ${seen.responses.join(', ')}`);
});

test('the demo page and the status page cause no 4xx/5xx response and no console error', async () => {
  // (Responses of the first test count too: the browser caches the favicon and asks only once.)
  const page = await demoPage(5);
  await settled(page);
  const paths = seen.responses.map((r) => new URL(r.split(' ')[1]).pathname);
  for (const wanted of ['/', '/demo.css', '/demo.js', '/favicon.svg', '/demo/settings', '/dist/drupal-push.js']) {
    assert.ok(paths.includes(wanted), `${wanted} was requested: ${seen.responses.join(', ')}`);
  }
  await page.goto(`${url}/status`);
  await h.waitFor('the status page showing data', () => page.evaluate(() =>
    document.getElementById('state').textContent === 'up'));
  await page.waitForLoadState('networkidle');
  assert.deepEqual(seen.problems, [], `responses: ${seen.responses.join(', ')}`);
  // The watch itself works: a missing file is caught, as a response and on the console.
  await page.evaluate(() => fetch('/no-such-file.png'));
  await h.waitFor('the 404 to be recorded', () =>
    seen.problems.some((p) => p.startsWith('HTTP 404')) && seen.problems.some((p) => p.startsWith('console error')));
  seen.problems.length = 0;
  await page.close();
});

test('the status page shows publishes and deliveries per second and charts them', async () => {
  const subscriber = await demoPage(7);
  const page = await watchedPage();
  await page.goto(`${url}/status`);
  await h.waitFor('the status page showing data', () => page.evaluate(() =>
    document.getElementById('state').textContent === 'up'));
  const rate = (key) => page.evaluate((k) => parseFloat(document.getElementById(`v-${k}`).textContent), key);
  // Publishes keep coming until one poll of the page saw both totals move.
  let i = 0;
  await h.waitFor('non-zero rates on the cards', async () => {
    await page.evaluate((n) => fetch('/demo/publish', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({channel: 'demo', data: {subject: `rate ${n}`}})}), i++);
    return (await rate('publishRate')) > 0 && (await rate('deliveryRate')) > 0;
  });
  // The delivery line (its own colour) rises above the chart's zero line once the page has two
  // points of it to join.
  await h.waitFor('the deliveries line drawn above zero', () => page.evaluate(() => {
    const c = document.getElementById('rates');
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height - 12).data;
    for (let j = 0; j < px.length; j += 4) {
      if (Math.abs(px[j] - 0xc4) < 24 && Math.abs(px[j + 1] - 0x56) < 24 && Math.abs(px[j + 2] - 0x1d) < 24) return true;
    }
    return false;
  }));
  assert.deepEqual(seen.problems, [], `responses: ${seen.responses.join(', ')}`);
  await page.close();
  await subscriber.close();
});

test('channel callbacks on the demo page: exact channel, prefix, broadcast', async () => {
  const page = await demoPage(5);
  await page.evaluate(() => {
    const seen = (window.__seen = []);
    const note = (name) => (message, meta) => seen.push([name, meta.channel, message.data && message.data.subject]);
    window.__stopDemo = Drupal.Nodejs.onChannel('demo', note('demo'));
    Drupal.Nodejs.onChannel('nodejs_*', note('nodejs_*'));
    Drupal.Nodejs.channelCallbacks.nodejs_user_5 = {callback: note('registry')};
    Drupal.Nodejs.onBroadcast(note('broadcast'));
  });
  const publish = (body) => page.evaluate((b) => fetch('/demo/publish', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(b)}).then((r) => r.json()), body);
  assert.equal((await publish({channel: 'demo', data: {subject: 'one'}})).status, 'success');
  await publish({channel: 'nodejs_user_5', callback: 'nodejsNotify', data: {subject: 'two'}});
  await publish({broadcast: true, channel: 'nodejs_notify', data: {subject: 'three'}});
  await publish({channel: 'nodejs_ajax_broadcast', data: {subject: 'four'}});
  const delivered = await h.waitFor('four deliveries', async () => {
    const s = await page.evaluate(() => window.__seen);
    return s.some((e) => e[2] === 'four') ? s : null;
  });
  assert.deepEqual(delivered, [
    ['demo', 'demo', 'one'],
    ['nodejs_*', 'nodejs_user_5', 'two'],
    ['registry', 'nodejs_user_5', 'two'],
    ['broadcast', null, 'three'],
    ['nodejs_*', 'nodejs_ajax_broadcast', 'four'],
  ]);
  await page.evaluate(() => window.__stopDemo());
  await publish({channel: 'demo', data: {subject: 'five'}});
  await publish({channel: 'nodejs_user_5', data: {subject: 'six'}});
  await h.waitFor('six', async () => (await page.evaluate(() => window.__seen)).some((e) => e[2] === 'six'));
  assert.ok(!(await page.evaluate(() => window.__seen)).some((e) => e[2] === 'five'), 'unregistered');
  assert.deepEqual(seen.problems, [], 'no console error, page error or failed request');
  await page.close();
});
