// Recorder overhead (issue 21), run by bench/recorder-overhead.sh. What is measured and how:
//
// The page: a heavy page made here: a table of ~5,000 elements, a canvas animated every frame, and
// frequent DOM mutations (every 100 ms: 25 cell texts, 10 row classes, one feed row added and one removed).
// The interaction: the same script each run, for DURATION_S seconds (default 10): Playwright clicks row
// buttons (each click changes the DOM), types into an input, moves the mouse and scrolls.
// Modes: `off` (the page without the recorder), `on` (recorder, defaults), `canvas` (recorder with
// recordCanvas at 2 frames a second). Runs alternate between modes (RUNS each, default 5); figures are medians.
//
// 1. Added main-thread time: Chromium's own count of the renderer main thread's busy time, CDP
//    `Performance.getMetrics` TaskDuration (in thread CPU time: `timeDomain: 'threadTicks'`), read when the
//    recorder has started (the page and its full snapshot are done, the sliced one too) and at the end of
//    the interaction.
//    overhead = (median on − median off) / median off. On a machine shared with other work this moves by
//    ±10% from run to run, hence figure 2's share too.
// 2. The longest task the recorder causes, and its share: one more run of each mode under a CDP trace
//    (`Tracing`, categories devtools.timeline + the V8 sampling profiler), from the navigation on, so the
//    recorder's start (its full snapshot of the page) is in it. Each main-thread task (RunTask) gets the
//    profiler samples that fall in it; a sample is the recorder's when any frame of its stack comes from
//    recorder.js (layout forced by the recorder included). Printed: the task with the most recorder time
//    (with a one-task full snapshot, its start), the largest recorder time in any other task, and after
//    that task the recorder's share of busy (non-idle) main-thread samples; then the share from the
//    recorder's first task on (its start included, sliced or not) and the longest tasks with recorder
//    time in them. The profiler slows JavaScript, the page's and the recorder's alike, so these times
//    are upper bounds.
// Also printed: long tasks (> 50 ms, PerformanceObserver 'longtask') per run, and the recorder's stats.
//
// Needs the sessiontrace server binary (SESSIONTRACE_BIN, default target/debug/sessiontrace: the server's
// speed does not matter here, uploads are async) and Chromium (/usr/bin/chromium or CHROMIUM). Figures
// only; it never fails on them.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  ROOT, CHROMIUM, CHROMIUM_ARGS, skipReason, startSessiontrace, startHttp, sleep,
} from '../recorder/test/helpers.mjs';

