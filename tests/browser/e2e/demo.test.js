// The demo page (www/) against the server in --demo mode: two users, a publish through the
// page's form, presence, a content-channel message, and a screenshot for humans.
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
});

after(async () => {
  await browser?.close();
  proc?.kill('SIGKILL');
});

async function demoPage(uid) {
  const page = await browser.newPage();
  page.consoleLines = [];
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
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
  assert.deepEqual(alice.consoleLines, []);
  assert.deepEqual(bob.consoleLines, []);
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
  const seen = await h.waitFor('four deliveries', async () => {
    const s = await page.evaluate(() => window.__seen);
    return s.some((e) => e[2] === 'four') ? s : null;
  });
  assert.deepEqual(seen, [
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
  assert.deepEqual(page.consoleLines, []);
  await page.close();
});
