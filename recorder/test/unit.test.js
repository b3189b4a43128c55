// Unit tests (plain node, no browser): masking, session trace ids, propagateTo matching, chunking and
// the uploader's retry / persistence / keepalive behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import {
  MASK, maskHeaders, maskBody, captureBody, truncate, isStreamingContentType, parseRawHeaders,
} from '../src/mask.js';
import { sessionPrefix, sessionTraceId, spanId, SessionIdGenerator, randomHex } from '../src/ids.js';
import { compilePropagateTo, shouldPropagate, serializePropagateTo, deserializePropagateTo } from '../src/propagate.js';
import {
  splitEvents, chunkBody, Uploader, KEEPALIVE_BUDGET_BYTES, KEEPALIVE_CHUNK_BYTES,
} from '../src/uploader.js';

test('sensitive headers are masked, case-insensitively, names lowercased', () => {
  const h = maskHeaders({ Authorization: 'Bearer x', 'Content-Type': 'application/json', Cookie: 'a=b',
    'X-API-Key': 'k', 'x-auth-token': 't', 'Proxy-Authorization': 'p', 'Set-Cookie': 's' });
  assert.deepEqual(h, { authorization: MASK, 'content-type': 'application/json', cookie: MASK,
    'x-api-key': MASK, 'x-auth-token': MASK, 'proxy-authorization': MASK, 'set-cookie': MASK });
  assert.deepEqual(maskHeaders(new Headers({ authorization: 'x', accept: '*/*' })), { authorization: MASK, accept: '*/*' });
  assert.deepEqual(maskHeaders([['X-Custom', 'v']], ['x-custom']), { 'x-custom': MASK });
  assert.deepEqual(parseRawHeaders('content-type: text/plain\r\nx-trace-id: abc\r\n'),
    [['content-type', 'text/plain'], ['x-trace-id', 'abc']]);
});

test('JSON body keys are masked at any depth, case-insensitively; other bodies kept', () => {
  const body = JSON.stringify({ user: 'ann', Password: 'hunter2', nested: { deeper: [{ access_token: 'a', ok: 1 }] },
    card: { CVV: 123, card_number: '4111' }, ssn: null, apiKey: 'k' });
  const m = JSON.parse(maskBody(body));
  assert.equal(m.user, 'ann');
  assert.equal(m.Password, MASK);
  assert.equal(m.nested.deeper[0].access_token, MASK);
  assert.equal(m.nested.deeper[0].ok, 1);
  assert.equal(m.card.CVV, MASK);
  assert.equal(m.card.card_number, MASK);
  assert.equal(m.ssn, MASK);
  assert.equal(m.apiKey, MASK);
  for (const k of ['passwd', 'secret', 'token', 'refresh_token', 'id_token', 'api_key', 'authorization', 'credit_card']) {
    assert.equal(JSON.parse(maskBody(JSON.stringify({ [k]: 'v' })))[k], MASK, k);
  }
  assert.equal(JSON.parse(maskBody('{"pin":"1"}', ['PIN'])).pin, MASK);
  assert.equal(maskBody('password=hunter2 not json'), 'password=hunter2 not json');
  assert.equal(maskBody('{broken'), '{broken');
});

test('bodies are cut at 64 KiB with a truncation flag, after masking', () => {
  const small = captureBody('{"a":1}');
  assert.deepEqual(small, { body: '{"a":1}', truncated: false });
  const big = captureBody(JSON.stringify({ token: 'secret', pad: 'x'.repeat(70000) }));
  assert.equal(big.truncated, true);
  assert.equal(Buffer.byteLength(big.body), 64 * 1024);
  assert.ok(big.body.startsWith('{"token":"***MASKED***"'));
  const utf = truncate('é'.repeat(10), 5); // 2 bytes each: never half a character
  assert.deepEqual(utf, { body: 'éé', truncated: true });
});

