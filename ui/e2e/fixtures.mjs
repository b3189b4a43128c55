// E2E fixtures: a tiny demo page recorded with rrweb in real Chromium (typing, clicking a checkout that
// calls a backend with the session's traceparent), and OTLP/HTTP JSON spans of three services for that call.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const RECORD_JS = path.join(here, '..', 'node_modules', '@rrweb', 'record', 'dist', 'record.umd.min.cjs');

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export const hex = (bytes) => randomBytes(bytes).toString('hex');

function anyFreePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Ports handed out by this process: the kernel may return a just-closed port again, and two listeners of
// one test given the same port would fail to start.
const handedOut = new Set();

/** A loopback port that was free a moment ago and that this process has not handed out before. */
export async function freePort() {
  for (;;) {
    const port = await anyFreePort();
    if (!handedOut.has(port)) { handedOut.add(port); return port; }
  }
}

const DEMO_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>Demo shop</title>
<style>body{font-family:sans-serif;margin:40px;background:#fafafa} .card{background:#fff;padding:24px;border-radius:8px;width:380px;box-shadow:0 1px 4px #0002}
label{display:block;margin:10px 0 4px} input{width:100%;padding:6px} button{margin-top:16px;padding:8px 18px;background:#2f9e44;color:#fff;border:0;border-radius:4px}</style>
<script src="/record.js"></script>
<script>
  window.__events = [];
  rrwebRecord.record({ emit: (e) => window.__events.push(e), maskInputOptions: { password: true } });
</script></head>
<body><div class="card"><h1>Checkout demo</h1>
<label for="email">Email</label><input id="email" type="email">
<label for="password">Password</label><input id="password" type="password">
<button id="pay">Pay 42.00 EUR</button><p id="result"></p></div>
<script>
  document.getElementById('pay').addEventListener('click', async () => {
    const { traceId, spanId } = window.__trace;
    const body = JSON.stringify({ email: document.getElementById('email').value, password: document.getElementById('password').value });
    const start = Date.now(), t0 = performance.now();
    const res = await fetch('/api/checkout', { method: 'POST', headers: { 'content-type': 'application/json', traceparent: '00-' + traceId + '-' + spanId + '-01' }, body });
    const text = await res.text();
    const duration = performance.now() - t0;
    document.getElementById('result').textContent = 'Order placed: ' + text;
    rrwebRecord.record.addCustomEvent('sessiontrace/network', {
      method: 'POST', url: location.origin + '/api/checkout', status: res.status, start_ms: start, duration_ms: duration,
      trace_id: traceId, span_id: spanId,
      request: { headers: { 'content-type': 'application/json' }, body: body.replace(/"password":"[^"]*"/, '"password":"***MASKED***"') },
      response: { headers: { 'content-type': res.headers.get('content-type') }, body: text },
    });
    window.__done = { start, duration };
  });
</script></body></html>`;

/** Serves the demo page, the rrweb recorder and a fake /api/checkout backend (which waits ~60 ms). */
export async function startDemoServer() {
  const port = await freePort();
  const seen = [];
  const server = http.createServer((req, res) => {
    if (req.url === '/record.js') { res.setHeader('content-type', 'text/javascript'); return res.end(fs.readFileSync(RECORD_JS)); }
    if (req.url === '/api/checkout') {
      seen.push({ traceparent: req.headers.traceparent });
      req.resume();
      return setTimeout(() => { res.setHeader('content-type', 'application/json'); res.end('{"order_id":"ord_1001","status":"paid"}'); }, 60);
    }
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(DEMO_HTML);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}/`, seen, close: () => new Promise((r) => server.close(r)) };
}

/** Opens the demo page, types, clicks Pay like a person; returns rrweb events and the network call timing. */
export async function recordFlow(browser, demoUrl, traceId, spanId) {
  const ctx = await browser.newContext({ viewport: { width: 1024, height: 640 } });
  const page = await ctx.newPage();
  await page.goto(demoUrl);
  await page.evaluate(([t, s]) => { window.__trace = { traceId: t, spanId: s }; }, [traceId, spanId]);
  await page.waitForTimeout(300);
  await page.click('#email');
  await page.keyboard.type('ada@example.com', { delay: 20 });
  await page.click('#password');
  await page.keyboard.type('hunter2', { delay: 20 });
  await page.waitForTimeout(200);
  await page.click('#pay');
  await page.waitForFunction(() => window.__done);
  await page.waitForTimeout(500);
  const { events, done } = await page.evaluate(() => ({ events: window.__events, done: window.__done }));
  await ctx.close();
  return { events, start: done.start, duration: done.duration };
}

const attr = (key, v) => ({
  key,
  value: Array.isArray(v) ? { arrayValue: { values: v.map((x) => ({ stringValue: x })) } }
    : typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v })
    : typeof v === 'boolean' ? { boolValue: v } : { stringValue: String(v) },
});
const ns = (ms) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

