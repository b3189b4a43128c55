// Typed client for the public sessiontrace HTTP API (docs/api.md), same origin, JSON only.

export interface Counts { traces: number; spans: number; logs: number; events: number; errors: number }

export interface Session {
  id: string;
  short_id: string;
  kind: string;
  name?: string | null;
  user?: { id?: string; name?: string; email?: string } | string | null;
  attributes?: Record<string, unknown>;
  tags?: string[];
  trace_id_prefix: string;
  traceparent?: string;
  started_at?: string;
  started_at_ms: number;
  stopped_at?: string | null;
  stopped_at_ms?: number | null;
  live: boolean;
  counts?: Partial<Counts>;
  services?: string[];
  /** Frustration signals per kind; null from a server that keeps none (older versions). */
  signals?: SignalCounts | null;
}

export type SignalKind = 'rage' | 'dead' | 'error';
export interface SignalCounts { rage: number; dead: number; error: number }

export type ItemKind = 'click' | 'input' | 'navigation' | 'network' | 'console' | 'error' | 'trace' | 'log' | 'signal';

export interface TimelineItem {
  time_ms: number;
  kind: ItemKind | string;
  label: string;
  trace_id?: string | null;
  span_id?: string | null;
  service?: string | null;
  duration_ms?: number | null;
  status?: string | null;
  level?: string | null;
  detail?: Record<string, any> | null;
}

export interface TraceSummary {
  trace_id: string; root_name: string; root_service: string; services: string[];
  start_ms: number; end_ms: number; duration_ms: number; span_count: number; error_count: number;
}

/** One result of the trace search: a stored trace, and the session it belongs to (if any). */
export interface FoundTrace extends TraceSummary {
  session?: { id: string; short_id: string; name?: string | null } | null;
  matched_spans: number;
}

export interface TraceSearchFilters {
  q?: string; service?: string; operation?: string; status?: '' | 'error' | 'ok';
  min_ms?: string; max_ms?: string; attr?: string; from?: number; to?: number; limit?: number;
}

export interface SpanRef { trace_id: string; span_id: string; service: string; name: string }
export interface Completeness {
  orphans_by_service: Record<string, number>;
  orphans: SpanRef[];
  untraced_calls: { time_ms: number; label: string; trace_id: string }[];
  after_stop: SpanRef[];
  skew: { parent_service: string; child_service: string; max_ms: number; spans: number; example: SpanRef }[];
  spans_read: number;
  truncated: boolean;
}
export interface MapNode { service: string; spans: number; errors: number }
export interface MapEdge { from: string; to: string; calls: number; errors: number; p50_ms: number; trace_ids: string[] }
export interface ServiceMap { nodes: MapNode[]; edges: MapEdge[] }

export interface SpanEvent { name: string; time_ms: number; attributes?: Record<string, unknown> }
export interface SpanLink { trace_id: string; span_id: string; attributes?: Record<string, unknown> }

export interface Span {
  trace_id: string;
  span_id: string;
  parent_span_id?: string | null;
  name: string;
  kind?: string;
  service?: string | null;
  start_ms: number;
  end_ms: number;
  duration_ms?: number;
  start_time_unix_nano?: string;
  end_time_unix_nano?: string;
  status?: { code?: string; message?: string } | null;
  attributes?: Record<string, unknown>;
  events?: SpanEvent[];
  links?: SpanLink[];
  resource?: Record<string, unknown>;
  scope?: { name?: string; version?: string } | null;
  session_id?: string | null;
}

export interface Trace { trace_id: string; session_id?: string | null; spans: Span[] }

export interface LogRecord {
  time_ms: number; severity_text?: string; severity_number?: number; body: unknown;
  trace_id?: string | null; span_id?: string | null; service?: string | null;
  attributes?: Record<string, unknown>; resource?: Record<string, unknown>; session_id?: string | null;
}

export class ApiError extends Error {
  /** Seconds to wait before trying again (429 `Retry-After`), when the server said. */
  retryAfter: number | null = null;
  constructor(public status: number, message: string) { super(message); }
}

/** What `GET /api/auth/me` (and a successful login) answers. */
export interface Me {
  auth: 'off' | 'on';
  user: { name: string; role: 'admin' | 'member' | string } | null;
  csrf_token: string | null;
  projects: string[];
}

/** What every request needs to know about the signed-in browser: the chosen project and the CSRF token. */
export interface ClientState { project: string | null; csrfToken: string | null }

export interface RequestOptions {
  method?: string;
  body?: unknown; // sent as JSON
  signal?: AbortSignal;
  /** A 401 is an answer here (the login form), not "login needed". */
  no401?: boolean;
  /** The answer's body as text (an export in markdown), not parsed as JSON. */
  text?: boolean;
}

export interface ClientDeps {
  fetch: (input: string, init: RequestInit) => Promise<Response>;
  state: () => ClientState;
  /** Called on any 401 (not logged in, or the login expired), before the call rejects. */
  onUnauthorized: (message: string) => void;
}

/** The message of an error answer: `{"error": ...}` when JSON, else the status line. */
async function errorMessage(res: Response): Promise<string> {
  let msg = `${res.status} ${res.statusText}`.trim();
  try { const j = await res.json(); if (j && typeof j.error === 'string') msg = j.error; } catch { /* not JSON */ }
  return msg;
}

/**
 * The one fetch wrapper of the UI: same-origin with the login cookie, the project header on every call,
 * the CSRF token on every state change, JSON in and out. A 401 tells `onUnauthorized` (the app shows the
 * login page) and rejects; other errors reject with the server's `{"error"}` message (403: not allowed).
 */
