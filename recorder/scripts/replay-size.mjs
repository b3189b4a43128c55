// Measures the replay size of a scripted session: a person types, clicks (each click makes backend
// calls), moves the mouse and scrolls for DURATION_S seconds (default 60) on the e2e test page.
// Prints raw JSON bytes/minute (as stored events) and gzip bytes/minute (as uploaded).
// Usage: node scripts/replay-size.mjs   (needs the server binary and /usr/bin/chromium, like the e2e test)
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  ROOT, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startHttp, getJson, sleep,
} from '../test/helpers.mjs';

const reason = skipReason();
if (reason) {
  console.log('skipped: ' + reason);
  process.exit(0);
}
const DURATION_S = Number(process.env.DURATION_S || 60);
const st = await startSessiontrace();
const api = await startHttp((req, res) => {
  // Backend and "third party" for the page's calls, all in one.
  res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': '*', 'Content-Type': 'application/json' });
  res.end(req.method === 'OPTIONS' ? '' : JSON.stringify({ hello: 'world', items: [1, 2, 3] }));
});
const page = await startHttp((req, res) => {
  if (req.url === '/recorder.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    return res.end(readFileSync(join(ROOT, 'dist', 'recorder.js')));
  }
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end(readFileSync(join(ROOT, 'test', 'fixtures', 'page.html')));
});
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const tab = await browser.newPage();
  await tab.goto(`${page.origin}/?st=${encodeURIComponent(st.api)}&backend=${encodeURIComponent(api.origin)}&third=${encodeURIComponent(api.origin)}`);
  const session = await tab.evaluate(() => window.stReady);
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < DURATION_S * 1000) {
    await tab.mouse.move(50 + (i * 37) % 600, 50 + (i * 53) % 400, { steps: 5 });
    await tab.type('#secret', String.fromCharCode(97 + (i % 26)));
    if (i % 4 === 0) await tab.click('#go');
    if (i % 6 === 0) await tab.mouse.wheel(0, i % 12 === 0 ? 200 : -200);
    i++;
    await sleep(400);
  }
  const minutes = (Date.now() - t0) / 60000;
  await tab.evaluate(() => sessiontrace.flush());
  const stats = await tab.evaluate(() => sessiontrace.stats());
  const { events } = await getJson(`${st.api}/api/sessions/${session.id}/events`);
  const raw = Buffer.byteLength(JSON.stringify(events));
  console.log(`scripted session: ${minutes.toFixed(2)} min, ${events.length} events, ${i} steps`);
  console.log(`replay raw JSON: ${Math.round(raw / minutes)} bytes/min (${raw} bytes)`);
  console.log(`replay gzip as uploaded: ${Math.round(stats.bytes / minutes)} bytes/min (${stats.bytes} bytes in ${stats.sent} chunks)`);
  console.log(`replay gzip of the whole stream: ${Math.round(gzipSync(JSON.stringify(events)).length / minutes)} bytes/min`);
} finally {
  await browser.close();
  await page.close();
  await api.close();
  await st.stop();
}
