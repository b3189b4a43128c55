// End-to-end test of the whole product in real headless Chromium: starts `sessiontrace demo` (the server in
// process plus the demo shop's gateway, orders, inventory and payment services, all on free ports), records
// a session the way a person would on the shop's own page (start recording, type a user and a password, log
// in, load products, buy tea), then opens the sessiontrace UI: sessions list -> that session -> the replay
// iframe shows the shop page, the timeline lists the checkout call, selecting it shows a waterfall across
// the services, and the login's password is shown as ***MASKED*** (the real one never appears); each
// frustration signal is found, filtered (API and list) and linked to its backend span.
// Screenshots go to ui/test-artifacts/ and are copied to docs/screenshots/ (the README's pictures).
// Skips (passing) when the server binary or /usr/bin/chromium is missing, unless SESSIONTRACE_E2E_REQUIRED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, freePort, hex } from './fixtures.mjs';

const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(UI, '..');
const BIN = process.env.SESSIONTRACE_BIN || path.join(ROOT, 'target', 'debug', 'sessiontrace');
const RECORDER = path.join(ROOT, 'recorder');
const ART = path.join(UI, 'test-artifacts');
const SHOTS = path.join(ROOT, 'docs', 'screenshots');

const skip = !fs.existsSync(BIN) ? `server binary not found at ${BIN} (set SESSIONTRACE_BIN or build it)`
  : !fs.existsSync(CHROMIUM) ? `chromium not found at ${CHROMIUM}`
  : !fs.existsSync(path.join(RECORDER, 'dist', 'recorder.js')) && !fs.existsSync(path.join(RECORDER, 'node_modules'))
    ? 'recorder bundle not built and recorder/node_modules missing (run: npm --prefix recorder ci && npm --prefix recorder run build)'
  : false;
// CI sets SESSIONTRACE_E2E_REQUIRED so a missing prerequisite fails instead of skipping.
if (skip && process.env.SESSIONTRACE_E2E_REQUIRED) throw new Error(`demo e2e required but ${skip}`);
if (skip) console.log(`# skipping demo e2e: ${skip}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 300)}`);
}

async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) return null;
  return res.json();
}

