// Unit tests of the fetch capture wrapper and console formatting, in node (fetch/Response/Headers are
// built in; the page's location is faked).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeFetchWrapper } from '../src/network.js';
import { formatMessage } from '../src/console.js';

globalThis.location ??= { href: 'http://127.0.0.1:3000/page', origin: 'http://127.0.0.1:3000' };

function setup(capture, responder) {
  const emitted = [];
  const calls = [];
  const native = async (input, init) => {
    calls.push([input, init]);
    return responder(input, init);
  };
  const wrapped = makeFetchWrapper(native, {
    active: () => true,
    skip: (url) => url.startsWith('http://127.0.0.1:8080/'),
    capture: () => capture,
    emit: (p) => emitted.push(p),
    maskHeaders: [],
    maskKeys: [],
  });
  return { wrapped, emitted, calls };
}

const until = async (fn) => {
  for (let i = 0; i < 100 && !fn(); i++) await new Promise((r) => setTimeout(r, 5));
};

test('fetch capture: method, url, status, timing; headers and bodies masked when asked', async () => {
  const { wrapped, emitted } = setup({ headers: true, bodies: true }, () => new Response(
    JSON.stringify({ ok: true, refresh_token: 'r' }),
    { status: 201, headers: { 'content-type': 'application/json', 'set-cookie': 'a=b', 'x-trace-id': 't' } },
  ));
  const res = await wrapped('/api/login', {
    method: 'post',
    headers: { Authorization: 'Bearer x', 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: 'ann', password: 'p' }),
  });
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { ok: true, refresh_token: 'r' }, 'the page still reads the body');
  await until(() => emitted.length);
  const p = emitted[0];
  assert.equal(p.method, 'POST');
  assert.equal(p.url, 'http://127.0.0.1:3000/api/login');
  assert.equal(p.status, 201);
  assert.ok(p.duration_ms >= 0 && p.start_ms > 0);
  assert.equal(p.trace_id, null); // no active span outside the OTel instrumentation
  assert.deepEqual(p.request.headers, { authorization: '***MASKED***', 'content-type': 'application/json' });
  assert.deepEqual(JSON.parse(p.request.body), { user: 'ann', password: '***MASKED***' });
  assert.equal(p.response.headers['set-cookie'], '***MASKED***');
  assert.equal(p.response.headers['x-trace-id'], 't');
  assert.deepEqual(JSON.parse(p.response.body), { ok: true, refresh_token: '***MASKED***' });
});

test('fetch capture: nothing but metadata unless the session asks; streams never read', async () => {
  const a = setup({}, () => new Response('secret body', { status: 200 }));
  await a.wrapped('http://other.test/x');
  await until(() => a.emitted.length);
  assert.equal(a.emitted[0].request, undefined);
  assert.equal(a.emitted[0].response, undefined);

  const b = setup({ headers: true, bodies: true }, () => new Response('data: 1\n\n', {
    headers: { 'content-type': 'text/event-stream' },
  }));
  const res = await b.wrapped('/sse');
  await until(() => b.emitted.length);
  assert.equal(b.emitted[0].response.body, undefined);
  assert.equal(await res.text(), 'data: 1\n\n');

  const c = setup({ headers: true, bodies: true }, () => new Response('x'.repeat(70 * 1024)));
  await c.wrapped('/big');
  await until(() => c.emitted.length);
  assert.equal(c.emitted[0].response.body.length, 64 * 1024);
  assert.equal(c.emitted[0].response.body_truncated, true);
});

test("fetch capture: the recorder's own calls are skipped; failures are recorded and rethrown", async () => {
  const a = setup({ headers: true }, () => new Response('ok'));
  await a.wrapped('http://127.0.0.1:8080/api/sessions/x/events', { method: 'POST' });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(a.emitted.length, 0);
  assert.equal(a.calls.length, 1);

  const b = setup({}, () => Promise.reject(new TypeError('Failed to fetch')));
  await assert.rejects(b.wrapped('/down'), /Failed to fetch/);
  await until(() => b.emitted.length);
  assert.equal(b.emitted[0].status, 0);
  assert.equal(b.emitted[0].error, 'Failed to fetch');
});

test('console messages are formatted like the console shows them', () => {
  const circ = { a: 1 };
  circ.self = circ;
  assert.equal(formatMessage(['paid', 42, { x: [1] }, undefined, null]), 'paid 42 {"x":[1]} undefined null');
  assert.equal(formatMessage([circ]), '{"a":1,"self":"[circular]"}');
  assert.ok(formatMessage([new Error('boom')]).startsWith('Error: boom'));
  assert.equal(formatMessage(['x'.repeat(9000)]).length, 8 * 1024 + 1);
});