export function createClient(deps: ClientDeps) {
  return async function request<T>(path: string, o: RequestOptions = {}): Promise<T> {
    const method = (o.method ?? 'GET').toUpperCase();
    const { project, csrfToken } = deps.state();
    const headers: Record<string, string> = { accept: 'application/json' };
    if (project) headers['x-sessiontrace-project'] = project;
    if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    const res = await deps.fetch(path, {
      method, headers, credentials: 'same-origin', signal: o.signal,
      body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
    });
    if (!res.ok) {
      const msg = await errorMessage(res);
      if (res.status === 401 && !o.no401) deps.onUnauthorized(msg);
      const err = new ApiError(res.status, res.status === 403 ? `not allowed: ${msg}` : msg);
      if (res.status === 429) err.retryAfter = Number(res.headers.get('retry-after')) || null;
      throw err;
    }
    if (res.status === 204) return undefined as T;
    return (o.text ? res.text() : res.json()) as Promise<T>;
  };
}

function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

export interface SessionFilters {
  q?: string; user?: string; service?: string; has_error?: '' | 'true' | 'false';
  from?: number; to?: number; limit?: number; offset?: number;
  /** What the user did (docs/api.md): a signal kind, a visited URL (`*` wildcards), a clicked selector or text. */
  signal?: '' | SignalKind; url?: string; clicked?: string;
  console_errors?: '' | 'true' | 'false'; failed_requests?: '' | 'true' | 'false';
  failed_path?: string; failed_status?: string;
}

const enc = encodeURIComponent;

/** The browser's state for every request: set by auth.ts (project switcher, login). */
export const clientState: ClientState = { project: null, csrfToken: null };
let unauthorized: (message: string) => void = () => {};
/** Who hears about a 401 (auth.ts: show the login page). */
export function setUnauthorizedHandler(fn: (message: string) => void) { unauthorized = fn; }

export const request = createClient({
  fetch: (input, init) => fetch(input, init),
  state: () => clientState,
  onUnauthorized: (message) => unauthorized(message),
});

const get = <T>(path: string, signal?: AbortSignal) => request<T>(path, { signal });

/** The body /me stands for when the server has no auth endpoints (older servers): auth off, one project. */
export const AUTH_OFF: Me = { auth: 'off', user: null, csrf_token: null, projects: ['default'] };

export const api = {
  sessions: (f: SessionFilters, signal?: AbortSignal) =>
    get<{ sessions: Session[]; total: number }>(`/api/sessions${qs(f as any)}`, signal),
  session: (id: string, signal?: AbortSignal) => get<Session>(`/api/sessions/${enc(id)}`, signal),
  timeline: (id: string, signal?: AbortSignal) =>
    get<{ session: Session; items: TimelineItem[] }>(`/api/sessions/${enc(id)}/timeline`, signal),
  events: (id: string, signal?: AbortSignal) => get<{ events: any[] }>(`/api/sessions/${enc(id)}/events`, signal),
  /** Metric points of the services a session touched over a window (Unix ms). */
  sessionMetrics: (id: string, from: number, to: number, signal?: AbortSignal) =>
    get<{ points: import('./lib/metrics').MetricPoint[] }>(`/api/metrics${qs({ session: id, from: Math.round(from), to: Math.round(to), limit: 20000 })}`, signal),
  /** What the session's backend picture is missing, and the map of its services' calls. */
  analysis: (id: string, signal?: AbortSignal) =>
    get<{ completeness: Completeness; map: ServiceMap }>(`/api/sessions/${enc(id)}/analysis`, signal),
  sessionTraces: (id: string, signal?: AbortSignal) =>
    get<{ traces: TraceSummary[] }>(`/api/sessions/${enc(id)}/traces`, signal),
  /** The session as markdown (for an AI assistant or a ticket) or `sessiontrace.export/v1` JSON. */
  exportSession: (id: string, format: 'md' | 'json') =>
    request<string>(`/api/sessions/${enc(id)}/export${qs({ format })}`, { text: true }),
  /** Every stored trace by service, operation, status, duration, attribute, TraceQL and time; newest first. */
  searchTraces: (f: TraceSearchFilters, cursor: string | null, signal?: AbortSignal) =>
    get<{ traces: FoundTrace[]; next_cursor: string | null; capped: boolean }>(
      `/api/traces/search${qs({ ...f, cursor } as any)}`, signal),
  /** Services with stored traces (for the search's service box). */
  traceServices: (signal?: AbortSignal) => get<{ services: string[] }>('/jaeger/api/v3/services', signal),
  trace: (traceId: string, signal?: AbortSignal) => get<Trace>(`/api/traces/${enc(traceId)}`, signal),
  traceMap: (traceId: string, signal?: AbortSignal) => get<{ map: ServiceMap }>(`/api/traces/${enc(traceId)}/map`, signal),
  logs: (f: { trace_id?: string; service?: string; q?: string; limit?: number }, signal?: AbortSignal) =>
    get<{ logs: LogRecord[] }>(`/api/logs${qs(f)}`, signal),
  me: async (): Promise<Me> => {
    try {
      const me = await request<Me>('/api/auth/me', { no401: true });
      // An older server answers index.html (its UI fallback) or nothing useful: auth off.
      return me && typeof me === 'object' && (me.auth === 'on' || me.auth === 'off') ? me : AUTH_OFF;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return AUTH_OFF;
      if (e instanceof SyntaxError) return AUTH_OFF; // HTML, not JSON
      throw e;
    }
  },
  login: (name: string, password: string) =>
    request<Me>('/api/auth/login', { method: 'POST', body: { name, password }, no401: true }),
  logout: () => request<void>('/api/auth/logout', { method: 'POST', no401: true }),
};