/** Starts `sessiontrace demo` on free ports and waits for its `demo page:` line. */
async function startDemo() {
  if (!fs.existsSync(path.join(UI, 'dist', 'index.html'))) execFileSync('npm', ['run', 'build'], { cwd: UI, stdio: 'inherit' });
  if (!fs.existsSync(path.join(RECORDER, 'dist', 'recorder.js'))) execFileSync('npm', ['run', 'build'], { cwd: RECORDER, stdio: 'inherit' });
  const ports = {};
  for (const k of ['http', 'otlp-http', 'otlp-grpc', 'gateway', 'orders', 'inventory', 'payment']) ports[k] = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessiontrace-demo-e2e-'));
  fs.mkdirSync(ART, { recursive: true });
  const logFile = path.join(ART, 'demo.log');
  const log = fs.createWriteStream(logFile);
  const args = ['demo', '--data-dir', dataDir, '--payment-failure-rate', '0',
    ...Object.entries(ports).flatMap(([k, p]) => [`--${k}`, `127.0.0.1:${p}`])];
  // Its own process group, so a SIGKILL fallback also reaches the service processes it started. The
  // working directory is the repository, where the server finds ui/dist and recorder/dist.
  const proc = spawn(BIN, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let exited = null;
  const exit = new Promise((r) => proc.on('exit', (code, signal) => { exited = signal ?? code; r(); }));
  proc.stdout.on('data', (d) => { out += d; log.write(d); });
  proc.stderr.on('data', (d) => log.write(d));
  const stop = async () => {
    if (exited === null) {
      try { process.kill(proc.pid, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([exit, sleep(10000)]);
      if (exited === null) {
        console.log('# demo did not stop within 10 s of SIGTERM; SIGKILL');
        try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
        await Promise.race([exit, sleep(5000)]);
      }
    }
    // The services are children of the demo; make sure none outlives it (same process group).
    try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* group already empty */ }
    log.end(`\n[e2e] demo exited: ${exited}\n`);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // An exited demo ends the wait at once (waitFor would retry a throw until its timeout).
    const page = await waitFor(async () => (exited !== null ? { exited } : out.match(/^demo page: (http:\/\/\S+)$/m)?.[1]),
      'the demo to print `demo page:`', 180000)
      .then((found) => { if (typeof found !== 'string') throw new Error(`demo exited (${found.exited}); see ${logFile}`); return found; })
      .catch((e) => { throw new Error(`${e.message}\n--- demo output ---\n${out}`); });
    const scripted = out.match(/\/sessions\/([0-9a-f]{32})/)?.[1] ?? null;
    return { page, base: `http://127.0.0.1:${ports.http}`, scripted, stop, output: () => out };
  } catch (e) {
    await stop();
    throw e;
  }
}

test('demo end to end: record the shop in Chromium, then list -> session -> replay -> waterfall -> masked password', { skip, timeout: 420_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const demo = await startDemo();
  let browser;
  let page = null;
  const shots = [];
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const { base } = demo;
    const password = `pw-${hex(6)}`; // unique, so finding it anywhere proves a leak
    const user = 'grace';

    // 1. A person on the shop page: start recording, type a user and a password, log in, look at the
    // products, buy tea (the flow that calls gateway -> orders -> inventory / payment), stop recording.
    const shopCtx = await browser.newContext({ viewport: { width: 1024, height: 700 } });
    const shop = await shopCtx.newPage();
    const shopErrors = [];
    shop.on('pageerror', (e) => shopErrors.push(e.message));
    await shop.goto(demo.page);
    await shop.waitForFunction(() => !!window.sessiontrace, null, { timeout: 15000 });
    await shop.click('#record');
    const sessionLink = shop.locator('#session a');
    await sessionLink.waitFor({ timeout: 15000 });
    const sessionId = (await sessionLink.getAttribute('href')).split('/sessions/')[1];
    assert.match(sessionId, /^[0-9a-f]{32}$/, 'the page links the new session');
    await shop.waitForTimeout(300);
    const type = async (sel, text) => {
      await shop.click(sel, { clickCount: 3 }); // select what is there, so typing replaces it
      await shop.keyboard.press('Backspace');
      await shop.keyboard.type(text, { delay: 25 });
    };
    await type('#user', user);
    await type('#password', password);
    const out = shop.locator('#out');
    const clickAndWait = async (sel, pathname, expect) => {
      const [resp] = await Promise.all([
        shop.waitForResponse((r) => new URL(r.url()).pathname === pathname, { timeout: 15000 }),
        shop.click(sel),
      ]);
      await waitFor(async () => (await out.innerText()).startsWith(expect), `the page to show "${expect}"`);
      const traceparent = await resp.request().headerValue('traceparent');
      assert.match(traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, `${pathname} carried the session's traceparent`);
      return traceparent.split('-')[1];
    };
    const loginTrace = await clickAndWait('#login', '/api/login', 'login → 200');
    await shop.waitForTimeout(300);
    await clickAndWait('#products', '/api/products', 'products → 200');
    await shop.waitForTimeout(300);
    const checkoutTrace = await clickAndWait('#checkout', '/api/checkout', 'checkout → 201');
    await shop.waitForTimeout(300);
    const declinedTrace = await clickAndWait('#declined', '/api/checkout', 'checkout → 502'); // the declined card: payment says no, orders answers 502
    await shop.waitForTimeout(300);
    const untracedTrace = await clickAndWait('#recommend', '/api/recommendations', 'recommendations → 200'); // not instrumented
    // Frustration: "Add to wishlist" does nothing (a dead click), five quick clicks on "Load products" (a
    // rage click), "Stock forecast" fails after ~1.6 s (an error click). Each waits out the rules' 3 s
    // follow window, so one click's consequences never count for the next.
    await shop.click('#wishlist');
    await shop.waitForTimeout(3500);
    const rageCalls = [];
    const onProducts = (r) => { if (new URL(r.url()).pathname === '/api/products') rageCalls.push(r); };
    shop.on('response', onProducts);
    // Straight mouse clicks (no actionability waits), so the burst stays well within 1.5 s on a busy machine.
    const box = await shop.locator('#products').boundingBox();
    const burstStart = Date.now();
    for (let i = 0; i < 5; i++) {
      await shop.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await shop.waitForTimeout(100);
    }
    const burstMs = Date.now() - burstStart;
    assert.ok(burstMs < 1200, `the five clicks took ${burstMs} ms`);
    await waitFor(() => rageCalls.length === 5, 'the five product calls of the rage click');
    shop.off('response', onProducts);
    await shop.waitForTimeout(3500);
    const forecastTrace = await clickAndWait('#forecast', '/api/forecast', 'forecast → 503');
    const session = await getJson(`${base}/api/sessions/${sessionId}`);
    assert.ok(checkoutTrace.startsWith(session.trace_id_prefix), `trace ${checkoutTrace} belongs to the session (${session.trace_id_prefix})`);
    await shop.waitForTimeout(500);
    await shop.click('#stop'); // uploads what is left and stops the session
    await shop.locator('#session', { hasText: 'stopped' }).waitFor({ timeout: 15000 });
    assert.deepEqual(shopErrors, [], 'no uncaught errors on the shop page');
    await shopCtx.close();

    // The backend spans of every service arrive within a second or two (batch exporters).
    const wanted = ['browser', 'gateway', 'orders', 'inventory', 'payment'];
    await waitFor(async () => {
      const t = await getJson(`${base}/api/traces/${checkoutTrace}`);
      const have = new Set((t?.spans ?? []).map((s) => s.service ?? s.resource?.['service.name']));
      if (!wanted.every((s) => have.has(s))) throw new Error(`services so far: ${[...have].join(', ')}`);
      return true;
    }, `spans of ${wanted.join(', ')} in the checkout trace`, 30000);
    await waitFor(async () => (await getJson(`${base}/api/traces/${loginTrace}`))?.spans?.some((s) => JSON.stringify(s).includes('***MASKED***')),
      'the login trace with its masked body', 30000);
    // The password was stored masked everywhere: replay events, traces, the session.
    for (const p of [`/api/sessions/${sessionId}/events`, `/api/traces/${loginTrace}`, `/api/sessions/${sessionId}/timeline`,
      `/api/sessions/${sessionId}/export?format=md`, `/api/sessions/${sessionId}/export?format=json&replay=true`]) {
      const text = await (await fetch(base + p)).text();
      assert.ok(!text.includes(password), `the real password is not in ${p}`);
    }
    // The export of this real recording: the steps the person took (the password typed, masked), the
    // checkout request and its trace, in markdown and in the versioned JSON.
    const md = await (await fetch(`${base}/api/sessions/${sessionId}/export?format=md`)).text();
    assert.match(md, /## Steps to reproduce/);
    assert.match(md, /\*\*\*MASKED\*\*\*/, 'the typed password appears only masked');
    assert.match(md, /\/api\/checkout/);
    assert.ok(md.includes(checkoutTrace), 'the export names the checkout trace');
    const exported = await getJson(`${base}/api/sessions/${sessionId}/export?format=json`);
    assert.equal(exported.schema, 'sessiontrace.export/v1');
    assert.ok(JSON.stringify(exported).includes(checkoutTrace));

    // The frustration signals, found (counts and list in the session JSON, timeline items) and linked to
    // the backend: the error click's cause is the forecast call, its trace and that trace's failing span.
    const signalOf = (list, kind, selector) => list.find((x) => x.kind === kind && x.selector.includes(selector));
    const { counts, rage, dead, error } = await waitFor(async () => {
      const s = await getJson(`${base}/api/sessions/${sessionId}`);
      const list = s?.signal_list ?? [];
      const found = { counts: s?.signals, rage: signalOf(list, 'rage', '#products'), dead: signalOf(list, 'dead', '#wishlist'),
        error: signalOf(list, 'error', '#forecast') };
      if (!found.rage || !found.dead || !found.error?.span) throw new Error(`signals so far: ${JSON.stringify(list)}`);
      return found;
    }, 'the rage, dead and error signals with the forecast span', 30000);
    for (const kind of ['rage', 'dead', 'error']) assert.ok(counts[kind] >= 1, `${kind} counted: ${JSON.stringify(counts)}`);
    assert.ok(rage.clicks >= 4, `the rage click covers the burst: ${rage.clicks}`);
    assert.equal(dead.cause, null, 'a dead click has no cause');
    assert.equal(error.cause.status, 503);
    assert.match(error.cause.url, /\/api\/forecast$/);
    assert.ok(error.cause.duration_ms >= 1500, `the forecast call was slow: ${error.cause.duration_ms} ms`);
    assert.equal(error.cause.trace_id, forecastTrace, 'the error signal names the forecast call\'s trace');
    assert.equal(error.span.trace_id, forecastTrace);
    assert.equal(error.span.reason, 'error', `the trace's failing span: ${JSON.stringify(error.span)}`);
    assert.equal(error.span.service, 'gateway', 'a backend span, not the browser\'s own span of the call');
    const signalItems = (await getJson(`${base}/api/sessions/${sessionId}/timeline`)).items.filter((i) => i.kind === 'signal');
    assert.ok(signalItems.some((i) => i.trace_id === forecastTrace), 'the timeline marks the error click with its trace');
    // The export carries them: a "Frustration signals" section and [signal] timeline lines in markdown, a
    // `signals` array in JSON, each with its cause trace and a link to that moment.
    const signalMd = await (await fetch(`${base}/api/sessions/${sessionId}/export?format=md&max_tokens=32000`)).text();
    const mdSection = signalMd.split('## Frustration signals\n')[1]?.split('\n## ')[0] ?? '';
    assert.match(mdSection, new RegExp(`\\*\\*error click\\*\\* on \`button#forecast\`.*GET /api/forecast → 503.*trace \`${forecastTrace}\``), mdSection);
    assert.match(mdSection, /\*\*dead click\*\* on `button#wishlist`/, mdSection);
    assert.match(mdSection, /\*\*rage click ×\d\*\* on `button#products`/, mdSection);
    assert.match(signalMd, /\[signal\] error click button#forecast/);
    const exportedSignals = (await getJson(`${base}/api/sessions/${sessionId}/export?format=json`)).signals;
    const exportedError = exportedSignals.find((x) => x.kind === 'error' && x.element.selector.includes('#forecast'));
    assert.equal(exportedError.cause.trace_id, forecastTrace);
    assert.equal(exportedError.span.reason, 'error');
    assert.match(exportedError.link, new RegExp(`/sessions/${sessionId}\\?t=\\d+&trace=${forecastTrace}$`));
    // Filtered: each kind's filter lists the session.
    for (const kind of ['rage', 'dead', 'error']) {
      const listed = await getJson(`${base}/api/sessions?signal=${kind}&limit=100`);
      assert.ok(listed.sessions.some((x) => x.id === sessionId), `signal=${kind} lists the session`);
    }

    // 2. The sessions list: the recorded visit (and the demo's scripted session).
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base + '/');
    const row = page.locator(`tr[data-session="${sessionId}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.match(await row.innerText(), /demo shop visit/);
    if (demo.scripted) await page.locator(`tr[data-session="${demo.scripted}"]`).waitFor({ timeout: 15000 });
    for (const s of ['gateway', 'inventory', 'payment']) assert.match(await row.innerText(), new RegExp(s), `the list shows service ${s}`);
    const shot = async (target, name) => {
      const file = path.join(ART, `${name}.png`);
      await target.screenshot({ path: file });
      shots.push(file);
    };
    await shot(page, 'list');
    for (const k of ['rage', 'dead', 'error']) assert.match(await row.locator('[data-testid=signals]').innerText(), new RegExp(`${k} \\d`));
    // The list's signal filter: each kind keeps the session.
    for (const kind of ['rage', 'dead', 'error']) {
      await page.locator('select[aria-label=Signal]').selectOption(kind);
      await page.waitForURL(new RegExp(`signal=${kind}`));
      await row.waitFor({ timeout: 15000 });
    }
    await page.goto(base + '/');
    await row.waitFor({ timeout: 15000 });

    // 3. The session page: the replay iframe renders the recorded shop page.
    await row.locator('a.sess-name').click();
    await page.waitForURL(new RegExp(`/sessions/${sessionId}`));
    const frame = page.frameLocator('.replay-host iframe');
    await frame.locator('h1', { hasText: 'demo shop' }).waitFor({ timeout: 20000 });
    await frame.locator('#checkout', { hasText: 'Buy 2 tea' }).waitFor();

    // 4. The timeline lists the network call of the click on "Buy 2 tea".
    await page.locator('[data-testid=timeline-list] .tl-row').first().waitFor({ timeout: 15000 });
    await page.locator('button.chip', { hasText: 'network' }).click();
    const net = page.locator(`.tl-row[data-kind=network][data-trace="${checkoutTrace}"]`);
    await net.first().waitFor({ timeout: 15000 });
    assert.match(await net.first().innerText(), /\/api\/checkout/);

    // 5. Selecting it opens the waterfall across the services.
    await net.first().click();
    await page.waitForURL(new RegExp(`trace=${checkoutTrace}`));
    await page.locator('[data-testid=waterfall] .wf-row').first().waitFor({ timeout: 15000 });
    const services = await waitFor(async () => {
      const s = new Set(await page.locator('.wf-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-service'))));
      return ['gateway', 'orders', 'inventory', 'payment'].every((x) => s.has(x)) ? s : null;
    }, 'waterfall rows of gateway, orders, inventory and payment');
    assert.ok(services.size >= 3, `spans of at least 3 services: ${[...services].join(', ')}`);
    await shot(page.locator('[data-testid=trace-view]'), 'waterfall');

    // 6. The login call: the password in the captured request body is ***MASKED***.
    const login = page.locator(`.tl-row[data-kind=network][data-trace="${loginTrace}"]`);
    await login.first().click();
    await page.waitForURL(new RegExp(`trace=${loginTrace}`));
    const details = page.locator('[data-testid=span-details]');
    await details.waitFor({ timeout: 15000 });
    await waitFor(async () => /"password": "\*\*\*MASKED\*\*\*"/.test(await details.innerText()), 'the masked password in the span details');
    const browserSide = page.locator('details.section', { hasText: 'Browser side of' });
    await browserSide.locator('summary').first().click();
    await waitFor(async () => /"password": "\*\*\*MASKED\*\*\*"/.test(await browserSide.innerText()), 'the masked password in the browser side of the call');
    // The session page with the checkout selected (replay at the click, its waterfall below) for the README.
    await net.first().click();
    await page.waitForURL(new RegExp(`trace=${checkoutTrace}`));
    await waitFor(async () => (await page.locator('.wf-row[data-service=payment]').count()) > 0, 'the checkout waterfall again');
    await page.locator('button.chip', { hasText: 'network' }).click(); // back to the whole timeline
    await page.locator('.tl-row.selected').waitFor();
    await page.waitForTimeout(500);
    await shot(page, 'session');

    // 6b. The error click's timeline mark (the list is virtualized: show the signals only) opens the
    // forecast trace's waterfall.
    await page.locator('button.chip', { hasText: 'signal' }).click();
    await page.locator(`.tl-row[data-kind=signal][data-trace="${forecastTrace}"]`).first().click();
    await page.waitForURL(new RegExp(`trace=${forecastTrace}`));
    await waitFor(async () => (await page.locator('.wf-row[data-service=inventory]').count()) > 0, 'the forecast waterfall');
    await page.locator('button.chip', { hasText: 'signal' }).click(); // back to the whole timeline

    // 7. The real password appears nowhere: not in the UI's DOM, not in the replayed page.
    for (const f of page.frames()) assert.ok(!(await f.content()).includes(password), `password not in frame ${f.url()}`);
    assert.ok(!(await page.locator('body').innerText()).includes(password), 'password not in the visible text');

    // 7b. Completeness names the uninstrumented call (its trace has no backend span); the service map
    // shows the browser and the four services, and an edge filters the timeline to its calls.
    const facts = page.locator('[data-testid=completeness] [data-fact=untraced]');
    await facts.waitFor({ timeout: 15000 });
    assert.match(await facts.innerText(), /\/api\/recommendations/);
    assert.ok(!(await facts.innerText()).includes('/api/checkout'), 'the traced calls are not listed');
    assert.ok(untracedTrace.length === 32);
    const mapNodes = await page.locator('[data-testid=service-map] .map-node').evaluateAll((els) => els.map((e) => e.getAttribute('data-service')).sort());
    assert.deepEqual(mapNodes, ['browser', 'gateway', 'inventory', 'orders', 'payment']);
    await page.locator('[data-testid=service-map] [data-edge="orders->payment"]').click();
    await page.locator('[data-testid=edge-filter]').waitFor();
    const shownTraces = await page.locator('[data-testid=timeline-list] .tl-row').evaluateAll((els) => [...new Set(els.map((e) => e.getAttribute('data-trace')))]);
    assert.ok(shownTraces.length >= 1 && shownTraces.every((t) => t === checkoutTrace || t === declinedTrace), `only the calls that reached payment: ${shownTraces}`);
    await shot(page.locator('.insights'), 'insights');
    await page.locator('[data-testid=edge-filter] button').click();
    // The metrics panel draws the demo services' request rate and latency (exported every 5 s).
    await waitFor(async () => {
      await page.reload();
      await page.locator('[data-testid=metrics]').waitFor({ timeout: 10000 });
      const drawn = await page.locator('[data-testid=metrics] .metric-chart').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-service')} ${e.getAttribute('data-metric')}`));
      if (!drawn.includes('gateway http.server.request.duration') || !drawn.includes('orders http.server.request.count')) throw new Error(`charts so far: ${drawn.join(', ')}`);
      return true;
    }, 'the metrics charts of the demo services', 40000);
    assert.ok(await page.locator('[data-testid=metrics] canvas').count() >= 2, 'uPlot drew canvases');
    await shot(page.locator('[data-testid=metrics]'), 'metrics');

    // 8. Trace search: status = error finds the declined-card trace (orders answered 502), which links
    // to this session; the result opens the trace with the keyboard.
    await page.goto(`${base}/traces?status=error&range=60`);
    const found = page.locator(`[data-testid=trace-results] tr[data-trace="${declinedTrace}"]`);
    await found.waitFor({ timeout: 15000 });
    assert.equal(await page.locator(`[data-testid=trace-results] tr[data-trace="${checkoutTrace}"]`).count(), 0, 'the paid checkout is not an error');
    assert.match(await found.innerText(), /demo shop visit/, 'the result names its session');
    await shot(page, 'trace-search');
    await found.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/traces/${declinedTrace}`));
    await page.locator('.wf-row').first().waitFor({ timeout: 15000 });
    // The trace page maps the trace's calls: the declined checkout went gateway -> orders -> payment.
    await page.locator('[data-testid=service-map] [data-edge="orders->payment"]').waitFor({ timeout: 15000 });
    const traceNodes = await page.locator('[data-testid=service-map] .map-node').evaluateAll((els) => els.map((e) => e.getAttribute('data-service')));
    for (const s of ['gateway', 'orders', 'payment']) assert.ok(traceNodes.includes(s), `the trace map shows ${s}: ${traceNodes}`);
    // The same as a TraceQL expression, with the service that failed.
    await page.goto(`${base}/traces?q=${encodeURIComponent('{ resource.service.name = "orders" && status = error }')}&range=60`);
    await found.waitFor({ timeout: 15000 });

    assert.deepEqual(errors, [], 'no uncaught errors in the UI');
    fs.mkdirSync(SHOTS, { recursive: true });
    for (const f of shots) fs.copyFileSync(f, path.join(SHOTS, path.basename(f)));
  } catch (e) {
    // What the UI showed when a step failed: its URL, visible text and a screenshot (demo-failure.png).
    if (page) {
      await page.screenshot({ path: path.join(ART, 'demo-failure.png') }).catch(() => {});
      const text = await page.locator('body').innerText().catch((err) => `(no text: ${err.message})`);
      console.log(`# failed at ${page.url()}; the page showed:\n# ${text.slice(0, 2000).replace(/\n/g, '\n# ')}`);
    }
    throw e;
  } finally {
    await browser?.close().catch(() => {});
    await demo.stop();
  }
});