test('streaming content types are recognized', () => {
  for (const ct of ['text/event-stream', 'application/x-ndjson', 'application/grpc-web+proto', 'application/octet-stream']) {
    assert.ok(isStreamingContentType(ct), ct);
  }
  assert.ok(!isStreamingContentType('application/json; charset=utf-8'));
  assert.ok(!isStreamingContentType(null));
});

test('session trace ids: prefix + short_id + 18 random hex', () => {
  assert.equal(sessionPrefix({ short_id: '1a2b3c4d', kind: 'manual' }), 'debdeb1a2b3c4d');
  assert.equal(sessionPrefix({ short_id: '1a2b3c4d', kind: 'backend' }), 'debdeb1a2b3c4d');
  assert.equal(sessionPrefix({ short_id: '1a2b3c4d', kind: 'continuous' }), 'cdbcdb1a2b3c4d');
  assert.equal(sessionPrefix({ short_id: '1a2b3c4d', trace_id_prefix: 'cdbcdb1a2b3c4d' }), 'cdbcdb1a2b3c4d');
  assert.throws(() => sessionPrefix({ short_id: 'XYZ' }));
  const ids = new Set();
  for (let i = 0; i < 1000; i++) {
    const t = sessionTraceId('debdeb1a2b3c4d');
    assert.match(t, /^debdeb1a2b3c4d[0-9a-f]{18}$/);
    ids.add(t);
    assert.match(spanId(), /^[0-9a-f]{16}$/);
  }
  assert.equal(ids.size, 1000);
  assert.match(randomHex(7), /^[0-9a-f]{7}$/);
  let prefix = 'debdeb00000001';
  const gen = new SessionIdGenerator(() => prefix);
  assert.ok(gen.generateTraceId().startsWith('debdeb00000001'));
  prefix = null; // no session: a plain random id
  assert.match(gen.generateTraceId(), /^[0-9a-f]{32}$/);
  assert.match(gen.generateSpanId(), /^[0-9a-f]{16}$/);
});

