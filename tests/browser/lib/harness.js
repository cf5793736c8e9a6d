// Test harness: the real drupal-push binary, the fake Drupal of the Rust tests (its own process), the
// REST API as Drupal calls it, and Debian's chromium driven by playwright-core.
'use strict';

const {spawn} = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const {chromium} = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PAGES = path.resolve(__dirname, '..', 'pages');
const DIST = path.join(ROOT, 'drupal-js', 'dist');
const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');
const SERVICE_KEY = 'e2e-service-key';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function serverBinary() {
  return workspaceBinary('drupal-push', 'E2E_SERVER_BIN');
}

/** Polls `check` (sync or async) until it returns a truthy value; fails after `timeout` ms. */
async function waitFor(what, check, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) {
        return last;
      }
    }
    catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A binary of the workspace: `E2E_<NAME>_BIN`, else target/{debug,release}/`name`. */
function workspaceBinary(name, envVar) {
  if (process.env[envVar]) {
    return process.env[envVar];
  }
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');
  for (const profile of ['debug', 'release']) {
    const bin = path.join(target, profile, name);
    if (fs.existsSync(bin)) {
      return bin;
    }
  }
  throw new Error(`no ${name} binary: run tests/browser/run.sh or set ${envVar}`);
}

/**
 * The fake Drupal of the integration tests (drupal_push_server::fake_drupal), run as its own
 * process (tests/src/bin/fake-drupal.rs) and scripted over HTTP, so that the browser tests and
 * the Rust tests see the same Drupal: it answers POST /nodejs/message (form fields messageJson,
 * serviceKey) like the nodejs module's message handler (spec 2.3-2.4). `user()` makes a token a
 * valid session of a uid with channels `nodejs_user_<uid>` plus `channels` and a presence list;
 * any other token is refused (nodejsValidAuthToken false); a browser message of any type is
 * answered {status: 'handled', messageType, text}.
 */
class FakeDrupal {
  async start() {
    const bin = workspaceBinary('fake-drupal', 'E2E_FAKE_DRUPAL_BIN');
    // Its stdin is a pipe it watches: it exits when this process goes, however it goes.
    this.proc = spawn(bin, [SERVICE_KEY], {stdio: ['pipe', 'pipe', 'inherit']});
    const exited = new Promise((_, reject) => this.proc.once('exit', (code) =>
      reject(new Error(`fake-drupal exited with ${code} before listening`))));
    const lines = readline.createInterface({input: this.proc.stdout});
    const first = new Promise((resolve) => lines.once('line', resolve));
    const line = await Promise.race([first, exited, timeoutAfter(15000, 'the fake Drupal\'s listening line')]);
    const m = /^fake-drupal listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
    if (!m) {
      throw new Error(`unexpected first line from fake-drupal: ${JSON.stringify(line)}`);
    }
    this.url = m[1];
    this.port = Number(m[2]);
    return this;
  }

  async control(method, route, body) {
    const res = await fetch(`${this.url}/_fake/${route}`, {
      method,
      headers: body ? {'Content-Type': 'application/json'} : {},
      body: body ? JSON.stringify(body) : undefined
    });
    if (!res.ok) {
      throw new Error(`fake-drupal ${route}: HTTP ${res.status} ${await res.text()}`);
    }
    return res.json();
  }

  /** Makes `token` a valid session of `uid` (again: replaces what was scripted for it). */
  async user(token, uid, {channels = [], presenceUids = []} = {}) {
    await this.control('POST', 'user', {token, uid, channels, presenceUids});
  }

  /** Every message Drupal received so far, in order. */
  async received() {
    return this.control('GET', 'messages');
  }

  /** Messages of one type (authenticate, userOnline, userOffline, a page's type) so far. */
  async messages(type, filter = () => true) {
    return (await this.received()).filter((m) => m.messageType === type && filter(m));
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return;
    }
    const done = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGKILL');
    await done;
  }
}

/** The real server binary with a TOML config; `restart()` keeps the port. */
class Server {
  constructor(backendPort, {port = 0, extra = ''} = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drupal-push-e2e-'));
    this.backendPort = backendPort;
    this.port = port;
    this.extra = extra;
    this.stderr = '';
  }

  config() {
    return [
      'host = "127.0.0.1"',
      `port = ${this.port}`,
      `serviceKey = "${SERVICE_KEY}"`,
      'wsPath = "/ws"',
      `staticDir = ${JSON.stringify(PAGES)}`,
      `distDir = ${JSON.stringify(DIST)}`,
      this.extra,
      '[backend]',
      'scheme = "http"',
      'host = "127.0.0.1"',
      `port = ${this.backendPort}`,
      'basePath = "/"',
      'messagePath = "nodejs/message"',
      ''
    ].join('\n');
  }

