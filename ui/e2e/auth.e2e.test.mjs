// End-to-end test of logging in to the web UI, in real headless Chromium against the REAL server binary
// with a user (so authentication is on): the login page, a wrong then the right password, the sessions list
// and a session page, CSRF protection against a page on another port (same site: the cookie goes along),
// logout, and a deep link that comes back to its page after login. Skips (passing) when the binary or
// /usr/bin/chromium is missing, or when the binary has no `users`/`keys` commands yet (issue 14's server
// side not in this build). Server log in ui/test-artifacts/auth-server.log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, freePort, hex } from './fixtures.mjs';

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.SESSIONTRACE_BIN || path.resolve(UI, '..', 'target', 'debug', 'sessiontrace');
const ART = path.join(UI, 'test-artifacts');

function hasAuthCommands() {
  if (!fs.existsSync(BIN)) return false;
  return ['users', 'keys'].every((c) => spawnSync(BIN, [c, '--help'], { stdio: 'ignore' }).status === 0);
}
let skip = !fs.existsSync(BIN) ? `server binary not found at ${BIN} (set SESSIONTRACE_BIN or build it)`
  : !fs.existsSync(CHROMIUM) ? `chromium not found at ${CHROMIUM}` : false;
// CI sets SESSIONTRACE_E2E_REQUIRED so a missing prerequisite fails instead of skipping.
if (skip && process.env.SESSIONTRACE_E2E_REQUIRED) throw new Error(`UI auth e2e required but ${skip}`);
// A binary without the auth commands is a build from before issue 14's server side: nothing to test yet.
if (!skip && !hasAuthCommands()) skip = `${BIN} has no \`users\`/\`keys\` commands (a build without authentication)`;
if (skip) console.log(`# skipping UI auth e2e: ${skip}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (n) => console.log(`# auth e2e step ${n}`);
const PASSWORD = `correct horse ${hex(6)}`;

/** Runs the CLI on the data dir; returns stdout (throws with stderr on failure). */
function cli(args, input) {
  return execFileSync(BIN, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

async function startServer(dataDir) {
  if (!fs.existsSync(path.join(UI, 'dist', 'index.html'))) execFileSync('npm', ['run', 'build'], { cwd: UI, stdio: 'inherit' });
  const [http, otlpHttp, otlpGrpc] = [await freePort(), await freePort(), await freePort()];
  fs.mkdirSync(ART, { recursive: true });
  const logPath = path.join(ART, 'auth-server.log');
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(BIN, ['serve', '--data-dir', dataDir, '--http', `127.0.0.1:${http}`, '--otlp-http', `127.0.0.1:${otlpHttp}`,
    '--otlp-grpc', `127.0.0.1:${otlpGrpc}`, '--ui-dir', path.join(UI, 'dist')], { stdio: ['ignore', log, log] });
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 300; i++) {
    if (exited !== null) throw new Error(`server exited with ${exited}; see ${logPath}`);
    try { const r = await fetch(`${base}/healthz`); if (r.ok) break; } catch { /* not up yet */ }
    if (i === 299) throw new Error('server did not answer /healthz within 30 s');
    await sleep(100);
  }
  return {
    base,
    async stop() {
      proc.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === null; i++) await sleep(100);
      if (exited === null) proc.kill('SIGKILL');
    },
  };
}

/** A page on another port of 127.0.0.1: same site as the UI (its cookie goes along), another origin. */
async function startOtherOrigin(apiBase) {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>other origin</title>
<form id="f" method="POST" action="${apiBase}/api/sessions" enctype="text/plain"><input name='{"name":"csrf","x":"' value='"}'></form>`);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

test('login end to end: login page, wrong and right password, sessions, CSRF refused, logout, deep link', { skip, timeout: 240_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessiontrace-auth-e2e-'));
  // A user before the server starts: authentication is on. The password goes on stdin, never in argv.
  cli(['users', 'add', 'alice', '--role', 'admin', '--password-stdin', '--data-dir', dataDir], `${PASSWORD}\n`);
  // An ingest key to seed a session the way a recorder would (no read allowed with it).
  const seedOrigin = 'http://127.0.0.1:9';
  const ingestKey = cli(['keys', 'create', '--data-dir', dataDir, '--project', 'default', '--kind', 'ingest',
    '--allowed-origin', seedOrigin]).split('\n')[0].trim();
  assert.match(ingestKey, /^st_ing_/, 'keys create prints the secret key alone on its first line');
  const shopKey = cli(['keys', 'create', '--data-dir', dataDir, '--project', 'shop', '--kind', 'ingest',
    '--allowed-origin', seedOrigin]).split('\n')[0].trim();

  const server = await startServer(dataDir);
  const other = await startOtherOrigin(server.base);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const shot = (page, name) => page.screenshot({ path: path.join(ART, `auth-${name}.png`) });
  try {
    const { base } = server;
    // Without a credential the API answers 401.
    assert.equal((await fetch(`${base}/api/sessions`)).status, 401);
    const me = await fetch(`${base}/api/auth/me`);
    assert.equal(me.status, 401, '/api/auth/me without a login');

    const seed = async (key, name) => {
      const created = await fetch(`${base}/api/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', origin: seedOrigin },
        body: JSON.stringify({ name, kind: 'backend' }),
      });
      const text = await created.text();
      assert.equal(created.status, 201, `POST /api/sessions with an ingest key: ${text}`);
      return JSON.parse(text);
    };
    const session = await seed(ingestKey, `auth e2e ${hex(3)}`);
    const shopSession = await seed(shopKey, `shop e2e ${hex(3)}`);

    step('1');
    // 1. The UI shows the login page.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctx.setDefaultTimeout(20000); // a step that hangs fails with its name, not the whole test's timeout
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base + '/');
    const form = page.locator('[data-testid=login-form]');
    await form.waitFor({ timeout: 15000 });
    assert.equal(await page.locator('[data-testid=sessions-table]').count(), 0, 'no sessions before login');
    await shot(page, 'login');

    step('2');
    // 2. Wrong password: the server's message, the form stays.
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', 'not the password');
    const button = page.locator('[data-testid=login-form] button[type=submit]');
    await button.click();
    const error = page.locator('[data-testid=login-error]');
    await error.waitFor({ timeout: 10000 });
    assert.match(await error.innerText(), /wrong name or password/i);
    assert.equal(await button.isDisabled(), true, 'the password was cleared: nothing to submit');

    step('3');
    // 3. Right password: the sessions list with the seeded session, the user's name in the top bar.
    await page.fill('input[name=password]', PASSWORD);
    const loginResponse = page.waitForResponse((r) => r.url().endsWith('/api/auth/login'));
    await button.click();
    assert.equal((await loginResponse).status(), 200);
    const row = page.locator(`tr[data-session="${session.id}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.equal(await page.locator('[data-testid=user-name]').innerText(), 'alice');
    const projects = await page.locator('[data-testid=project-select] option').allInnerTexts();
    assert.ok(projects.includes('default') && projects.includes('shop'), `projects ${projects}`);
    const cookies = await ctx.cookies(base);
    const login = cookies.find((c) => c.name === 'sessiontrace_login');
    assert.ok(login, 'login cookie set');
    assert.equal(login.httpOnly, true);
    assert.equal(login.sameSite, 'Lax');
    assert.equal(await page.evaluate(() => document.cookie.includes('sessiontrace_login')), false, 'not readable by scripts');
    await shot(page, 'list');

    step('3b');
    // 3b. The project switcher: shop's sessions, ?project=shop in the URL, kept by a reload.
    const select = page.locator('[data-testid=project-select]');
    await select.selectOption('shop');
    const shopRow = page.locator(`tr[data-session="${shopSession.id}"]`);
    await shopRow.waitFor({ timeout: 15000 });
    assert.equal(await row.count(), 0, "default's session is not in shop");
    assert.match(page.url(), /[?&]project=shop\b/);
    await page.reload();
    await shopRow.waitFor({ timeout: 15000 });
    assert.equal(await select.inputValue(), 'shop');
    await select.selectOption('default');
    await row.waitFor({ timeout: 15000 });
    assert.match(page.url(), /[?&]project=default\b/);

    step('4');
    // 4. A session page.
    await row.locator('a.sess-name').click();
    await page.waitForURL(/\/sessions\//);
    await page.locator('.session-head h1', { hasText: session.name }).waitFor({ timeout: 15000 });

    step('5');
    // 5. A page on another port (same site, so the Lax cookie goes along) cannot change anything: a
    //    form post to /api/sessions and a fetch to /api/auth/logout are refused with 403.
    const evil = await ctx.newPage();
    await evil.goto(other.origin + '/');
    const formPost = evil.waitForResponse((r) => r.url() === `${base}/api/sessions` && r.request().method() === 'POST');
    await evil.evaluate(() => document.getElementById('f').submit());
    const formAnswer = await formPost;
    // 403, not 401: the cookie went along and identified alice, but a cross-origin state change is refused.
    assert.equal(formAnswer.status(), 403, 'cross-origin form POST /api/sessions with the cookie');
    // Let the page finish navigating to the form's answer (closing it mid-navigation can hang).
    await evil.waitForURL(`${base}/api/sessions`, { waitUntil: 'load' });
    await evil.goto(other.origin + '/');
    const logoutPost = evil.waitForResponse((r) => r.url() === `${base}/api/auth/logout`);
    await evil.evaluate((u) => fetch(u, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => null), `${base}/api/auth/logout`);
    assert.equal((await logoutPost).status(), 403, 'cross-origin POST /api/auth/logout with the cookie');
    await evil.close();
    // Still logged in; no session was created by the form.
    assert.equal(await page.evaluate(async () => (await fetch('/api/sessions')).status), 200, 'the login survived');
    const list = await page.evaluate(async () => (await fetch('/api/sessions')).json());
    assert.ok(!list.sessions.some((s) => s.name === 'csrf'), 'the cross-origin form created nothing');

    step('6');
    // 6. Logout: the login page, and the API answers 401 again.
    const logoutAnswer = page.waitForResponse((r) => r.url().endsWith('/api/auth/logout'));
    await page.locator('[data-testid=logout]').click();
    assert.equal((await logoutAnswer).status(), 204);
    await form.waitFor({ timeout: 10000 });
    assert.equal(await page.evaluate(async () => (await fetch('/api/sessions')).status), 401, 'after logout');

    step('7');
    // 7. A deep link opens the login page, and after login the page that was asked for.
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    ctx2.setDefaultTimeout(20000);
    const deep = await ctx2.newPage();
    deep.on('pageerror', (e) => errors.push(e.message));
    await deep.goto(`${base}/sessions/${session.short_id}`);
    await deep.locator('[data-testid=login-form]').waitFor({ timeout: 15000 });
    await deep.fill('input[name=name]', 'alice');
    await deep.fill('input[name=password]', PASSWORD);
    await deep.locator('[data-testid=login-form] button[type=submit]').click();
    await deep.locator('.session-head h1', { hasText: session.name }).waitFor({ timeout: 15000 });
    assert.match(deep.url(), new RegExp(`/sessions/${session.short_id}`));
    await ctx2.close();
    await ctx.close();
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } finally {
    await browser.close().catch(() => {});
    await other.close();
    await server.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
