// End-to-end test in real headless Chromium (playwright-core) against the real sessiontrace server:
// a page on one origin records with the recorder and calls a backend on another origin (instrumented
// with the OpenTelemetry Node SDK) and a third-party origin. Checks go through the server's HTTP API.
// Skips cleanly when the server binary or Chromium is missing. Only 127.0.0.1 is ever contacted.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  ROOT, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startNode, startHttp, waitFor, getJson, sleep,
} from './helpers.mjs';

const reason = skipReason();
if (reason) console.log(`# e2e skipped: ${reason}`);

describe('recorder end to end in Chromium', { skip: reason || false }, () => {
  let st, backend, page, third, browser, chromium;
  const thirdReceived = [];
  const pageRequests = [];

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'recorder.js'))) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    ({ chromium } = await import('playwright-core'));
    st = await startSessiontrace();
    const pagePort = await startHttp((req, res) => {
      const url = new URL(req.url, 'http://x');
      pageRequests.push({ url: req.url, cookie: req.headers.cookie || '' });
      if (url.pathname === '/recorder.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        return res.end(readFileSync(join(ROOT, 'dist', 'recorder.js')));
      }
      if (url.pathname === '/' || url.pathname === '/index.html') {
        // Like the server-side library: a request with the session cookie gets a session trace in <meta>.
        const m = /sessiontrace_session=([0-9a-f]{8})/.exec(req.headers.cookie || '');
        let html = readFileSync(join(ROOT, 'test', 'fixtures', 'page.html'), 'utf8');
        if (m) {
          const hex = (n) => [...Array(n)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');
          const tp = `00-debdeb${m[1]}${hex(18)}-${hex(16)}-01`;
          html = html.replace('<!--META-->', `<meta name="traceparent" content="${tp}">`);
        }
        // ?rec=server: the page loads the recorder from the server's /recorder.js, and start() gets no
        // endpoint (it defaults to where the script came from).
        if (url.searchParams.get('rec') === 'server') html = html.replace('src="/recorder.js"', `src="${st.api}/recorder.js"`);
        res.writeHead(200, { 'Content-Type': 'text/html' });
        return res.end(html);
      }
      res.writeHead(404);
      res.end();
    });
    page = pagePort;
    third = await startHttp((req, res) => {
      thirdReceived.push({ method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Content-Type': 'image/gif' });
      res.end('GIF89a');
    });
    const backendPort = await (await import('./helpers.mjs')).freePort();
    backend = await startNode(join(ROOT, 'test', 'fixtures', 'backend.cjs'), {
      PORT: String(backendPort), OTLP_URL: `${st.otlpHttp}/v1/traces`, PAGE_ORIGIN: page.origin,
    });
    backend.origin = `http://127.0.0.1:${backendPort}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    backend?.stop();
    await page?.close();
    await third?.close();
    await st?.stop();
  });

  const pageUrl = (extra = '') =>
    `${page.origin}/?st=${encodeURIComponent(st.api)}&backend=${encodeURIComponent(backend.origin)}` +
    `&third=${encodeURIComponent(third.origin)}${extra}`;

  test('replay, masking, cross-origin trace, no traceparent to third parties, reload keeps the session', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    const pageErrors = [];
    tab.on('pageerror', (e) => pageErrors.push(e.message));
    const ownCalls = []; // the recorder's calls to the server (session, events, spans)
    tab.on('request', (r) => r.url().startsWith(st.api) && ownCalls.push(r));
    await tab.goto(pageUrl('&name=main'));
    const session = await tab.evaluate(() => window.stReady);
    assert.match(session.short_id, /^[0-9a-f]{8}$/);
    const prefix = 'debdeb' + session.short_id;
    assert.equal(session.trace_id_prefix, prefix);
    assert.ok((await tab.evaluate(() => document.cookie)).includes(`sessiontrace_session=${session.short_id}`));

    const typed = 'Zebra Quokka 4242';
    await tab.fill('#secret', ''); // focus
    await tab.type('#secret', typed, { delay: 10 });
    await tab.click('#go');
    await tab.waitForSelector('#out:has-text("done world")');
    await sleep(1200); // the XHR span hook may run a little after loadend
    await tab.evaluate(() => sessiontrace.flush());

    // Reload: same session, the cookie goes with the navigation, seq numbers continue. What was
    // recorded since the last upload goes out on pagehide (keepalive) or with the next load.
    await tab.evaluate(() => console.warn('just before the reload'));
    await tab.reload();
    const again = await tab.evaluate(() => window.stReady);
    assert.equal(again.id, session.id);
    assert.equal(await tab.evaluate(() => sessiontrace.sessionId()), session.id);
    const reloadReq = pageRequests.filter((r) => r.url.startsWith('/?')).at(-1);
    assert.ok(reloadReq.cookie.includes(`sessiontrace_session=${session.short_id}`), 'reload carried the cookie');
    const metaTp = await tab.evaluate(() => document.querySelector('meta[name=traceparent]')?.content);
    assert.ok(metaTp, 'page served with a session traceparent meta');
    await tab.click('#go');
    await tab.waitForSelector('#out:has-text("done world")');
    await sleep(1200);
    await tab.evaluate(() => sessiontrace.flush());

    // --- replay events through the API
    const { events } = await waitFor(async () => {
      const r = await getJson(`${st.api}/api/sessions/${session.id}/events`);
      return r.events.filter((e) => e.type === 2).length >= 2 && r;
    }, { what: 'two full snapshots' });
    const json = JSON.stringify(events);
    assert.ok(events.some((e) => e.type === 2), 'full snapshot');
    assert.ok(events.some((e) => e.type === 3), 'incremental snapshots');
    assert.ok(events.some((e) => e.type === 3 && e.data.source === 5), 'input events');
    // '4242' is looked for in strings only: a timestamp or a coordinate may hold those digits.
    const strings = [];
    JSON.parse(json, (k, v) => { if (typeof v === 'string') strings.push(v); return v; });
    const leaks = strings.filter((s) => /Zebra|Quokka|4242/.test(s));
    assert.deepEqual(leaks, [], 'typed text is masked');
    assert.ok(!json.includes('Masked paragraph'), 'st-mask text is masked');
    assert.ok(!json.includes('Blocked panel'), 'rr-block element is not recorded');
    for (let i = 1; i < events.length; i++) assert.ok(events[i].timestamp >= events[i - 1].timestamp - 5000);

    const custom = (tag) => events.filter((e) => e.type === 5 && e.data.tag === tag).map((e) => e.data.payload);
    const net = custom('sessiontrace/network');
    const calls = net.filter((n) => n.url.startsWith(backend.origin + '/api/hello'));
    assert.equal(calls.length, 2, 'two backend fetches recorded: ' + JSON.stringify(net.map((n) => n.url)));
    const call = calls[0];
    assert.equal(call.method, 'POST');
    assert.equal(call.status, 200);
    assert.ok(call.duration_ms >= 0 && call.start_ms > 1.7e12);
    assert.ok(call.trace_id.startsWith(prefix), `network trace id ${call.trace_id} has the session prefix`);
    assert.match(call.span_id, /^[0-9a-f]{16}$/);
    assert.equal(call.request.headers.authorization, '***MASKED***');
    assert.equal(JSON.parse(call.request.body).password, '***MASKED***');
    assert.equal(JSON.parse(call.request.body).item, 'book');
    assert.equal(JSON.parse(call.response.body).token, '***MASKED***');
    assert.ok(!json.includes('top-secret-bearer') && !json.includes('hunter2-secret') && !json.includes('server-token-secret'));
    const xhr = net.find((n) => n.url === backend.origin + '/api/xhr');
    assert.ok(xhr, 'XHR recorded');
    assert.equal(xhr.status, 200);
    assert.ok(xhr.trace_id && xhr.trace_id.startsWith(prefix), 'XHR trace id has the session prefix');
    const thirdCall = net.find((n) => n.url.startsWith(third.origin));
    assert.ok(thirdCall, 'third-party call recorded');
    assert.ok(!('traceparent' in (thirdCall.request.headers || {})));
    assert.ok(custom('sessiontrace/console').some((c) => c.level === 'log' && c.message === 'paid world'));
    assert.ok(custom('sessiontrace/console').some((c) => c.level === 'warn' && c.message === 'just before the reload'),
      'events recorded just before the reload were not lost');

    // --- the recorder's own calls never carry a traceparent
    assert.ok(ownCalls.some((r) => r.url().includes('/events')) && ownCalls.some((r) => r.url().includes('/v1/traces')));
    for (const r of ownCalls) assert.equal((await r.allHeaders()).traceparent, undefined, `no traceparent on ${r.url()}`);
    assert.ok(ownCalls.some((r) => r.url().includes('/events') && r.headers()['content-encoding'] === 'gzip'), 'gzip uploads');

    // --- the third party never got a traceparent (nor a preflight caused by one)
    assert.ok(thirdReceived.length >= 2);
    for (const r of thirdReceived) {
      assert.equal(r.method, 'GET');
      assert.equal(r.headers.traceparent, undefined, 'third-party request carried no traceparent');
      assert.equal(r.headers.tracestate, undefined);
    }

    // --- backend spans share the browser span's trace id, parented on the browser's fetch span
    const trace = await waitFor(async () => {
      const t = await getJson(`${st.api}/api/traces/${call.trace_id}`);
      const services = new Set(t.spans.map((s) => s.service));
      return services.has('e2e-backend') && services.has('browser') && t;
    }, { what: `backend + browser spans of trace ${call.trace_id}` });
    for (const s of trace.spans) assert.equal(s.trace_id, call.trace_id);
    const serverSpan = trace.spans.find((s) => s.service === 'e2e-backend' && s.kind === 'server');
    assert.ok(serverSpan, 'backend server span');
    assert.equal(serverSpan.parent_span_id, call.span_id, 'backend span is a child of the browser fetch span');
    const browserSpan = trace.spans.find((s) => s.span_id === call.span_id);
    assert.ok(browserSpan && browserSpan.service === 'browser');
    assert.ok(trace.session_id === session.id || trace.session_id === session.short_id, `trace session_id ${trace.session_id}`);

    // --- the document-load span after the reload joined the trace of the page's <meta traceparent>
    const metaTrace = metaTp.split('-')[1];
    const docTrace = await waitFor(async () => {
      const t = await getJson(`${st.api}/api/traces/${metaTrace}`);
      return t.spans.some((s) => s.service === 'browser') && t;
    }, { what: 'document load span in the meta traceparent trace' });
    assert.ok(docTrace.spans.some((s) => /documentLoad|documentFetch/.test(s.name)), docTrace.spans.map((s) => s.name).join());

    // --- the session knows it all
    const meta = await getJson(`${st.api}/api/sessions/${session.short_id}`);
    assert.equal(meta.id, session.id);
    assert.ok(meta.counts.events > 0);
    assert.ok(meta.counts.spans > 0);

    // --- stop: cookie removed, server session stopped
    const stopped = await tab.evaluate(() => sessiontrace.stop());
    assert.equal(stopped.live, false);
    assert.ok(!(await tab.evaluate(() => document.cookie)).includes('sessiontrace_session'));
    assert.equal(await tab.evaluate(() => sessiontrace.sessionId()), null);
    assert.deepEqual(pageErrors, []);
    await ctx.close();
  });

  test('chunks re-sent after network failures are stored once and none is lost', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    // The first attempts fail: two never reach the server, two reach it but the page sees an error
    // (so the page re-sends chunks the server already stored).
    let attempts = 0;
    let failing = true;
    await tab.route(`${st.api}/api/sessions/*/events`, async (route) => {
      attempts++;
      if (!failing) return route.continue();
      if (attempts <= 2) return route.abort('connectionrefused');
      const resp = await route.fetch();
      assert.equal(resp.status(), 200);
      return route.abort('connectionreset');
    });
    await tab.goto(pageUrl('&name=retry&retry=100&flush=300'));
    const session = await tab.evaluate(() => window.stReady);
    const N = 40;
    for (let i = 0; i < N; i++) {
      await tab.evaluate((i) => {
        console.info('marker-' + i);
        document.getElementById('out').textContent = 'tick ' + i;
      }, i);
      await sleep(i === N / 2 ? 1000 : 40);
      if (i === N / 2) failing = false;
    }
    await tab.evaluate(() => sessiontrace.flush());
    const stats = await tab.evaluate(() => sessiontrace.stats());
    assert.equal(stats.pendingChunks, 0);
    assert.ok(stats.retries >= 4, `retries ${stats.retries}`);
    assert.ok(attempts > stats.sent, 'some chunks were sent more than once');
    const { events } = await getJson(`${st.api}/api/sessions/${session.id}/events`);
    const markers = events.filter((e) => e.type === 5 && e.data.tag === 'sessiontrace/console')
      .map((e) => e.data.payload.message).filter((m) => m.startsWith('marker-'));
    assert.deepEqual(markers, [...Array(N).keys()].map((i) => 'marker-' + i), 'every marker once, in order');
    const seen = new Set(events.map((e) => JSON.stringify(e)));
    assert.equal(seen.size, events.length, 'no duplicated event');
    assert.equal(events.filter((e) => e.type === 2).length, 1, 'one full snapshot');
    await tab.evaluate(() => sessiontrace.stop());
    await ctx.close();
  });

  test('attaches to a session the server started, with the recorder served by the server', async () => {
    const res = await fetch(`${st.api}/api/sessions`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'cli started', kind: 'backend' }),
    });
    assert.equal(res.status, 201);
    const created = await res.json();
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(`${page.origin}/?rec=server&backend=${encodeURIComponent(backend.origin)}` +
      `&third=${encodeURIComponent(third.origin)}&name=attach&attach=${created.short_id}`);
    const session = await tab.evaluate(() => window.stReady);
    assert.equal(session.id, created.id);
    await tab.click('#go');
    await tab.waitForSelector('#out:has-text("done world")');
    await tab.evaluate(() => sessiontrace.flush());
    const { events } = await getJson(`${st.api}/api/sessions/${created.id}/events`);
    assert.ok(events.some((e) => e.type === 2));
    const call = events.find((e) => e.type === 5 && e.data.tag === 'sessiontrace/network').data.payload;
    assert.ok(call.trace_id.startsWith(created.trace_id_prefix));
    await tab.evaluate(() => sessiontrace.stop());
    assert.equal((await getJson(`${st.api}/api/sessions/${created.id}`)).live, true, 'an attached session is left running');
    await ctx.close();
  });

  test('closing the tab flushes what is pending with keepalive', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(pageUrl('&name=close&flush=600000')); // no timed flush: only the page hide sends
    const session = await tab.evaluate(() => window.stReady);
    await tab.evaluate(() => console.error('last words before closing'));
    await tab.close({ runBeforeUnload: true });
    const events = await waitFor(async () => {
      const r = await getJson(`${st.api}/api/sessions/${session.id}/events`);
      return r.events.some((e) => e.type === 5 && e.data.payload.message === 'last words before closing') && r.events;
    }, { timeout: 10000, what: 'events sent on page hide' });
    assert.ok(events.some((e) => e.type === 4), 'meta event');
    await ctx.close();
  });
});
