// The npm package in a real app: `npm pack`, `npm install` of that tarball into a new app, a Vite build of
// the app (`import { start } from '@sessiontrace/recorder'`), the app in headless Chromium against the real
// server. The session is found through the server's API with its replay (a full snapshot, the click, the
// app's fetch) and the app's fetch carried the session's traceparent. Skips like e2e.test.js when the
// server binary or Chromium is missing (fails instead with SESSIONTRACE_E2E_REQUIRED). Only 127.0.0.1.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname } from 'node:path';
import { ROOT, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startHttp, waitFor, getJson } from './helpers.mjs';

const reason = skipReason();
if (reason) console.log(`# package e2e skipped: ${reason}`);

const INDEX_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Vite shop</title></head>
<body><h1>Vite shop</h1><input id="q" placeholder="search"><button id="go">Search</button><p id="out"></p>
<script type="module" src="/main.js"></script></body></html>`;

const MAIN_JS = `import { start, flush, stop, sessionId } from '@sessiontrace/recorder';
window.recorder = { flush, stop, sessionId };
const endpoint = new URLSearchParams(location.search).get('st');
window.stReady = start({ endpoint, name: 'vite app', user: { id: 'vite-user' } });
document.getElementById('go').addEventListener('click', async () => {
  const res = await fetch('/api/search?q=' + encodeURIComponent(document.getElementById('q').value));
  document.getElementById('out').textContent = (await res.json()).result;
});
`;

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

describe('the packed recorder in a Vite app', { skip: reason || false }, () => {
  let dir, st, app, browser;
  const searches = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'st-vite-'));
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }));
    const appDir = join(dir, 'app');
    mkdirSync(appDir);
    writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'st-vite-app', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(dir, packed.filename)], {
      cwd: appDir, stdio: ['ignore', 'inherit', 'inherit'],
    });
    writeFileSync(join(appDir, 'index.html'), INDEX_HTML);
    writeFileSync(join(appDir, 'main.js'), MAIN_JS);
    const { build } = await import('vite');
    await build({ root: appDir, configFile: false, logLevel: 'warn', build: { outDir: join(appDir, 'dist') } });
    const dist = join(appDir, 'dist');

    st = await startSessiontrace();
    app = await startHttp((req, res) => {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/api/search') {
        searches.push({ q: url.searchParams.get('q'), traceparent: req.headers.traceparent || '' });
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ result: "3 results" }));
      }
      const file = join(dist, url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
      if (!file.startsWith(dist) || !existsSync(file)) {
        res.writeHead(404);
        return res.end();
      }
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await app?.close();
    await st?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('records a session with replay and traces the app\'s fetch', async () => {
    const tab = await (await browser.newContext()).newPage();
    const pageErrors = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    await tab.goto(`${app.origin}/?st=${encodeURIComponent(st.api)}`);
    const session = await tab.evaluate(() => window.stReady);
    assert.match(session.short_id, /^[0-9a-f]{8}$/);
    await tab.fill('#q', 'green tea');
    await tab.click('#go');
    await tab.waitForSelector('#out:has-text("3 results")');
    await tab.evaluate(() => window.recorder.flush());

    assert.equal(searches.length, 1);
    assert.ok(searches[0].traceparent.startsWith(`00-debdeb${session.short_id}`), `traceparent ${searches[0].traceparent}`);

    const found = await getJson(`${st.api}/api/sessions/${session.short_id}`);
    assert.equal(found.id, session.id);
    assert.equal(found.name, 'vite app');
    const { events } = await waitFor(async () => {
      const r = await getJson(`${st.api}/api/sessions/${session.id}/events`);
      const network = r.events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/network');
      return r.events.some((e) => e.type === 2) && network.some((n) => n.data.payload.url.includes('/api/search')) && r;
    }, { what: 'the replay with the search call' });
    const sources = events.filter((e) => e.type === 3).map((e) => e.data.source);
    assert.ok(sources.includes(2) || sources.includes(5), 'the click or the typing is in the replay: ' + JSON.stringify(sources));
    assert.ok(!JSON.stringify(events).includes('green tea'), 'typed text is masked');
    await waitFor(async () => (await getJson(`${st.api}/api/sessions/${session.id}/traces`)).traces?.length > 0,
      { what: 'a trace of the session' });

    await tab.evaluate(() => window.recorder.stop());
    assert.deepEqual(pageErrors, []);
  });
});