test('propagateTo: same origin always, listed origins/prefixes/RegExps only', () => {
  const page = 'http://127.0.0.1:3000';
  const pats = compilePropagateTo(['http://127.0.0.1:4000', 'https://api.example.com/v1/', /^https:\/\/[^/]+\.corp\.test\//]);
  const yes = (u) => assert.ok(shouldPropagate(u, page, pats), u);
  const no = (u) => assert.ok(!shouldPropagate(u, page, pats), u);
  yes('/api/x');
  yes('http://127.0.0.1:3000/api');
  yes('http://127.0.0.1:4000/orders');
  yes('http://127.0.0.1:4000');
  yes('http://127.0.0.1:4000?q=1');
  no('http://127.0.0.1:40000/orders'); // an origin is not a string prefix
  no('http://127.0.0.1:5000/');
  yes('https://api.example.com/v1/users');
  no('https://api.example.com/v2/users');
  yes('https://svc.corp.test/x');
  no('https://evil.test/?https://svc.corp.test/');
  no('https://cdn.thirdparty.test/lib.js');
  assert.deepEqual(compilePropagateTo(undefined), []);
  assert.equal(compilePropagateTo('http://a.test:1/').length, 1);
  assert.ok(shouldPropagate('http://a.test:1/x', page, compilePropagateTo('http://a.test:1/')));
  // The RegExps are what the OTel instrumentations get: they must match absolute URLs the same way.
  assert.ok(pats[0].test('http://127.0.0.1:4000/orders'));
  assert.ok(!pats[0].test('http://127.0.0.1:40000/orders'));
  const round = deserializePropagateTo(JSON.parse(JSON.stringify(serializePropagateTo(['http://x.test', /a+b/gi]))));
  assert.equal(round[0], 'http://x.test');
  assert.ok(round[1] instanceof RegExp && round[1].source === 'a+b' && round[1].flags === 'gi');
});

test('splitEvents respects byte and count limits; an oversize event gets its own chunk', () => {
  const ev = (n) => 'x'.repeat(n);
  assert.deepEqual(splitEvents([], 100), []);
  const groups = splitEvents([ev(40), ev(40), ev(40), ev(500), ev(10)], 100);
  assert.deepEqual(groups.map((g) => g.map((s) => s.length)), [[40, 40], [40], [500], [10]]);
  assert.deepEqual(splitEvents(['a', 'b', 'c', 'd', 'e'], 1e6, 2).map((g) => g.length), [2, 2, 1]);
  assert.deepEqual(JSON.parse(chunkBody(7, ['{"type":2}', '{"type":3}'])), { seq: 7, events: [{ type: 2 }, { type: 3 }] });
});

// ---- Uploader with a fake server and storage ----

class MemoryStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

/** A fake events endpoint, idempotent on seq; `failFirst` calls throw like an unreachable server. */
function fakeServer({ failFirst = 0, status } = {}) {
  const srv = { chunks: new Map(), calls: [], failures: 0 };
  srv.fetch = async (url, init) => {
    srv.calls.push(init);
    if (srv.failures < failFirst) {
      srv.failures++;
      throw new TypeError('Failed to fetch');
    }
    if (status) return { ok: false, status };
    let text = init.body;
    if (init.headers['Content-Encoding'] === 'gzip') text = gunzipSync(Buffer.from(init.body)).toString();
    const { seq, events } = JSON.parse(text);
    const stored = !srv.chunks.has(seq);
    if (stored) srv.chunks.set(seq, events);
    return { ok: true, status: 200, json: async () => ({ seq, stored }) };
  };
  srv.allEvents = () => [...srv.chunks.keys()].sort((a, b) => a - b).flatMap((k) => srv.chunks.get(k));
  return srv;
}

const mkUploader = (srv, storage, extra = {}) => new Uploader({
  url: 'http://127.0.0.1:1/api/sessions/s/events', fetch: srv.fetch, storage, storageKey: 'k', retryBaseMs: 5, ...extra,
});

test('uploader: gzip chunks in seq order, retried with backoff until the server is back, none lost', async () => {
  const srv = fakeServer({ failFirst: 3 });
  const up = mkUploader(srv, new MemoryStorage());
  for (let i = 0; i < 10; i++) up.add({ type: 3, timestamp: i, data: { i } });
  const p = up.flush();
  for (let i = 10; i < 20; i++) up.add({ type: 3, timestamp: i, data: { i } });
  up.flush();
  await p;
  await up.flush();
  assert.equal(srv.failures, 3);
  assert.equal(up.stats.retries, 3);
  assert.deepEqual(srv.allEvents().map((e) => e.data.i), [...Array(20).keys()]);
  assert.deepEqual([...srv.chunks.keys()], [0, 1]);
  assert.equal(srv.calls[0].headers['Content-Encoding'], 'gzip');
  assert.equal(up.outbox.length, 0);
});

test('uploader: a reload continues seq numbers and re-sends the unacknowledged outbox', async () => {
  const storage = new MemoryStorage();
  const down = fakeServer({ failFirst: 1e9 });
  const first = mkUploader(down, storage, { retryBaseMs: 1e6 });
  first.add({ type: 2, timestamp: 1 });
  first.cut();
  first.add({ type: 3, timestamp: 2 });
  first.cut();
  first.stopped = true; // the page goes away with both chunks unacknowledged
  const srv = fakeServer();
  const second = mkUploader(srv, storage);
  assert.equal(second.nextSeq, 2);
  assert.equal(second.outbox.length, 2);
  second.add({ type: 3, timestamp: 3 });
  await second.flush();
  assert.deepEqual([...srv.chunks.keys()], [0, 1, 2]);
  assert.deepEqual(srv.allEvents().map((e) => e.timestamp), [1, 2, 3]);
  assert.equal(JSON.parse(storage.getItem('k')).outbox.length, 0);
  // Re-sending an acknowledged chunk is harmless: the server keeps one copy.
  await second.send({ seq: 0, body: chunkBody(0, ['{"type":2,"timestamp":1}']) }, false);
  assert.deepEqual(srv.allEvents().map((e) => e.timestamp), [1, 2, 3]);
});

test('uploader: the periodic flush persists its chunk in a task of its own; a page hide at once', async () => {
  const storage = new MemoryStorage();
  const up = mkUploader({ fetch: () => new Promise(() => {}) }, storage, { compress: false }); // never answers
  up.add({ type: 2, timestamp: 1 });
  up.flush();
  assert.equal(storage.getItem('k'), null, 'not in the task that serialized the events');
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(JSON.parse(storage.getItem('k')).outbox.length, 1);
  up.add({ type: 3, timestamp: 2 });
  up.flushOnHide();
  assert.equal(JSON.parse(storage.getItem('k')).outbox.length, 2);
});

test('uploader: a 4xx rejection is dropped (not retried forever), a 5xx is retried', async () => {
  const drops = [];
  const bad = fakeServer({ status: 413 });
  const up = mkUploader(bad, new MemoryStorage(), { onDrop: (seq, st) => drops.push([seq, st]) });
  up.add({ type: 3 });
  await up.flush();
  assert.deepEqual(drops, [[0, 413]]);
  const srv = fakeServer();
  let n = 0;
  const flaky = async (u, i) => (n++ < 2 ? { ok: false, status: 503 } : srv.fetch(u, i));
  const up2 = mkUploader({ fetch: flaky }, new MemoryStorage());
  up2.add({ type: 3, timestamp: 9 });
  await up2.flush();
  assert.deepEqual(srv.allEvents(), [{ type: 3, timestamp: 9 }]);
});

test('uploader: page hide sends small keepalive chunks within the budget and keeps the rest', async () => {
  const storage = new MemoryStorage();
  const srv = fakeServer();
  const up = mkUploader(srv, storage);
  const big = { type: 2, data: 'x'.repeat(200 * 1024) }; // a full snapshot too large for keepalive
  up.add(big);
  for (let i = 0; i < 30; i++) up.add({ type: 3, data: 'y'.repeat(4000), i });
  up.flushOnHide();
  const sent = srv.calls.filter((c) => c.keepalive);
  assert.ok(sent.length > 0);
  const bytes = sent.reduce((n, c) => n + Buffer.byteLength(c.body), 0);
  assert.ok(bytes <= KEEPALIVE_BUDGET_BYTES, `keepalive bytes ${bytes}`);
  for (const c of sent) {
    assert.equal(c.headers['Content-Type'], 'text/plain');
    assert.ok(Buffer.byteLength(c.body) <= KEEPALIVE_CHUNK_BYTES + 8 * 1024);
  }
  // Everything is in storage (the big snapshot and what did not fit) for the next load.
  const saved = JSON.parse(storage.getItem('k'));
  const savedEvents = saved.outbox.flatMap((c) => JSON.parse(c.body).events);
  assert.equal(savedEvents.length, 31);
  up.flushOnHide(); // a second hide event does not re-send what is in flight
  assert.equal(srv.calls.filter((c) => c.keepalive).length, sent.length);
  await new Promise((r) => setTimeout(r, 10));
  const next = mkUploader(srv, storage); // next load sends the rest
  await next.flush();
  assert.equal(srv.allEvents().length, 31);
  assert.equal(srv.allEvents()[0].type, 2);
});

test('uploader: falls back to localStorage when sessionStorage is full', () => {
  const full = { getItem: () => null, setItem: () => { throw new Error('QuotaExceededError'); }, removeItem() {} };
  const local = new MemoryStorage();
  const up = new Uploader({ url: 'x', fetch: async () => ({ ok: true }), storage: full, fallbackStorage: local, storageKey: 'k' });
  up.add({ type: 3 });
  up.cut();
  assert.equal(JSON.parse(local.getItem('k')).outbox.length, 1);
  const again = new Uploader({ url: 'x', fetch: async () => ({ ok: true }), storage: full, fallbackStorage: local, storageKey: 'k' });
  assert.equal(again.nextSeq, 1);
});

test('root spans carry the session capture tracestate unless it is the default', async () => {
  const { SessionSampler } = await import('../src/tracing.js');
  const { ROOT_CONTEXT, trace: api } = await import('@opentelemetry/api');
  const narrowed = new SessionSampler('sessiontrace=h');
  const root = narrowed.shouldSample(ROOT_CONTEXT);
  assert.equal(root.decision, 2);
  assert.equal(root.traceState.serialize(), 'sessiontrace=h');
  const parent = api.setSpanContext(ROOT_CONTEXT, { traceId: 'debdeb01020304aaaaaaaaaaaaaaaaaa', spanId: '0102030405060708', traceFlags: 1 });
  assert.equal(narrowed.shouldSample(parent).traceState, undefined, 'children inherit from their parent');
  assert.equal(new SessionSampler('sessiontrace=hb').shouldSample(ROOT_CONTEXT).traceState, undefined);
});

test('key: every upload carries Authorization: Bearer, compressed, plain and keepalive alike', async () => {
  const { authHeaders } = await import('../src/key.js');
  const headers = authHeaders('st_ing_abc');
  assert.deepEqual(headers, { Authorization: 'Bearer st_ing_abc' });
  assert.deepEqual(authHeaders(undefined), {}, 'no key, no header');
  for (const compress of [true, false]) {
    const srv = fakeServer();
    const up = mkUploader(srv, new MemoryStorage(), { headers, compress });
    up.add({ type: 3, timestamp: 1 });
    await up.flush();
    assert.equal(srv.calls[0].headers.Authorization, 'Bearer st_ing_abc');
    assert.equal(srv.calls[0].headers['Content-Type'], 'application/json');
    assert.equal(srv.allEvents().length, 1);
  }
  const srv = fakeServer();
  const up = mkUploader(srv, new MemoryStorage(), { headers });
  up.add({ type: 3, timestamp: 2 });
  up.flushOnHide();
  const sent = srv.calls.filter((c) => c.keepalive);
  assert.equal(sent.length, 1);
  assert.equal(sent[0].headers.Authorization, 'Bearer st_ing_abc');
  assert.equal(sent[0].headers['Content-Type'], 'text/plain');
  // Without a key nothing changes: no Authorization header at all.
  const plain = fakeServer();
  const up2 = mkUploader(plain, new MemoryStorage());
  up2.add({ type: 3 });
  await up2.flush();
  assert.equal('Authorization' in plain.calls[0].headers, false);
});

test('key: attaching to a session makes no read; it needs the short_id', async () => {
  const { attachWithoutRead } = await import('../src/key.js');
  const s = attachWithoutRead('0A1B2C3D', { capture: { headers: true } });
  assert.deepEqual(s, { id: '0a1b2c3d', short_id: '0a1b2c3d', kind: 'manual', capture: { headers: true, bodies: false } });
  assert.equal(sessionPrefix(s), 'debdeb0a1b2c3d');
  const c = attachWithoutRead('0a1b2c3d', { kind: 'continuous' });
  assert.equal(sessionPrefix(c), 'cdbcdb0a1b2c3d');
  for (const bad of ['01J9Z7S0M4Q5W3', 'sess_123', '', undefined, '0a1b2c3']) {
    assert.throws(() => attachWithoutRead(bad, {}), /sessionId must be the session's 8-hex short_id/);
  }
  // The error never carries a key (there is none to carry, and the options are not echoed).
  try { attachWithoutRead('nope', { key: 'st_ing_secret' }); } catch (e) { assert.ok(!e.message.includes('st_ing_secret')); }
});
