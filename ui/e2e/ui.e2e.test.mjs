// End-to-end test of the web UI in real headless Chromium against the REAL sessiontrace server binary:
// records a demo checkout with rrweb, seeds the session through the public API (events + OTLP/HTTP JSON
// spans of 3 services), then drives the UI: list -> session -> replay -> timeline -> waterfall -> details.
// Skips (passing) when the server binary or /usr/bin/chromium is missing. Its screenshots are saved as
// ui/test-artifacts/seeded-*.png; the README's pictures come from demo.e2e.test.mjs (the real demo).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, checkoutLogs, checkoutTrace, freePort, hex, recordFlow, startDemoServer } from './fixtures.mjs';

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.SESSIONTRACE_BIN || path.resolve(UI, '..', 'target', 'debug', 'sessiontrace');
const ART = path.join(UI, 'test-artifacts');

const skip = !fs.existsSync(BIN) ? `server binary not found at ${BIN} (set SESSIONTRACE_BIN or build it)`
  : !fs.existsSync(CHROMIUM) ? `chromium not found at ${CHROMIUM}` : false;
// CI sets SESSIONTRACE_E2E_REQUIRED so a missing prerequisite fails instead of skipping.
if (skip && process.env.SESSIONTRACE_E2E_REQUIRED) throw new Error(`UI e2e required but ${skip}`);
if (skip) console.log(`# skipping UI e2e: ${skip}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer() {
  if (!fs.existsSync(path.join(UI, 'dist', 'index.html'))) execFileSync('npm', ['run', 'build'], { cwd: UI, stdio: 'inherit' });
  const [http, otlpHttp, otlpGrpc] = [await freePort(), await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessiontrace-e2e-'));
  fs.mkdirSync(ART, { recursive: true });
  const log = fs.openSync(path.join(ART, 'server.log'), 'w');
  const proc = spawn(BIN, ['serve', '--data-dir', dataDir, '--http', `127.0.0.1:${http}`, '--otlp-http', `127.0.0.1:${otlpHttp}`,
    '--otlp-grpc', `127.0.0.1:${otlpGrpc}`, '--ui-dir', path.join(UI, 'dist')], { stdio: ['ignore', log, log] });
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; i < 300; i++) {
    if (exited !== null) throw new Error(`server exited with ${exited}; see ${path.join(ART, 'server.log')}`);
    try { const r = await fetch(`${base}/healthz`); if (r.ok) break; } catch { /* not up yet */ }
    if (i === 299) throw new Error('server did not answer /healthz within 30 s');
    await sleep(100);
  }
  return { base, stop: () => { proc.kill('SIGTERM'); fs.rmSync(dataDir, { recursive: true, force: true }); } };
}

async function api(base, method, p, body) {
  const res = await fetch(base + p, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

const traceIdFor = (session) => (session.trace_id_prefix + hex(16)).slice(0, 32);

async function waitFor(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 300)}`);
}

