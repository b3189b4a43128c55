// End-to-end test of canvas replay (issue 21) in real headless Chromium against the REAL server binary: a
// page with a canvas is recorded with rrweb's canvas recording as the recorder's recordCanvas sets it up
// (frames sampled a few times a second, webp); the canvas is blue in the full snapshot, then painted red,
// then green (each change sampled into a frame). The session's page in the UI is seeked with the replay's slider, and the replayed canvas's
// pixels on screen must follow: green at the end, red between the two frames (a seek backwards), blue at the start
// (the snapshot image: before the UI showed canvases, a replayed canvas showed nothing at all),
// then green again (a seek forwards). Skips like ui.e2e.test.mjs; server log in
// ui/test-artifacts/canvas-server.log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, freePort, startSessiontrace } from './fixtures.mjs';

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.SESSIONTRACE_BIN || path.resolve(UI, '..', 'target', 'debug', 'sessiontrace');
const ART = path.join(UI, 'test-artifacts');
const RECORD_JS = path.join(UI, 'node_modules', '@rrweb', 'record', 'dist', 'record.umd.min.cjs');

const skip = !fs.existsSync(BIN) ? `server binary not found at ${BIN} (set SESSIONTRACE_BIN or build it)`
  : !fs.existsSync(CHROMIUM) ? `chromium not found at ${CHROMIUM}` : false;
if (skip && process.env.SESSIONTRACE_E2E_REQUIRED) throw new Error(`UI canvas e2e required but ${skip}`);
if (skip) console.log(`# skipping UI canvas e2e: ${skip}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last && last.ok !== false) return last; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 300)}`);
}

// rrweb's record with the options recorder/src/index.js passes when recordCanvas is on.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>Canvas page</title>
<script src="/record.js"></script></head>
<body><h1>Canvas page</h1><canvas id="cv" width="100" height="100"></canvas>
<script>
  const g = document.getElementById('cv').getContext('2d');
  g.fillStyle = 'rgb(0, 0, 255)';
  g.fillRect(0, 0, 100, 100);
  window.__events = [];
  rrwebRecord.record({
    emit: (e) => window.__events.push(e), recordCanvas: true, sampling: { canvas: 4 },
    dataURLOptions: { type: 'image/webp', quality: 0.6 },
  });
  window.painted = [];
  window.paint = (colour) => { g.fillStyle = colour; g.fillRect(0, 0, 100, 100); window.painted.push(Date.now()); };
  window.frameCount = () => window.__events.filter((e) => e.type === 3 && e.data.source === 9).length;
</script></body></html>`;

async function startPage() {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    if (req.url === '/record.js') { res.setHeader('content-type', 'text/javascript'); return res.end(fs.readFileSync(RECORD_JS)); }
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(PAGE);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Records the page: blue (snapshot, and a first frame), red, green. Returns the events and when it painted. */
async function record(browser, url) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.__events.some((e) => e.type === 2));
  await sleep(500); // the first frame (blue, the same as the snapshot) comes at once
  for (const colour of ['rgb(255, 0, 0)', 'rgb(0, 160, 0)']) {
    const before = await page.evaluate(() => window.frameCount());
    await page.evaluate((c) => window.paint(c), colour);
    await page.waitForFunction((n) => window.frameCount() > n, before);
    await sleep(600);
  }
  await page.evaluate(() => document.querySelector('h1').textContent = 'Canvas page, done');
  await page.waitForFunction(() => window.__events.at(-1).data.source === 0);
  const { events, painted } = await page.evaluate(() => ({ events: window.__events, painted: window.painted }));
  await ctx.close();
  return { events, painted };
}

test('canvas frames replay in the session page, at the playhead after seeks', { skip, timeout: 180_000 }, async () => {
  const { chromium } = await import('playwright-core');
  if (!fs.existsSync(path.join(UI, 'dist', 'index.html'))) execFileSync('npm', ['run', 'build'], { cwd: UI, stdio: 'inherit' });
  const server = await startSessiontrace(BIN, path.join(UI, 'dist'), path.join(ART, 'canvas-server.log'));
  const site = await startPage();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  let page = null;
  try {
    const { events, painted } = await record(browser, site.url);
    const start = events[0].timestamp;
    const frames = events.filter((e) => e.type === 3 && e.data.source === 9).map((e) => e.timestamp - start);
    const [paintRed, paintGreen] = painted.map((t) => t - start);
    // The frames that first show each colour (sampling may add frames of a colour already shown).
    const red = frames.find((t) => t >= paintRed && t < paintGreen);
    const green = frames.find((t) => t >= paintGreen);
    assert.ok(red !== undefined && green !== undefined, `a frame after each change: frames ${frames}, painted ${painted}`);
    assert.ok(paintGreen - red > 300, `frames apart: ${frames}`);

    const created = await fetch(`${server.base}/api/sessions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'e2e canvas' }),
    });
    assert.equal(created.status, 201);
    const session = await created.json();
    const posted = await fetch(`${server.base}/api/sessions/${session.id}/events`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ seq: 0, events }),
    });
    assert.equal(posted.status, 200, await posted.text());

    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${server.base}/sessions/${session.short_id}`);
    await page.frameLocator('.replay-host iframe').locator('#cv').waitFor({ state: 'attached', timeout: 15000 });

    // What is on screen, not the canvas's bitmap: in the sandboxed replay iframe a canvas is rendered as its
    // fallback content, so drawing into it shows nothing. The centre of a screenshot of the replayed canvas,
    // read back by decoding the PNG in the page.
    const cv = page.frameLocator('.replay-host iframe').locator('#cv');
    const pixel = async () => {
      const box = await cv.boundingBox();
      if (!box || box.width < 4 || box.height < 4) return null;
      const png = (await cv.screenshot({ animations: 'disabled' })).toString('base64');
      return page.evaluate(async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        const img = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
        const c = new OffscreenCanvas(img.width, img.height);
        const g = c.getContext('2d');
        g.drawImage(img, 0, 0);
        return [...g.getImageData(img.width >> 1, img.height >> 1, 1, 1).data.slice(0, 3)];
      }, png);
    };
    const near = (p, q) => !!p && p.every((v, i) => Math.abs(v - q[i]) < 40); // webp at quality 0.6
    const seekTo = async (offsetMs, rgb, what) => {
      // The slider's step is 10 ms; rrweb applies events strictly before the playhead.
      await page.locator('.replay-controls input.seek').fill(String(Math.round(offsetMs / 10) * 10));
      await waitFor(async () => { const p = await pixel(); return { ok: near(p, rgb), p }; }, `${what} at ${offsetMs} ms`);
    };
    await seekTo(green + 200, [0, 160, 0], 'green (the last frame)');
    await seekTo((red + paintGreen) / 2, [255, 0, 0], 'red (a seek back to between the frames)');
    await seekTo(paintRed - 100, [0, 0, 255], 'blue (the snapshot image and the first frame)');
    await seekTo(green + 200, [0, 160, 0], 'green again (a seek forwards)');
    assert.equal(await page.locator('[data-testid=canvas-unpainted]').count(), 0, 'no canvas mutation left unpainted');
    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(ART, 'canvas-failure.png') }).catch(() => {});
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await site.close();
    await server.stop();
  }
});