  async start() {
    const file = path.join(this.dir, 'config.toml');
    fs.writeFileSync(file, this.config());
    // The server reads DRUPAL_PUSH_* variables as settings: keep the test's own out of it.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DRUPAL_PUSH_')));
    this.proc = spawn(serverBinary(), [file], {stdio: ['ignore', 'pipe', 'pipe'], env});
    this.proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-20000); });
    const exited = new Promise((_, reject) => this.proc.once('exit', (code) =>
      reject(new Error(`drupal-push exited with ${code} before listening:\n${this.stderr}`))));
    const lines = readline.createInterface({input: this.proc.stdout});
    const first = new Promise((resolve) => lines.once('line', resolve));
    const line = await Promise.race([first, exited, timeoutAfter(15000, 'the listening line')]);
    const m = /^drupal-push listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
    if (!m) {
      throw new Error(`unexpected first line on stdout: ${JSON.stringify(line)}`);
    }
    this.port = Number(m[1]);
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** Kills the process (SIGKILL: no goodbye to the clients) and waits for it to exit. */
  async kill(signal = 'SIGKILL') {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return;
    }
    const done = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill(signal);
    await done;
  }

  async restart() {
    await this.kill();
    return this.start();
  }

  /** A REST call as Drupal makes it (JSON body, NodejsServiceKey header). */
  async api(method, route, body) {
    const res = await fetch(`${this.url}/nodejs/${route}`, {
      method,
      headers: {'NodejsServiceKey': SERVICE_KEY, 'Content-Type': 'application/json'},
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    return res.json();
  }

  /** The settings Drupal renders into drupalSettings.nodejs. */
  settings(authToken, contentTokens = {}) {
    const address = {scheme: 'http', host: '127.0.0.1', port: this.port};
    return {nodejs: address, client: {...address, path: '/ws'}, authToken, contentTokens, connectTimeout: 2000};
  }
}

/**
 * A TCP proxy between the browser and the server: `cut()` drops every connection through it
 * (a reset, no WebSocket close frame, as a phone changing networks sees it) and refuses new
 * ones until `restore()`. A connection also ends when the server's side ends (a restart).
 */
class Proxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.down = false;
    this.pairs = new Set();
    this.server = net.createServer((client) => this.accept(client));
  }

  async start() {
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return this;
  }

  accept(client) {
    if (this.down) {
      return client.resetAndDestroy();
    }
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut() {
    this.down = true;
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore() {
    this.down = false;
  }

  /** Page settings that reach the server through this proxy. */
  settings(authToken, contentTokens = {}) {
    const address = {scheme: 'http', host: '127.0.0.1', port: this.port};
    return {nodejs: address, client: {...address, path: '/ws'}, authToken, contentTokens, connectTimeout: 2000};
  }

  stop() {
    this.cut();
    return new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * The Drupal site of the zero-change path: a static server on another origin than the push
 * server (localhost, its own port) serving the test pages and jQuery; `PUSH_SERVER` in the
 * pages becomes `pushUrl()`.
 */
async function startSite(pushUrl) {
  const jquery = path.resolve(__dirname, '..', 'node_modules', 'jquery', 'dist', 'jquery.min.js');
  const site = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const file = url.pathname === '/jquery.min.js' ? jquery : path.join(PAGES, path.basename(url.pathname));
    if (!fs.existsSync(file)) {
      res.writeHead(404);
      return res.end('not found');
    }
    let body = fs.readFileSync(file);
    if (file.endsWith('.html')) {
      body = body.toString().replaceAll('PUSH_SERVER', pushUrl());
    }
    res.writeHead(200, {'Content-Type': file.endsWith('.html') ? 'text/html' : 'text/javascript'});
    res.end(body);
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  site.url = `http://localhost:${site.address().port}`;
  return site;
}

function timeoutAfter(ms, what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());
}

async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run tests/browser/run.sh (installs Debian chromium)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  });
}

/**
 * Opens the test page with these page settings. The page counts the WebSockets it opens
 * (window.__sockets) by wrapping the real constructor.
 */
async function openPage(context, server, settings, {path: pagePath = '/test.html'} = {}) {
  const page = await context.newPage();
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
  await page.addInitScript((nodejs) => {
    window.drupalSettings = {nodejs};
    window.__sockets = 0;
    window.__pageId = Math.random();
    const Real = window.WebSocket;
    window.WebSocket = function (url, protocols) {
      window.__sockets += 1;
      return protocols === undefined ? new Real(url) : new Real(url, protocols);
    };
    window.WebSocket.prototype = Real.prototype;
    Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
  }, settings);
  await page.goto(`${server.url}${pagePath}`);
  return page;
}

/** The events the page's recorder saw, optionally filtered by kind and name. */
async function events(page, kind, name) {
  const all = await page.evaluate(() => window.__events);
  return all.filter((e) => (!kind || e.kind === kind) && (!name || e.name === name));
}

async function waitForEvents(page, kind, name, count = 1, timeout = 10000) {
  return waitFor(`${count} ${kind}/${name} event(s)`, async () => {
    const found = await events(page, kind, name);
    return found.length >= count ? found : null;
  }, timeout);
}

async function socketState(page) {
  return page.evaluate(() => {
    const s = window.Drupal.Nodejs.socket;
    return s ? {connected: s.connected, id: s.id, sessionid: s.sessionid, inner: s.socket && s.socket.sessionid,
      state: s.state, status: s.status, sockets: window.__sockets} : {sockets: window.__sockets};
  });
}

async function waitConnected(page, timeout = 10000) {
  return waitFor('the page to be connected', async () => {
    const s = await socketState(page);
    return s.connected ? s : null;
  }, timeout);
}

/**
 * Starts a fake Drupal, the real server (with `extra` top-level TOML lines) and Chromium before a
 * test file's tests and stops them after; returns the object that holds them (`drupal`,
 * `server`, `browser`).
 */
function useStack({extra = ''} = {}) {
  const {before, after} = require('node:test');
  const stack = {};
  before(async () => {
    stack.drupal = await new FakeDrupal().start();
    stack.server = await new Server(stack.drupal.port, {extra}).start();
    stack.browser = await launchBrowser();
  });
  after(async () => {
    await stack.browser?.close();
    await stack.server?.kill();
    await stack.drupal?.stop();
  });
  return stack;
}

module.exports = {
  useStack, ROOT, ARTIFACTS, SERVICE_KEY, FakeDrupal, Server, Proxy, startSite, launchBrowser, openPage, events, waitFor,
  waitForEvents, socketState, waitConnected, serverBinary
};