test('web UI end to end: list, session replay, timeline, waterfall, masked body', { skip, timeout: 240_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const server = await startServer();
  const demo = await startDemoServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const shot = (target, name) => target.screenshot({ path: path.join(ART, `seeded-${name}.png`) });
  let page = null;
  try {
    const { base } = server;
    // 1. A session recorded the way a person would: type, click Pay (which calls the backend).
    const created = await api(base, 'POST', '/api/sessions', { name: 'e2e checkout', user: { id: 'u-42', name: 'Ada Lovelace' }, capture: { headers: true, bodies: true } });
    assert.equal(created.status, 201, `POST /api/sessions: ${created.text}`);
    const session = created.json;
    assert.match(session.trace_id_prefix, /^(debdeb)[0-9a-f]{8}$/);
    const traceId = traceIdFor(session);
    const clientSpan = hex(8);
    const rec = await recordFlow(browser, demo.url, traceId, clientSpan);
    assert.ok(rec.events.some((e) => e.type === 2), 'rrweb produced a full snapshot');
    assert.ok(demo.seen.some((s) => s.traceparent === `00-${traceId}-${clientSpan}-01`), 'the page sent the session traceparent');
    const ev = await api(base, 'POST', `/api/sessions/${session.id}/events`, { seq: 0, events: rec.events });
    assert.equal(ev.status, 200, `POST events: ${ev.text}`);

    // 2. Backend spans of three services for that call (OTLP/HTTP JSON on the API port), and a log line.
    const { body, ids } = checkoutTrace(traceId, clientSpan, rec.start, rec.duration);
    const tr = await api(base, 'POST', '/v1/traces', body);
    assert.equal(tr.status, 200, `POST /v1/traces: ${tr.text}`);
    const lg = await api(base, 'POST', '/v1/logs', checkoutLogs(traceId, ids.orders, rec.start + rec.duration / 2));
    const logsOk = lg.status === 200;
    if (!logsOk) console.log(`# note: POST /v1/logs answered ${lg.status} ${lg.text.slice(0, 200)}; not checking logs in the UI`);
    await waitFor(async () => (await api(base, 'GET', `/api/traces/${traceId}`)).json?.spans?.length === 4, 'the 4 spans to be queryable');

    // 3. The sessions list.
    page = await browser.newPage({ viewport: { width: 1440, height: 900 }, permissions: ['clipboard-read', 'clipboard-write'] });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base + '/');
    const row = page.locator(`tr[data-session="${session.id}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.match(await row.innerText(), /e2e checkout/);
    assert.match(await row.innerText(), /Ada Lovelace/);
    await shot(page, 'list');

    // 4. The session page: the replay iframe renders the recorded page.
    await row.locator('a.sess-name').click();
    await page.waitForURL(/\/sessions\//);
    const frame = page.frameLocator('.replay-host iframe');
    await frame.locator('h1', { hasText: 'Checkout demo' }).waitFor({ timeout: 15000 });
    await frame.locator('#pay').waitFor();

    // 5. The timeline lists the network call of the scripted click.
    await page.locator('[data-testid=timeline-list] .tl-row').first().waitFor({ timeout: 15000 });
    await page.locator('button.chip', { hasText: 'network' }).click();
    const net = page.locator('.tl-row[data-kind=network]', { hasText: '/api/checkout' });
    await net.first().waitFor({ timeout: 10000 });
    assert.equal(await net.first().getAttribute('data-trace'), traceId);

    // 6. Selecting it seeks the replay and opens the waterfall with spans from three services.
    await net.first().click();
    await page.waitForURL(new RegExp(`trace=${traceId}`));
    await page.locator('[data-testid=waterfall] .wf-row').first().waitFor({ timeout: 15000 });
    await waitFor(async () => (await page.locator('.wf-row').count()) === 4, '4 waterfall rows');
    const services = new Set(await page.locator('.wf-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-service'))));
    assert.deepEqual([...services].sort(), ['gateway', 'orders', 'payments']);
    assert.equal(await page.locator('.tl-row.current').count(), 1, 'the playhead item is highlighted');

    // 7. Details: the captured request body, pretty-printed, with the password masked.
    await page.locator('.wf-row[data-service=gateway]').click();
    const details = page.locator('[data-testid=span-details]');
    await details.waitFor();
    await waitFor(async () => (await details.innerText()).includes('***MASKED***'), '***MASKED*** in the details panel');
    assert.match(await details.innerText(), /"password": "\*\*\*MASKED\*\*\*"/);
    if (logsOk) {
      await page.locator('.wf-row[data-service=orders]', { hasText: 'orders.create' }).click();
      await waitFor(async () => (await details.innerText()).includes('order ord_1001 created'), 'the log of the span in the details panel');
      await page.locator('.wf-row[data-service=gateway]').click();
      await waitFor(async () => (await details.innerText()).includes('***MASKED***'), 'gateway details again');
    }
    await shot(page.locator('[data-testid=trace-view]'), 'waterfall');

    // 7b. "Copy for AI" puts the markdown export on the clipboard; "Download .md" saves the same, masked.
    await page.getByRole('button', { name: 'Copy for AI' }).click();
    await page.locator('[data-testid=export-status]', { hasText: 'Copied' }).waitFor({ timeout: 15000 });
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.match(copied, /e2e checkout/, 'the export names the session');
    assert.match(copied, /\*\*\*MASKED\*\*\*/, 'the export keeps the password masked');
    assert.doesNotMatch(copied, /hunter2/, 'the clear password never leaves the server');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download .md' }).click()]);
    assert.equal(download.suggestedFilename(), `session-${session.short_id}.md`);
    const saved = fs.readFileSync(await download.path(), 'utf8');
    assert.match(saved, /e2e checkout/);
    await page.locator('button.chip', { hasText: 'network' }).click(); // back to the whole timeline
    await page.locator('.tl-row.selected').waitFor();
    await shot(page, 'session');

    // 7c. A link to a moment: "Copy link at this moment" writes ?t= (seconds into the replay); opening a
    // session URL with ?t= seeks the replay there.
    await page.getByRole('button', { name: 'Copy link at this moment' }).click();
    await page.locator('[data-testid=moment-status]').waitFor();
    const link = new URL(await page.evaluate(() => navigator.clipboard.readText()));
    assert.match(link.searchParams.get('t') ?? '', /^\d+\.\d$/, `a ?t= link: ${link}`);
    await page.goto(`${base}/sessions/${session.short_id}?trace=${traceId}&t=1.0`);
    await page.locator('.replay-controls .clock', { hasText: /^00:01\.0 \// }).waitFor({ timeout: 15000 });

    // 8. A live session updates as data arrives: a new replay chunk shows up without a reload.
    const more = [{ type: 5, timestamp: Date.now(), data: { tag: 'sessiontrace/console', payload: { level: 'warn', message: 'late console line' } } }];
    assert.equal((await api(base, 'POST', `/api/sessions/${session.id}/events`, { seq: 1, events: more })).status, 200);
    await page.locator('.tl-row[data-kind=console]', { hasText: 'late console line' }).waitFor({ timeout: 15000 });

    // 9. The trace page by id (pasted into the box), a shareable URL.
    await page.goto(base + '/traces');
    await page.locator('input[aria-label="Trace id"]').first().fill(`00-${traceId}-${clientSpan}-01`);
    await page.locator('.trace-page').getByRole('button', { name: 'Open trace' }).click();
    await page.waitForURL(new RegExp(`/traces/${traceId}`));
    await waitFor(async () => (await page.locator('.wf-row').count()) === 4, 'trace page waterfall');

    // 10. A backend-only session (no replay events) still shows its timeline and waterfall.
    const be = (await api(base, 'POST', '/api/sessions', { name: 'e2e backend job', kind: 'backend' })).json;
    const beTrace = traceIdFor(be);
    const now = Date.now();
    const beSpans = checkoutTrace(beTrace, hex(8), now - 500, 200).body;
    assert.equal((await api(base, 'POST', '/v1/traces', beSpans)).status, 200);
    await page.goto(`${base}/sessions/${be.short_id}`);
    await page.locator('[data-testid=replay-empty]').waitFor({ timeout: 15000 });
    const traceItem = page.locator('.tl-row[data-kind=trace]');
    await traceItem.first().waitFor({ timeout: 15000 });
    await traceItem.first().click();
    await waitFor(async () => (await page.locator('.wf-row').count()) === 4, 'backend-only session waterfall');

    // 11. Every full page load renders, however fast /me answers: the app shell once missed an answer that
    // came before its effects subscribed and stayed at "Loading…" (about one load in six in CI's demo
    // test). Forty loads of three pages catch that with near certainty.
    for (let i = 0; i < 40; i++) {
      const [url, ready] = [[`/traces/${traceId}`, '.wf-row'], [`/sessions/${be.short_id}`, '[data-testid=replay-empty]'],
        ['/', 'tr[data-session]']][i % 3];
      await page.goto(base + url);
      await page.locator(ready).first().waitFor({ timeout: 5000 })
        .catch((e) => { throw new Error(`load ${i} of ${url} did not render: ${e.message}`); });
    }

    assert.deepEqual(errors, [], 'no uncaught page errors');
  } catch (e) {
    // What the page showed when a step failed: its URL, visible text and a screenshot (failure.png).
    if (page) {
      await page.screenshot({ path: path.join(ART, 'seeded-failure.png') }).catch(() => {});
      const text = await page.locator('body').innerText().catch((err) => `(no text: ${err.message})`);
      console.log(`# failed at ${page.url()}; the page showed:\n# ${text.slice(0, 2000).replace(/\n/g, '\n# ')}`);
    }
    throw e;
  } finally {
    await browser.close().catch(() => {});
    await demo.close();
    server.stop();
  }
});