const reason = skipReason();
if (reason) {
  console.log('skipped: ' + reason);
  process.exit(0);
}
const { chromium } = createRequire(join(ROOT, 'package.json'))('playwright-core');
const RUNS = Number(process.env.RUNS || 5);
const DURATION_S = Number(process.env.DURATION_S || 10);
const RECORDER = process.env.RECORDER_JS || join(ROOT, 'dist', 'recorder.js'); // RECORDER_JS: e.g. an unminified build

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>heavy page</title>
<style>td{padding:1px 4px}.hot{background:#fe8}#wrap{height:400px;overflow:auto}</style>
<!--REC--></head><body>
<h1>Heavy page</h1><input id="search" placeholder="search"><canvas id="cv" width="300" height="120"></canvas>
<ul id="feed"></ul><div id="wrap"><table id="t"><tbody></tbody></table></div>
<script>
const tbody = document.querySelector('#t tbody');
for (let i = 0; i < 550; i++) {
  const tr = document.createElement('tr');
  tr.innerHTML = '<td>' + i + '</td><td>item ' + i + '</td><td><span class="badge">' + (i % 7) + '</span></td>' +
    '<td><input value="v' + i + '"></td><td><button data-i="' + i + '">go</button></td>';
  tbody.appendChild(tr);
}
tbody.addEventListener('click', (e) => {
  const b = e.target.closest('button');
  if (!b) return;
  const tr = b.closest('tr');
  tr.classList.toggle('hot');
  tr.cells[1].textContent = 'clicked ' + b.dataset.i + ' at ' + Date.now();
});
const rows = tbody.rows;
let tick = 0;
setInterval(() => {
  tick++;
  for (let k = 0; k < 25; k++) rows[(tick * 31 + k * 17) % rows.length].cells[2].firstChild.textContent = String(tick + k);
  for (let k = 0; k < 10; k++) rows[(tick * 7 + k * 53) % rows.length].classList.toggle('hot');
  const feed = document.getElementById('feed');
  const li = document.createElement('li');
  li.textContent = 'event ' + tick;
  feed.appendChild(li);
  if (feed.children.length > 20) feed.firstChild.remove();
}, 100);
const g = document.getElementById('cv').getContext('2d');
(function draw(t) {
  g.fillStyle = '#fff'; g.fillRect(0, 0, 300, 120);
  g.fillStyle = '#36c';
  for (let x = 0; x < 300; x += 6) g.fillRect(x, 60 + 40 * Math.sin((x + t / 10) / 20), 5, 5);
  requestAnimationFrame(draw);
})(0);
window.elementCount = document.getElementsByTagName('*').length;
window.longTasks = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) longTasks.push(e.duration); }).observe({ type: 'longtask' });
</script></body></html>`;

const st = await startSessiontrace();
const site = await startHttp((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/recorder.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    return res.end(readFileSync(RECORDER));
  }
  const mode = url.searchParams.get('mode');
  const rec = mode === 'off' ? '<script>window.stReady = Promise.resolve(null)</script>'
    : `<script src="/recorder.js"></script><script>window.stReady = new Promise((r) => addEventListener('load', r)).then(() =>
        sessiontrace.start({ endpoint: ${JSON.stringify(st.api)}, name: 'overhead ${mode}', recordCanvas: ${mode === 'canvas'} }))</script>`;
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end(PAGE.replace('<!--REC-->', rec));
});
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });

/** The scripted interaction: the same sequence of actions, spread over DURATION_S seconds. */
async function interact(tab) {
  const end = Date.now() + DURATION_S * 1000;
  let i = 0;
  while (Date.now() < end) {
    i++;
    await tab.click(`button[data-i="${(i * 37) % 40}"]`);
    await tab.type('#search', 'ab', { delay: 30 });
    await tab.mouse.move(100 + (i % 10) * 30, 200 + (i % 5) * 20, { steps: 5 });
    await tab.mouse.wheel(0, i % 2 ? 300 : -300);
    await sleep(200);
  }
  return i;
}

async function taskSeconds(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  return metrics.find((m) => m.name === 'TaskDuration').value;
}

async function measuredRun(mode) {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const cdp = await ctx.newCDPSession(tab);
  const warnings = [];
  tab.on('console', (m) => m.text().startsWith('[sessiontrace]') && warnings.push(m.text()));
  await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
  await tab.goto(`${site.origin}/?mode=${mode}`);
  await tab.evaluate(() => window.stReady);
  // A sliced full snapshot goes on after start() resolved: measure from its end, as with a one-task one.
  await tab.waitForFunction(() => !window.sessiontrace || sessiontrace.stats()?.snapshot !== null, null, { timeout: 30000 });
  await sleep(500);
  const before = await taskSeconds(cdp);
  const longBefore = await tab.evaluate(() => longTasks.length);
  const actions = await interact(tab);
  const after = await taskSeconds(cdp);
  const info = await tab.evaluate(() => ({
    elements: elementCount, longTasks: longTasks.slice(), stats: window.sessiontrace ? sessiontrace.stats() : null,
  }));
  await ctx.close();
  return { mode, ms: (after - before) * 1000, actions, warnings, longTasks: info.longTasks.slice(longBefore), elements: info.elements, stats: info.stats };
}

/** One traced run: per main-thread task, its duration and the recorder's sampled time in it. */
async function tracedRun(mode) {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const cdp = await ctx.newCDPSession(tab);
  const chunks = [];
  cdp.on('Tracing.dataCollected', (d) => chunks.push(...d.value));
  const done = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
  await cdp.send('Tracing.start', {
    transferMode: 'ReportEvents',
    traceConfig: {
      includedCategories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute',
        'disabled-by-default-v8.cpu_profiler'],
    },
  });
  await tab.goto(`${site.origin}/?mode=${mode}`);
  await tab.evaluate(() => window.stReady);
  await sleep(500);
  await interact(tab);
  await cdp.send('Tracing.end');
  await done;
  await ctx.close();
  if (process.env.TRACE_DIR) writeFileSync(join(process.env.TRACE_DIR, `trace-${mode}.json`), JSON.stringify({ traceEvents: chunks }));
  return analyze(chunks, mode);
}

function analyze(events, mode) {
  // The page's renderer: the process whose profiled JavaScript came from our site; its main thread is
  // its CrRendererMain. (Other renderers, e.g. a new-tab page, are in the trace too.)
  let pid = null;
  for (const e of events) {
    if (e.name !== 'ProfileChunk') continue;
    if ((e.args.data.cpuProfile?.nodes || []).some((n) => (n.callFrame.url || '').startsWith(site.origin))) { pid = String(e.pid); break; }
  }
  const main = events.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.args.name === 'CrRendererMain' && String(e.pid) === pid);
  const tid = String(main?.tid);
  const list = events.filter((e) => e.ph === 'X' && e.name === 'RunTask' && String(e.pid) === pid && String(e.tid) === tid)
    .map((e) => ({ start: e.ts, end: e.ts + (e.dur || 0), dur: (e.dur || 0) / 1000, recorder: 0 }));
  // CPU profile of that thread: a Profile event on it, then ProfileChunk events with the same id (sent
  // from the profiler's own thread): node tree, samples, time deltas. Workers have profiles of their own.
  const profiles = new Map(); // id -> {t, nodes}
  const samples = [];
  for (const e of events) {
    if (String(e.pid) !== pid) continue;
    if (e.name === 'Profile' && String(e.tid) === tid) profiles.set(e.id, { t: e.args.data.startTime, nodes: new Map() });
    if (e.name !== 'ProfileChunk' || !profiles.has(e.id)) continue;
    const prof = profiles.get(e.id);
    const p = e.args.data.cpuProfile || {};
    for (const n of p.nodes || []) prof.nodes.set(n.id, { parent: n.parent, url: n.callFrame.url || '' });
    const deltas = e.args.data.timeDeltas || [];
    (p.samples || []).forEach((id, i) => { prof.t += deltas[i] || 0; samples.push([prof.t, prof.nodes, id]); });
  }
  const fromRecorder = (nodes, id) => {
    for (let n = nodes.get(id), depth = 0; n && depth < 500; n = nodes.get(n.parent), depth++) {
      if (n.url.endsWith('/recorder.js')) return true;
    }
    return false;
  };
  list.sort((a, b) => a.start - b.start);
  samples.sort((a, b) => a[0] - b[0]);
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    const [ts, nodes, id] = samples[i];
    const gap = i + 1 < samples.length ? Math.min(samples[i + 1][0] - ts, 1000) : 100; // µs this sample stands for
    while (j < list.length && list[j].end < ts) j++;
    if (j < list.length && list[j].start <= ts) {
      const mine = fromRecorder(nodes, id);
      if (mine) list[j].recorder += gap / 1000;
      samples[i].push(list[j], mine, nodes.get(id)?.fn !== '(idle)');
    }
  }
  // The recorder's share of the main thread's busy time after its start (the task of its first full
  // snapshot excluded): profiler-slowed, but both sides alike, and another process's load does not count.
  const startTask = list.reduce((a, b) => (b.recorder > a.recorder ? b : a), list[0]);
  let busy = 0;
  let mine = 0;
  for (const x of samples) {
    if (x.length < 6 || x[3] === startTask || x[3].start < startTask.start) continue;
    if (x[5]) busy++;
    if (x[4]) mine++;
  }
  // The same from the recorder's first task on, its start (the full snapshot, sliced or not) included.
  const firstTask = list.find((x) => x.recorder > 0) || list[0];
  let busyAll = 0;
  let mineAll = 0;
  for (const x of samples) {
    if (x.length < 6 || x[3].start < firstTask.start) continue;
    if (x[5]) busyAll++;
    if (x[4]) mineAll++;
  }
  const byRecorder = [...list].sort((a, b) => b.recorder - a.recorder);
  const longest = [...list].sort((a, b) => b.dur - a.dur);
  return {
    mode,
    samples: samples.length,
    share: busy ? mine / busy : 0,
    shareAll: busyAll ? mineAll / busyAll : 0,
    longestWithRecorder: [...list].filter((x) => x.recorder > 0).sort((a, b) => b.dur - a.dur).slice(0, 3)
      .map((x) => ({ task_ms: +x.dur.toFixed(1), recorder_ms: +x.recorder.toFixed(1) })),
    otherTasks: list.filter((x) => x !== startTask).map((x) => x.recorder),
    startTask: { task_ms: +startTask.dur.toFixed(1), recorder_ms: +startTask.recorder.toFixed(1) },
    recorderMs: list.reduce((s, x) => s + x.recorder, 0),
    topRecorderTasks: byRecorder.slice(0, 3).map((x) => ({ task_ms: +x.dur.toFixed(1), recorder_ms: +x.recorder.toFixed(1) })),
    longestTasks: longest.slice(0, 3).map((x) => ({ task_ms: +x.dur.toFixed(1), recorder_ms: +x.recorder.toFixed(1) })),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const modes = ['off', 'on', 'canvas'];
const results = Object.fromEntries(modes.map((m) => [m, []]));
for (let r = 0; r < RUNS; r++) {
  for (const mode of modes) {
    const run = await measuredRun(mode);
    results[mode].push(run);
    console.log(`run ${r + 1}/${RUNS} ${mode.padEnd(6)} main thread ${run.ms.toFixed(0)} ms in ${DURATION_S} s (${run.actions} action rounds, ` +
      `${run.elements} elements), long tasks ${JSON.stringify(run.longTasks.map(Math.round))}` +
      (run.stats ? `, start task ${run.stats.snapshotMs} ms` + (run.stats.snapshot ? ` + full snapshot in ${run.stats.snapshot.slices} slices ` +
        `(longest ${run.stats.snapshot.longestSliceMs} ms, done in ${run.stats.snapshot.totalMs} ms)` : ' (the whole full snapshot)') + `, pauses ${run.stats.pauses}, chunks ${run.stats.sent} (${run.stats.gzipInWorker} gzipped in the worker)` : ''));
    for (const w of run.warnings) console.log('    ' + w);
  }
}
const traced = [];
for (const mode of modes) traced.push(await tracedRun(mode));
await browser.close();
await site.close();
await st.stop();

if (RUNS > 0) {
  const off = median(results.off.map((x) => x.ms));
  console.log('\nRecorder overhead on a heavy page (%d elements, mutations every 100 ms, a canvas drawn every frame), %d s scripted interaction, median of %d runs:',
    results.off[0].elements, DURATION_S, RUNS);
  console.log(`  without the recorder: ${off.toFixed(0)} ms of main-thread time`);
  for (const mode of ['on', 'canvas']) {
    const m = median(results[mode].map((x) => x.ms));
    const snapshots = results[mode].map((x) => x.stats.snapshotMs);
    const label = mode === 'on' ? 'recorder (defaults)' : 'recorder + canvas at 2 fps';
    console.log(`  ${label}: ${m.toFixed(0)} ms → +${(m - off).toFixed(0)} ms, ${(((m - off) / off) * 100).toFixed(1)}% added main-thread time` +
      ` (runs: ${results[mode].map((x) => ((x.ms - off) / off * 100).toFixed(1) + '%').join(', ')})`);
    const long = results[mode].flatMap((x) => x.longTasks);
    const longOff = results.off.flatMap((x) => x.longTasks);
    console.log(`    long tasks (>50 ms) during the interaction, all runs: ${long.length} (max ${Math.round(Math.max(0, ...long))} ms); without the recorder: ${longOff.length} (max ${Math.round(Math.max(0, ...longOff))} ms)`);
    console.log(`    the task that starts DOM recording: median ${median(snapshots).toFixed(0)} ms (${snapshots.join(', ')})`);
    const sliced = results[mode].map((x) => x.stats.snapshot).filter(Boolean);
    if (sliced.length) {
      const longestSlices = sliced.map((x) => x.longestSliceMs);
      console.log(`    the full snapshot after it, sliced: longest slice median ${median(longestSlices).toFixed(0)} ms (${longestSlices.join(', ')}), ` +
        `${median(sliced.map((x) => x.slices))} slices, done in ${median(sliced.map((x) => x.totalMs)).toFixed(0)} ms (medians)`);
    }
  }
}
console.log('Traced runs (CDP Tracing + V8 sampling profiler, from the navigation on; recorder_ms = sampled time in recorder.js frames):');
for (const t of traced) {
  console.log(`  ${t.mode.padEnd(6)} recorder total ${t.recorderMs.toFixed(0)} ms; tasks with the most recorder time ${JSON.stringify(t.topRecorderTasks)}; ` +
    `longest tasks ${JSON.stringify(t.longestTasks)}`);
  if (t.mode !== 'off') {
    console.log(`         after the start task ${JSON.stringify(t.startTask)}: the recorder's share of busy main-thread samples ` +
      `${(t.share * 100).toFixed(1)}%, i.e. ${(t.share / (1 - t.share) * 100).toFixed(1)}% added to the page's own time; ` +
      `largest recorder time in any other task ${Math.max(0, ...t.otherTasks).toFixed(1)} ms`);
    console.log(`         from the recorder's first task on (its start included): share ${(t.shareAll * 100).toFixed(1)}%, ` +
      `i.e. ${(t.shareAll / (1 - t.shareAll) * 100).toFixed(1)}% added; longest tasks with recorder time ${JSON.stringify(t.longestWithRecorder)}`);
  }
}
const gz = (p) => gzipSync(readFileSync(p)).length;
console.log(`Bundle: dist/recorder.js ${(gz(RECORDER) / 1024).toFixed(1)} KiB gzip; dist/index.js ${(gz(join(ROOT, 'dist', 'index.js')) / 1024).toFixed(1)} KiB gzip (its dependencies stay imports)`);
console.log(`Reproduce: bench/recorder-overhead.sh   (RUNS=${RUNS} DURATION_S=${DURATION_S}; SESSIONTRACE_BIN, CHROMIUM)`);
