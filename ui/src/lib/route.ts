// Pure routing helpers: parse client routes, normalize a pasted trace id or traceparent.

export type Route =
  | { page: 'sessions' }
  | { page: 'session'; id: string }
  | { page: 'trace'; traceId: string }
  | { page: 'notfound' };

export function parseRoute(pathname: string): Route {
  const p = pathname.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/sessions') return { page: 'sessions' };
  let m = /^\/sessions\/([^/]+)$/.exec(p);
  if (m) return { page: 'session', id: decodeURIComponent(m[1]) };
  if (p === '/traces') return { page: 'trace', traceId: '' };
  m = /^\/traces\/([^/]+)$/.exec(p);
  if (m) return { page: 'trace', traceId: decodeURIComponent(m[1]) };
  return { page: 'notfound' };
}

export function normalizeTraceId(s: string): string {
  const t = s.trim().toLowerCase();
  // Accept a whole traceparent header too: 00-<trace id>-<span id>-01.
  const tp = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(t);
  if (tp) return tp[1];
  return t.replace(/[^0-9a-f]/g, '');
}

