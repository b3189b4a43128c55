// Unit tests of the recorder's budget (src/guard.js) and of the off-main-thread gzip's fallback in the
// uploader: plain node with a fake clock, no browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { Guard, mutationCount, DEFAULT_BUDGET } from '../src/guard.js';
import { Uploader } from '../src/uploader.js';

const mutation = (n) => ({ type: 3, data: { source: 0, adds: [], removes: [], texts: Array(n).fill({}), attributes: [] } });

function fakeGuard(budget) {
  const clock = { t: 0 };
  const timers = [];
  const calls = [];
  const guard = new Guard({
    budget,
    now: () => clock.t,
    setTimeout: (fn, ms) => timers.push({ fn, at: clock.t + ms }),
    pause: (info) => calls.push(['pause', info]),
    resume: () => calls.push(['resume']),
  });
  const advance = (ms) => {
    clock.t += ms;
    for (const tm of timers.splice(0)) {
      if (tm.at <= clock.t) tm.fn();
      else timers.push(tm);
    }
  };
  return { guard, clock, calls, advance };
}

test('mutationCount counts the records of DOM mutation events only', () => {
  assert.equal(mutationCount({ type: 3, data: { source: 0, adds: [1, 2], removes: [3], texts: [4], attributes: [5, 6] } }), 6);
  assert.equal(mutationCount({ type: 3, data: { source: 1, positions: [1, 2] } }), 0);
  assert.equal(mutationCount({ type: 2, data: {} }), 0);
});

test('guard: under budget nothing happens; over the mutation budget it pauses once, then resumes', () => {
  const { guard, calls, advance } = fakeGuard({ mutationsPerSecond: 1000, pauseMs: 2000 });
  // 900 records a second for 3 seconds, spread over 10 events a second: under budget.
  for (let i = 0; i < 30; i++) { assert.equal(guard.observe(mutation(90), 0.1), false); advance(100); }
  assert.deepEqual(calls, []);
  advance(1000);
  // 1,001 within one second: over.
  for (let i = 0; i < 10; i++) guard.observe(mutation(100), 0.1);
  assert.equal(guard.observe(mutation(1), 0.1), true);
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0][1], {
    reason: 'mutations', budget: { mutations_per_second: 1000 }, observed: { mutations_per_second: 1001 }, pause_ms: 2000,
  });
  // Paused: events are not even counted.
  assert.equal(guard.observe(mutation(5000), 1), false);
  advance(1999);
  assert.equal(calls.length, 1);
  advance(1);
  assert.deepEqual(calls[1], ['resume']);
  assert.equal(guard.trips, 1);
});

test('guard: the recorder-time budget; a new trip right after a resume doubles the pause, up to the maximum', () => {
  const { guard, calls, advance } = fakeGuard({ recorderMsPerSecond: 50, pauseMs: 1000, maxPauseMs: 3000 });
  const pauses = () => calls.filter((c) => c[0] === 'pause').map((c) => c[1].pause_ms);
  for (let i = 0; i < 5; i++) guard.observe({ type: 3, data: { source: 2 } }, 10);
  assert.deepEqual(pauses(), []); // exactly 50 ms is within the budget
  guard.observe({ type: 3, data: { source: 2 } }, 0.5);
  assert.equal(calls[0][1].reason, 'recorder_time');
  assert.deepEqual(calls[0][1].observed, { recorder_ms_per_second: 50.5 });
  for (const expected of [2000, 3000, 3000]) {
    advance(5000); // resumed
    guard.observe({ type: 3, data: { source: 0, texts: [] } }, 60); // trips at once
    assert.equal(pauses().at(-1), expected);
  }
  // A long quiet spell after a resume: back to the first pause.
  advance(5000);
  advance(10000);
  guard.observe({ type: 5 }, 60);
  assert.equal(pauses().at(-1), 1000);
});

test('guard: old samples leave the one-second window; budget false turns the guard off', () => {
  const { guard, calls, advance } = fakeGuard({ mutationsPerSecond: 100 });
  for (let i = 0; i < 20; i++) { guard.observe(mutation(40), 0); advance(600); } // 80 in any second, 800 in all
  assert.deepEqual(calls, []);
  const off = fakeGuard(false);
  assert.equal(off.guard.observe(mutation(DEFAULT_BUDGET.mutationsPerSecond * 10), 1e4), false);
  assert.deepEqual(off.calls, []);
});

test('uploader: a failing off-main-thread gzip falls back to the main thread, and is not asked again', async () => {
  const bodies = [];
  const fetch = async (url, init) => {
    bodies.push(gunzipSync(Buffer.from(init.body)).toString());
    return { ok: true, status: 200 };
  };
  let asked = 0;
  const up = new Uploader({
    url: 'http://127.0.0.1:1/e', fetch, storageKey: 'k',
    gzipOffThread: async () => { asked++; throw new Error('blocked by CSP'); },
  });
  up.add({ type: 3, timestamp: 1, data: {} });
  await up.flush();
  up.add({ type: 3, timestamp: 2, data: {} });
  await up.flush();
  assert.equal(asked, 1);
  assert.equal(up.stats.gzipInWorker, 0);
  assert.deepEqual(bodies.map((b) => JSON.parse(b).seq), [0, 1]);

  const worker = new Uploader({
    url: 'http://127.0.0.1:1/e', fetch, storageKey: 'k',
    gzipOffThread: async (text) => new Uint8Array(await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer()),
  });
  worker.add({ type: 3, timestamp: 3, data: { w: 1 } });
  await worker.flush();
  assert.equal(worker.stats.gzipInWorker, 1);
  assert.equal(JSON.parse(bodies.at(-1)).events[0].data.w, 1);
});

test('uploader: a full snapshot is serialized when the chunk is cut, not when rrweb emits it', async () => {
  let serialized = 0;
  const snapshot = { type: 2, timestamp: 1, data: { node: {} }, toJSON() { serialized++; return { type: 2, timestamp: 1, data: { node: {} } }; } };
  const bodies = [];
  const up = new Uploader({ url: 'http://127.0.0.1:1/e', fetch: async (u, init) => { bodies.push(init.body); return { ok: true, status: 200 }; }, storageKey: 'k', compress: false });
  up.add({ type: 4, timestamp: 0, data: {} });
  assert.equal(up.add(snapshot), false);
  up.add({ type: 3, timestamp: 2, data: { source: 0 } });
  assert.equal(serialized, 0);
  await up.flush();
  assert.equal(serialized, 1);
  assert.deepEqual(JSON.parse(bodies[0]).events.map((e) => e.type), [4, 2, 3]);
});
