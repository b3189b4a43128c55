// The sliced full snapshot (scripts/rrweb-patches.mjs), end to end in headless Chromium against the real
// server: while the recorder serializes a page of a few thousand elements in slices of 2 ms, the page keeps
// changing between the slices (texts, attributes, rows added, removed and moved across the part already
// serialized and the part not yet, a shadow root, an input); the replay by rrweb's Replayer must end with
// the very DOM the page ended with. Skips like e2e.test.js when the binary or Chromium is missing.
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
if (reason) console.log(`# sliced snapshot e2e skipped: ${reason}`);
const RRWEB = join(createRequire(import.meta.url).resolve('rrweb'), '..', 'rrweb.umd.min.cjs');

// Three sections of 300 rows (about 3,000 elements); changes() runs in the page between the snapshot's
// slices, from a seeded random generator, so that a failure can be run again.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>sliced</title>
<script src="/recorder.js"></script></head><body>
<input id="name" value="start"><div id="host"></div>
<div id="zone"></div>
<script>
const zone = document.getElementById('zone');
for (let s = 0; s < 3; s++) {
  const sec = document.createElement('section');
  sec.id = 's' + s;
  for (let i = 0; i < 300; i++) {
    const row = document.createElement('div');
    row.className = 'row';
    row.id = 'r' + s + '-' + i;
    row.innerHTML = '<b>' + i + '</b><i class="t">text ' + i + '</i><span><em>deep</em></span>';
    sec.appendChild(row);
  }
  zone.appendChild(sec);
}
document.getElementById('host').attachShadow({ mode: 'open' }).innerHTML = '<p id="inshadow">shadow 0</p>';
let seed = Number(new URLSearchParams(location.search).get('seed') || 1);
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const rows = () => zone.getElementsByClassName('row');
let made = 0;
function changes() {
  const all = rows();
  const pick = () => all[rand(all.length)];
  pick().querySelector('.t').textContent = 'changed ' + made;
  pick().classList.toggle('hot');
  pick().setAttribute('data-k', String(made));
  pick().remove();
  const row = document.createElement('div');
  row.className = 'row';
  row.id = 'new' + made;
  row.innerHTML = '<b>new</b><i class="t">added ' + made + '</i>';
  const at = pick();
  at.parentNode.insertBefore(row, at);
  // Moves: late rows to the front (into what is serialized first) and early rows to the end.
  zone.querySelector('#s0').prepend(all[all.length - 1 - rand(50)]);
  zone.querySelector('#s2').append(all[rand(50)]);
  const other = pick();
  other.querySelector('span')?.append(document.createTextNode(' more ' + made));
  document.getElementById('host').shadowRoot.getElementById('inshadow').textContent = 'shadow ' + made;
  document.getElementById('name').value = 'typed ' + made;
  made++;
}
/** The DOM the replay must show: tags, ids, classes, data-k and texts under #zone and the shadow root. */
window.shape = (doc) => {
  const walk = (n) => n.nodeType === 3 ? n.textContent
    : [n.tagName.toLowerCase(), n.id, n.className, n.getAttribute('data-k'), [...n.childNodes].map(walk)];
  const host = doc.getElementById('host');
  return JSON.stringify([walk(doc.getElementById('zone')), host.shadowRoot && walk(host.shadowRoot.firstChild)]);
};
window.run = async (api) => {
  let during = 0;
  const session = sessiontrace.start({ endpoint: api, name: 'sliced', snapshotSliceMs: 2, flushIntervalMs: 500 });
  // Changes between the slices until the snapshot is done, then a few more.
  await new Promise((resolve) => {
    let after = 0;
    const tick = () => {
      const s = sessiontrace.stats();
      if (s && !s.snapshot) during++;
      if (s && s.snapshot && ++after > 5) return resolve();
      changes();
      setTimeout(tick, 0);
    };
    tick();
  });
  await session;
  return { during, made, snapshot: sessiontrace.stats().snapshot, shape: shape(document) };
};
</script></body></html>`;

describe('the sliced full snapshot, in Chromium', { skip: reason || false }, () => {
  let st, site, browser;

  before(async () => {
    if (!existsSync(join(ROOT, 'dist', 'recorder.js'))) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    const { chromium } = await import('playwright-core');
    st = await startSessiontrace();
    site = await startHttp((req, res) => {
      const path = new URL(req.url, 'http://x').pathname;
      if (path === '/recorder.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        return res.end(readFileSync(join(ROOT, 'dist', 'recorder.js')));
      }
      if (path === '/rrweb.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript' });
        return res.end(readFileSync(RRWEB));
      }
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(path === '/replay.html'
        ? '<!doctype html><html><body><div id="root"></div><script src="/rrweb.js"></script></body></html>'
        : PAGE);
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await site?.close();
    await st?.stop();
  });

  for (const seed of [1, 2]) {
    test(`the page changes between the slices (seed ${seed}); the replay ends with the page's DOM`, async () => {
      const ctx = await browser.newContext();
      const tab = await ctx.newPage();
      const pageErrors = [];
      tab.on('pageerror', (e) => pageErrors.push(e.message));
      tab.on('console', (m) => m.type() === 'warning' && pageErrors.push(m.text()));
      await tab.goto(`${site.origin}/?seed=${seed}`);
      const page = await tab.evaluate((api) => window.run(api), st.api);
      const id = await tab.evaluate(() => sessiontrace.sessionId());
      await tab.evaluate(() => sessiontrace.stop());
      await ctx.close();
      assert.deepEqual(pageErrors, []);
      assert.ok(page.snapshot.slices >= 5, `sliced: ${JSON.stringify(page.snapshot)}`);
      assert.ok(page.during >= 3, `the page changed between slices ${page.during} times`);

      const { events } = await getJson(`${st.api}/api/sessions/${id}/events`);
      assert.equal(events.filter((e) => e.type === 2).length, 1);
      const times = events.map((e) => e.timestamp);
      assert.deepEqual(times, [...times].sort((a, b) => a - b), 'events in time order');
      const full = events.findIndex((e) => e.type === 2);
      assert.ok(events.slice(0, full).every((e) => e.type !== 3), 'no DOM event before the full snapshot');

      const rtx = await browser.newContext();
      const rtab = await rtx.newPage();
      const errors = [];
      rtab.on('pageerror', (e) => errors.push(e.message));
      rtab.on('console', (m) => ['error', 'warning'].includes(m.type()) && errors.push(m.text()));
      await rtab.goto(`${site.origin}/replay.html`);
      await rtab.evaluate((evs) => {
        const r = new rrweb.Replayer(evs, { root: document.getElementById('root'), mouseTail: false, showWarning: true });
        window.replayer = r;
        r.pause(evs.at(-1).timestamp - evs[0].timestamp + 1);
      }, events);
      const shapeSrc = PAGE.slice(PAGE.indexOf('window.shape = '), PAGE.indexOf('window.run = '));
      const replayed = await waitFor(() => rtab.evaluate(`(() => { ${shapeSrc}; const d = window.replayer.iframe.contentDocument;
        return d.getElementById('zone') && d.getElementById('host')?.shadowRoot?.firstChild ? window.shape(d) : null; })()`),
      { timeout: 10000, what: 'the replayed document' });
      await rtx.close();
      assert.deepEqual(errors, []);
      // Equal, and when not, where they part.
      if (replayed !== page.shape) {
        let i = 0;
        while (replayed[i] === page.shape[i]) i++;
        assert.fail(`replay differs from the page at ${i}: page …${page.shape.slice(Math.max(0, i - 80), i + 80)}… replay …${replayed.slice(Math.max(0, i - 80), i + 80)}…`);
      }
      // The input's last value is in the replay, masked (maskAllInputs), as one of its events.
      const inputs = events.filter((e) => e.type === 3 && e.data.source === 5);
      assert.ok(inputs.length >= 1, 'input events recorded');
    });
  }

  test('a hidden page takes the snapshot in one slice (its timers are throttled, no one waits)', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(`${site.origin}/?seed=4`);
    await tab.evaluate((api) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      return sessiontrace.start({ endpoint: api, name: 'hidden', snapshotSliceMs: 2 });
    }, st.api);
    const snap = await waitFor(() => tab.evaluate(() => sessiontrace.stats().snapshot), { what: 'the snapshot' });
    await tab.evaluate(() => sessiontrace.stop());
    await ctx.close();
    assert.equal(snap.slices, 1, JSON.stringify(snap));
  });

  test('snapshotSliceMs: false takes the snapshot in one task, as rrweb does', async () => {
    const ctx = await browser.newContext();
    const tab = await ctx.newPage();
    await tab.goto(`${site.origin}/?seed=3`);
    await tab.evaluate((api) => sessiontrace.start({ endpoint: api, name: 'one task', snapshotSliceMs: false }), st.api);
    const stats = await waitFor(() => tab.evaluate(() => sessiontrace.stats().snapshotMs && sessiontrace.stats()), { what: 'the start of DOM recording' });
    await sleep(100);
    await tab.evaluate(() => sessiontrace.stop());
    await ctx.close();
    assert.equal(stats.snapshot, null);
    assert.ok(stats.snapshotMs > 0);
  });
});
