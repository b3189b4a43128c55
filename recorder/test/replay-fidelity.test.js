// End-to-end tests in real headless Chromium against the real server (like e2e.test.js): a same-origin
// iframe, an open shadow root and an opt-in canvas are recorded, stored by the server and replayed by
// rrweb's Replayer (the engine of the UI's replay) with their changes; and the budget: a mutation storm
// pauses DOM recording with a marker in the replay, console events still recorded meanwhile, gzip in a
// Worker. Skips like e2e.test.js when the binary or Chromium is missing.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import {
  ROOT, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startHttp, waitFor, getJson, sleep,
} from './helpers.mjs';

const reason = skipReason();
if (reason) console.log(`# replay fidelity e2e skipped: ${reason}`);
// rrweb (a dependency of @rrweb/record) as one script that sets window.rrweb.
const RRWEB = join(createRequire(import.meta.url).resolve('rrweb'), '..', 'rrweb.umd.min.cjs');

describe('replay fidelity and the budget, in Chromium', { skip: reason || false }, () => {
  let st, site, browser;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'recorder.js'))) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    const { chromium } = await import('playwright-core');
    st = await startSessiontrace();
    site = await startHttp((req, res) => {
      const path = new URL(req.url, 'http://x').pathname;
      const files = {
        '/recorder.js': [join(ROOT, 'dist', 'recorder.js'), 'text/javascript'],
        '/rrweb.js': [RRWEB, 'text/javascript'],
        '/': [join(ROOT, 'test', 'fixtures', 'rich.html'), 'text/html'],
        '/child.html': [join(ROOT, 'test', 'fixtures', 'child.html'), 'text/html'],
        '/replay.html': [null, 'text/html'],
      };
      const f = files[path];
      if (!f) { res.writeHead(404); return res.end(); }
      res.writeHead(200, { 'Content-Type': f[1] });
      res.end(f[0] ? readFileSync(f[0]) : '<!doctype html><html><body><div id="root"></div><script src="/rrweb.js"></script></body></html>');
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await site?.close();
    await st?.stop();
  });

  /** Records the rich page (act() after the start), stops, and returns the session's stored events. */
  async function recordRich(query) {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const pageErrors = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    await tab.goto(`${site.origin}/?st=${encodeURIComponent(st.api)}${query}`);
    const session = await tab.evaluate(() => window.stReady);
    await sleep(300);
    await tab.evaluate(() => window.act());
    await sleep(800); // at 4 canvas frames a second, the changed canvas is in a frame
    await tab.evaluate(() => sessiontrace.stop());
    await ctx.close();
    assert.deepEqual(pageErrors, []);
    const { events } = await getJson(`${st.api}/api/sessions/${session.id}/events`);
    const marks = events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/recorder');
    assert.deepEqual(marks.map((e) => e.data.payload), [], 'this small page is well within the budget');
    return events;
  }

  /** Replays events with rrweb's Replayer to their end; `inspect` runs in the page with the replayed document. */
  async function replay(events, inspect, arg) {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    tab.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await tab.goto(`${site.origin}/replay.html`);
    await tab.evaluate((evs) => {
      const r = new rrweb.Replayer(evs, { root: document.getElementById('root'), mouseTail: false, showWarning: false });
      window.replayer = r;
      r.pause(evs.at(-1).timestamp - evs[0].timestamp + 1); // every event applied
    }, events);
    const result = await waitFor(async () => {
      const v = await tab.evaluate(`(${inspect})(window.replayer.iframe.contentDocument, ${JSON.stringify(arg ?? null)})`);
      return v.ok && v;
    }, { timeout: 10000, what: 'the replayed document to show the change' }).catch(async (e) => {
      const v = await tab.evaluate(`(${inspect})(window.replayer.iframe.contentDocument, ${JSON.stringify(arg ?? null)})`);
      throw new Error(`${e.message}: ${JSON.stringify(v)}`);
    });
    await ctx.close();
    return { result, errors };
  }

  test('a same-origin iframe replays with its content and its later changes', async () => {
    const events = await recordRich('&name=iframe');
    const { result, errors } = await replay(events, (doc) => {
      const inner = doc.querySelector('iframe')?.contentDocument;
      const text = inner?.getElementById('inframe')?.textContent;
      return { ok: text === 'iframe changed 7', text };
    });
    assert.equal(result.text, 'iframe changed 7');
    assert.deepEqual(errors, []);
  });

  test('an open shadow root replays with its content and its later changes', async () => {
    const events = await recordRich('&name=shadow');
    const { result, errors } = await replay(events, (doc) => {
      const root = doc.getElementById('host')?.shadowRoot;
      const text = root?.getElementById('inshadow')?.textContent;
      const added = root?.getElementById('added-in-shadow')?.textContent;
      return { ok: text === 'shadow changed 9' && added === 'added later', text, added };
    });
    assert.equal(result.text, 'shadow changed 9');
    assert.deepEqual(errors, []);
  });

  test('canvas (opt-in, sampled): the stored frames hold the drawing made after the start; without the option none', async () => {
    const events = await recordRich('&name=canvas&canvas=1');
    const frames = events.filter((e) => e.type === 3 && e.data.source === 9);
    assert.ok(frames.length >= 1, `canvas frames recorded: ${frames.length}`);
    // A frame is clearRect + drawImage of an image (webp bytes): what the UI's replay paints (ui/src/lib/canvas.ts).
    const last = frames.at(-1).data;
    assert.deepEqual(last.commands.map((c) => c.property), ['clearRect', 'drawImage']);
    // Decode that image in Chromium: the red square drawn by act() over the blue of the start.
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(`${site.origin}/replay.html`);
    const pixels = await tab.evaluate(async (cmd) => {
      const blob = cmd.args[0].args[0];
      const bytes = Uint8Array.from(atob(blob.data[0].base64), (ch) => ch.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: blob.type }));
      const c = document.createElement('canvas');
      c.width = 100;
      c.height = 100;
      const g = c.getContext('2d');
      g.drawImage(bitmap, cmd.args[1], cmd.args[2]);
      const px = (x, y) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)];
      return { type: blob.type, red: px(10, 10), blue: px(90, 90) };
    }, last.commands[1]);
    await ctx.close();
    assert.equal(pixels.type, 'image/webp');
    const near = (p, q) => p.every((v, i) => Math.abs(v - q[i]) < 40); // webp at quality 0.6: near, not exact
    assert.ok(near(pixels.red, [255, 0, 0]) && near(pixels.blue, [0, 0, 255]), JSON.stringify(pixels));
    // The snapshot's canvas image replays (the frames are painted by the UI, as rrweb replays them only unsafely).
    const { errors } = await replay(events, (doc) => {
      const c = doc.getElementById('cv');
      const p = c && [...c.getContext('2d').getImageData(90, 90, 1, 1).data.slice(0, 3)];
      return { ok: !!p && p[2] > 200, p };
    });
    assert.deepEqual(errors, []);

    const off = await recordRich('&name=nocanvas');
    assert.equal(off.filter((e) => e.type === 3 && e.data.source === 9).length, 0, 'canvas recording is opt-in');
  });

  test('a mutation storm over budget pauses DOM recording, says so in the replay, and resumes', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const warnings = [];
    tab.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
    const budget = JSON.stringify({ mutationsPerSecond: 1000, recorderMsPerSecond: 1000, pauseMs: 1500 });
    await tab.goto(`${site.origin}/?st=${encodeURIComponent(st.api)}&name=storm&budget=${encodeURIComponent(budget)}`);
    const session = await tab.evaluate(() => window.stReady);
    // 100 rows every 50 ms: 2,000 text changes a second, twice the budget, for 1 s.
    await tab.evaluate(() => window.storm(100, 50, 1000));
    const statsPaused = await tab.evaluate(() => sessiontrace.stats());
    await tab.evaluate(() => console.info('while paused'));
    await sleep(1500 + 500); // the pause is over
    await tab.evaluate(() => window.act());
    await sleep(300);
    await tab.evaluate(() => sessiontrace.flush());
    const stats = await tab.evaluate(() => sessiontrace.stats());
    await tab.evaluate(() => sessiontrace.stop());
    await ctx.close();

    assert.equal(statsPaused.pauses, 1, 'paused once');
    assert.ok(stats.gzipInWorker >= 1 && stats.gzipInWorker === stats.sent, `gzip in the worker: ${JSON.stringify(stats)}`);
    assert.ok(warnings.some((w) => w.includes('[sessiontrace] recording paused for 1500 ms: over the mutations budget')), warnings.join('\n'));

    const { events } = await getJson(`${st.api}/api/sessions/${session.id}/events`);
    const marks = events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/recorder');
    assert.deepEqual(marks.map((e) => e.data.payload.state), ['paused', 'resumed']);
    const paused = marks[0].data.payload;
    assert.equal(paused.reason, 'mutations');
    assert.deepEqual(paused.budget, { mutations_per_second: 1000 });
    assert.ok(paused.observed.mutations_per_second > 1000);
    assert.equal(paused.pause_ms, 1500);
    const pausedAt = marks[0].timestamp;
    const resumedAt = marks[1].timestamp;
    assert.ok(resumedAt - pausedAt >= 1400, `paused for ${resumedAt - pausedAt} ms`);
    // Nothing of the DOM while paused; console still recorded; a new full snapshot on resume.
    const domWhilePaused = events.filter((e) => e.type === 3 && e.data.source === 0 && e.timestamp > pausedAt && e.timestamp < resumedAt);
    assert.equal(domWhilePaused.length, 0);
    const consoleMsgs = events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/console').map((e) => e.data.payload);
    assert.ok(consoleMsgs.some((c) => c.message === 'while paused'));
    assert.ok(consoleMsgs.some((c) => c.level === 'warn' && c.message.includes('recording paused')), 'the warning is in the timeline too');
    assert.equal(events.filter((e) => e.type === 2).length, 2, 'a full snapshot at the start and on resume');
    // The replay goes through the marker and shows what changed after the resume.
    const { result, errors } = await replay(events, (doc) => {
      const text = doc.getElementById('host')?.shadowRoot?.getElementById('inshadow')?.textContent;
      return { ok: text === 'shadow changed 9', text };
    });
    assert.equal(result.text, 'shadow changed 9');
    assert.deepEqual(errors, []);
  });
});
