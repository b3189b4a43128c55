// End-to-end test of the recorder with an ingest key, in real headless Chromium against the real server
// with authentication on: `sessiontrace keys create --kind ingest --allowed-origin <page origin>` before
// `serve`; a page on that origin records with start({key}) and the session lands in the key's project
// (read back with a read key); the key goes on every request (start, uploads, keepalive flush on close,
// span export, stop) and a reload keeps sending it; the same page on another port is refused and nothing
// is stored. Skips cleanly when the binary or Chromium is missing, or when the binary has no `keys`
// command (a build from before issue 14's server side).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { ROOT, BIN, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startHttp, waitFor, sleep } from './helpers.mjs';

let reason = skipReason();
if (!reason && spawnSync(BIN, ['keys', '--help'], { stdio: 'ignore' }).status !== 0) {
  reason = `${BIN} has no \`keys\` command (a build without authentication)`;
}
if (reason) console.log(`# ingest key e2e skipped: ${reason}`);

/** `sessiontrace keys create ...` on the data dir: the secret is alone on stdout's first line. */
function createKey(dataDir, args) {
  const out = execFileSync(BIN, ['keys', 'create', '--data-dir', dataDir, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.split('\n')[0].trim();
}

/** A server of the fixture page with the ingest key written into its source. */
function pageServer(getKey) {
  return startHttp((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/recorder.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      return res.end(readFileSync(join(ROOT, 'dist', 'recorder.js')));
    }
    if (url.pathname === '/') {
      const html = readFileSync(join(ROOT, 'test', 'fixtures', 'page.html'), 'utf8')
        .replace('<!--META-->', `<script>window.ST_KEY = ${JSON.stringify(getKey())};</script>`);
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end(html);
    }
    res.writeHead(404);
    res.end();
  });
}

describe('recorder with an ingest key, in Chromium', { skip: reason || false }, () => {
  let st, allowed, other, browser, ingestKey, readKey;
  const read = async (path) => {
    const res = await fetch(st.api + path, { headers: { Authorization: `Bearer ${readKey}` } });
    if (!res.ok) throw new Error(`GET ${path} → ${res.status} ${await res.text()}`);
    return res.json();
  };

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'recorder.js'))) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    const { chromium } = await import('playwright-core');
    // Page servers first: the key names the allowed page origin, and keys are created before serve.
    allowed = await pageServer(() => ingestKey);
    other = await pageServer(() => ingestKey);
    const dataDir = mkdtempSync(join(tmpdir(), 'st-key-e2e-'));
    ingestKey = createKey(dataDir, ['--project', 'shop', '--kind', 'ingest', '--allowed-origin', allowed.origin]);
    readKey = createKey(dataDir, ['--project', 'shop', '--kind', 'read']);
    assert.match(ingestKey, /^st_ing_/);
    assert.match(readKey, /^st_read_/);
    st = await startSessiontrace({ dataDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await allowed?.close();
    await other?.close();
    await st?.stop();
  });

  const pageUrl = (origin, extra = '') =>
    `${origin}/?st=${encodeURIComponent(st.api)}&backend=${encodeURIComponent(origin)}&third=${encodeURIComponent(origin)}${extra}`;

  test('an allowed origin records into the key\'s project; every request carries the key', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const pageErrors = [];
    const consoleLines = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    tab.on('console', (m) => consoleLines.push(m.text()));
    // The recorder's requests to the server (preflights aside), recorded as they leave: a request still in
    // flight at a reload may never report finishing. Statuses are added as answers come.
    const own = [];
    tab.on('request', (r) => {
      if (r.url().startsWith(st.api) && r.method() !== 'OPTIONS') own.push({ request: r, url: r.url(), method: r.method(), headers: r.headers() });
    });
    tab.on('response', (res) => {
      const entry = own.find((o) => o.request === res.request());
      if (entry) entry.status = res.status();
    });
    await tab.goto(pageUrl(allowed.origin, '&name=keyed&flush=600000'));
    const session = await tab.evaluate(() => window.stReady);
    assert.match(session.short_id, /^[0-9a-f]{8}$/);
    await tab.evaluate(() => console.info('before the reload'));
    await tab.evaluate(() => sessiontrace.flush());

    // A reload continues the session from sessionStorage, key included.
    await tab.reload();
    const again = await tab.evaluate(() => window.stReady);
    assert.equal(again.id, session.id);
    await tab.evaluate(() => console.info('after the reload'));
    await tab.evaluate(() => sessiontrace.flush());
    // Closing the tab: what is pending goes with keepalive fetches (preflighted: they carry the key).
    await tab.evaluate(() => console.info('last words with a key'));
    await tab.close({ runBeforeUnload: true });

    // The session is in project shop, with its events and the browser's spans.
    const list = await waitFor(async () => {
      const r = await read('/api/sessions');
      return r.sessions.some((s) => s.id === session.id) && r;
    }, { what: 'the session in project shop' });
    assert.equal(list.sessions.length, 1, 'one session in shop');
    const messages = await waitFor(async () => {
      const { events } = await read(`/api/sessions/${session.id}/events`);
      const m = events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/console').map((e) => e.data.payload.message);
      return m.includes('last words with a key') && m;
    }, { timeout: 15000, what: 'the events, including the keepalive flush on close' });
    assert.ok(messages.includes('before the reload') && messages.includes('after the reload'), messages.join(' | '));
    const meta = await waitFor(async () => {
      const s = await read(`/api/sessions/${session.id}`);
      return s.counts?.spans > 0 && s;
    }, { what: 'browser spans exported with the key' });
    assert.ok(meta.counts.events > 0);

    // Every request the recorder made carried the key and was accepted; the key appears nowhere else.
    assert.ok(own.some((r) => r.url === `${st.api}/api/sessions` && r.method === 'POST'), 'session start');
    assert.ok(own.some((r) => r.url.endsWith('/events')), 'uploads');
    assert.ok(own.some((r) => r.url.endsWith('/v1/traces')), 'span export');
    for (const r of own) {
      assert.equal(r.headers.authorization, `Bearer ${ingestKey}`, `${r.method} ${r.url}`);
      if (r.status !== undefined) assert.ok(r.status >= 200 && r.status < 300, `${r.method} ${r.url} → ${r.status}`);
      assert.ok(!r.url.includes(ingestKey), 'the key is never in a URL');
    }
    const { events } = await read(`/api/sessions/${session.id}/events`);
    assert.ok(!JSON.stringify(events).includes(ingestKey), 'the key is not in the replay');
    assert.ok(!consoleLines.some((l) => l.includes(ingestKey)), 'the key is never logged');
    assert.deepEqual(pageErrors, []);
    await ctx.close();
  });

  test('the key cannot read; stop() with the key stops the session', async () => {
    assert.equal((await fetch(`${st.api}/api/sessions`, { headers: { Authorization: `Bearer ${ingestKey}` } })).status, 403);
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(pageUrl(allowed.origin, '&name=stopped'));
    const session = await tab.evaluate(() => window.stReady);
    const stopped = await tab.evaluate(() => sessiontrace.stop());
    assert.equal(stopped.live, false);
    assert.equal((await read(`/api/sessions/${session.id}`)).live, false);
    await ctx.close();
  });

  test('another origin is refused: start() fails and nothing is stored', async () => {
    const before = (await read('/api/sessions')).sessions.length;
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const warnings = [];
    tab.on('console', (m) => warnings.push(m.text()));
    await tab.goto(pageUrl(other.origin, '&name=refused'));
    const outcome = await tab.evaluate(() => window.stReady.then(() => 'started', (e) => `refused: ${e.message}`));
    assert.match(outcome, /^refused: /, outcome);
    assert.equal(await tab.evaluate(() => sessiontrace.sessionId()), null);
    await sleep(500);
    assert.equal((await read('/api/sessions')).sessions.length, before, 'no session stored');
    assert.ok(!warnings.some((l) => l.includes(ingestKey)) && !outcome.includes(ingestKey), 'the key is never logged');
    await ctx.close();
  });
});
