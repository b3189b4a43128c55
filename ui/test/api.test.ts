// Unit tests: the UI's one fetch wrapper (project header, CSRF token, 401/403/429 handling) and the
// project choice.
import { describe, it, expect } from 'vitest';
import { ApiError, createClient, type ClientState } from '../src/api';
import { chooseProject, projectInUrl } from '../src/lib/project';

interface Call { url: string; init: RequestInit; headers: Record<string, string> }

function setup(responses: Response[], state: ClientState = { project: 'shop', csrfToken: 'tok123' }) {
  const calls: Call[] = [];
  const unauthorized: string[] = [];
  const request = createClient({
    fetch: async (url, init) => {
      calls.push({ url, init, headers: { ...(init.headers as Record<string, string>) } });
      const r = responses.shift();
      if (!r) throw new Error('no response left');
      return r;
    },
    state: () => state,
    onUnauthorized: (m) => unauthorized.push(m),
  });
  return { request, calls, unauthorized, state };
}

/** The error a call rejects with (a call that resolves fails the test). */
const failure = (p: Promise<unknown>): Promise<ApiError> =>
  p.then(() => { throw new Error('expected the call to fail'); }, (e: ApiError) => e);

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

describe('createClient', () => {
  it('sends the project header on a GET, but no CSRF token', async () => {
    const { request, calls } = setup([json(200, { sessions: [] })]);
    expect(await request('/api/sessions')).toEqual({ sessions: [] });
    expect(calls[0].init.method).toBe('GET');
    expect(calls[0].init.credentials).toBe('same-origin');
    expect(calls[0].headers['x-sessiontrace-project']).toBe('shop');
    expect(calls[0].headers['x-csrf-token']).toBeUndefined();
  });

  it('sends the CSRF token and JSON body on POST and DELETE', async () => {
    const { request, calls } = setup([json(201, { id: 'a' }), new Response(null, { status: 204 })]);
    expect(await request('/api/sessions', { method: 'POST', body: { name: 'x' } })).toEqual({ id: 'a' });
    expect(await request('/api/keys/1', { method: 'delete' })).toBeUndefined();
    expect(calls[0].headers['x-csrf-token']).toBe('tok123');
    expect(calls[0].headers['content-type']).toBe('application/json');
    expect(calls[0].init.body).toBe('{"name":"x"}');
    expect(calls[1].init.method).toBe('DELETE');
    expect(calls[1].headers['x-csrf-token']).toBe('tok123');
  });

  it('sends no project or token header it does not have', async () => {
    const { request, calls } = setup([json(200, {})], { project: null, csrfToken: null });
    await request('/api/auth/login', { method: 'POST', body: {} });
    expect(calls[0].headers['x-sessiontrace-project']).toBeUndefined();
    expect(calls[0].headers['x-csrf-token']).toBeUndefined();
  });

  it('reads the state at each call (a project switch applies to the next request)', async () => {
    const { request, calls, state } = setup([json(200, {}), json(200, {})]);
    await request('/api/sessions');
    state.project = 'other';
    await request('/api/sessions');
    expect(calls.map((c) => c.headers['x-sessiontrace-project'])).toEqual(['shop', 'other']);
  });

  it('turns a 401 into "login needed" and rejects', async () => {
    const { request, unauthorized } = setup([json(401, { error: 'login expired' })]);
    const err = await failure(request('/api/sessions'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(unauthorized).toEqual(['login expired']);
  });

  it('leaves a 401 to the caller when asked (the login form: wrong password)', async () => {
    const { request, unauthorized } = setup([json(401, { error: 'wrong name or password' })]);
    const err = await failure(request('/api/auth/login', { method: 'POST', body: {}, no401: true }));
    expect(err.status).toBe(401);
    expect(err.message).toBe('wrong name or password');
    expect(unauthorized).toEqual([]);
  });

  it('a 403 rejects with the server message and does not ask for a login', async () => {
    const { request, unauthorized } = setup([json(403, { error: 'members cannot delete keys' })]);
    const err = await failure(request('/api/keys/1', { method: 'DELETE' }));
    expect(err.status).toBe(403);
    expect(err.message).toContain('members cannot delete keys');
    expect(unauthorized).toEqual([]);
  });

  it('a 429 carries Retry-After', async () => {
    const { request } = setup([json(429, { error: 'too many failed logins' }, { 'retry-after': '30' })]);
    const err = await failure(request('/api/auth/login', { method: 'POST', body: {}, no401: true }));
    expect(err.status).toBe(429);
    expect(err.retryAfter).toBe(30);
  });

  it('an error that is not JSON keeps the status line', async () => {
    const { request } = setup([new Response('boom', { status: 502, statusText: 'Bad Gateway' })]);
    const err = await failure(request('/api/sessions'));
    expect(err.status).toBe(502);
    expect(err.message).toBe('502 Bad Gateway');
  });
});

describe('chooseProject', () => {
  it('takes the URL first, even a project not listed', () => {
    expect(chooseProject('shop', 'blog', ['default', 'blog'])).toBe('shop');
  });
  it('then the stored one when still listed', () => {
    expect(chooseProject(null, 'blog', ['default', 'blog'])).toBe('blog');
    expect(chooseProject(null, 'gone', ['default', 'blog'])).toBe('default');
  });
  it('then default, or the first listed', () => {
    expect(chooseProject(null, null, [])).toBe('default');
    expect(chooseProject(null, null, ['shop', 'blog'])).toBe('shop');
  });
  it('keeps a lone default project out of the URL', () => {
    expect(projectInUrl('default', ['default'])).toBe(false);
    expect(projectInUrl('default', ['default', 'shop'])).toBe(true);
    expect(projectInUrl('shop', ['shop'])).toBe(true);
  });
});