/** OTLP/HTTP JSON for one checkout trace across gateway -> orders -> payments (+ a db span). */
export function checkoutTrace(traceId, clientSpanId, startMs, durationMs) {
  const ids = { gw: hex(8), orders: hex(8), pay: hex(8), db: hex(8) };
  const a = startMs + 2, b = startMs + Math.max(10, durationMs - 2);
  const len = b - a;
  const span = (spanId, parent, name, kind, s, e, attrs, status = { code: 1 }) => ({
    traceId, spanId, parentSpanId: parent, name, kind, startTimeUnixNano: ns(s), endTimeUnixNano: ns(e),
    attributes: Object.entries(attrs).map(([k, v]) => attr(k, v)), status,
  });
  const rs = (service, spans) => ({
    resource: { attributes: [attr('service.name', service)] },
    scopeSpans: [{ scope: { name: 'e2e', version: '1' }, spans }],
  });
  const body = {
    resourceSpans: [
      rs('gateway', [span(ids.gw, clientSpanId, 'POST /api/checkout', 2, a, b, {
        'http.request.method': 'POST', 'url.path': '/api/checkout', 'http.response.status_code': 200,
        'http.request.header.content-type': ['application/json'], 'http.request.header.authorization': ['***MASKED***'],
        'http.request.body': '{"email":"ada@example.com","password":"***MASKED***"}',
        'http.response.header.content-type': ['application/json'],
        'http.response.body': '{"order_id":"ord_1001","status":"paid"}',
      })]),
      rs('orders', [
        span(ids.orders, ids.gw, 'orders.create', 2, a + len * 0.1, a + len * 0.9, { 'rpc.method': 'create' }),
        span(ids.db, ids.orders, 'INSERT orders', 3, a + len * 0.15, a + len * 0.3, { 'db.system': 'sqlite', 'db.statement': 'INSERT INTO orders VALUES (?)' }),
      ]),
      rs('payments', [span(ids.pay, ids.orders, 'payments.charge', 2, a + len * 0.35, a + len * 0.85, { 'payment.amount': 42.0 },
        { code: 1 })]),
    ],
  };
  return { body, ids };
}

export function checkoutLogs(traceId, spanId, timeMs) {
  return {
    resourceLogs: [{
      resource: { attributes: [attr('service.name', 'orders')] },
      scopeLogs: [{ scope: { name: 'e2e' }, logRecords: [{
        timeUnixNano: ns(timeMs), observedTimeUnixNano: ns(timeMs), severityNumber: 9, severityText: 'INFO',
        body: { stringValue: 'order ord_1001 created' }, traceId, spanId, attributes: [attr('order.id', 'ord_1001')],
      }] }],
    }],
  };
}

/**
 * Starts the real server binary (`bin`) on free loopback ports with a temporary data dir, serving `uiDir`;
 * its log goes to `logPath`. Waits for /healthz.
 */
export async function startSessiontrace(bin, uiDir, logPath) {
  const { spawn } = await import('node:child_process');
  const os = await import('node:os');
  const [http, otlpHttp, otlpGrpc] = [await freePort(), await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sessiontrace-e2e-'));
  fs.mkdirSync(path.dirname(logPath), { recursive: true });
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(bin, ['serve', '--data-dir', dataDir, '--http', `127.0.0.1:${http}`, '--otlp-http', `127.0.0.1:${otlpHttp}`,
    '--otlp-grpc', `127.0.0.1:${otlpGrpc}`, '--ui-dir', uiDir], { stdio: ['ignore', log, log] });
  let exited = null;
  proc.on('exit', (code) => { exited = code; });
  const base = `http://127.0.0.1:${http}`;
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`server exited with ${exited}; see ${logPath}`);
    try { const r = await fetch(`${base}/healthz`); if (r.ok) break; } catch { /* not up yet */ }
    if (i === 299) { proc.kill('SIGKILL'); throw new Error('server did not answer /healthz within 30 s'); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    async stop() {
      if (exited === null) proc.kill('SIGTERM');
      for (let i = 0; i < 100 && exited === null; i++) await new Promise((r) => setTimeout(r, 100));
      if (exited === null) proc.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
