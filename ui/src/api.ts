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
}

export type ItemKind = 'click' | 'input' | 'navigation' | 'network' | 'console' | 'error' | 'trace' | 'log';

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
  constructor(public status: number, message: string) { super(message); }
}

async function get<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' }, signal });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { const j = await res.json(); if (j && j.error) msg = `${res.status}: ${j.error}`; } catch { /* not JSON */ }
    throw new ApiError(res.status, msg);
  }
  return res.json() as Promise<T>;
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
}

const enc = encodeURIComponent;

export const api = {
  sessions: (f: SessionFilters, signal?: AbortSignal) =>
    get<{ sessions: Session[]; total: number }>(`/api/sessions${qs(f as any)}`, signal),
  session: (id: string, signal?: AbortSignal) => get<Session>(`/api/sessions/${enc(id)}`, signal),
  timeline: (id: string, signal?: AbortSignal) =>
    get<{ session: Session; items: TimelineItem[] }>(`/api/sessions/${enc(id)}/timeline`, signal),
  events: (id: string, signal?: AbortSignal) => get<{ events: any[] }>(`/api/sessions/${enc(id)}/events`, signal),
  sessionTraces: (id: string, signal?: AbortSignal) =>
    get<{ traces: TraceSummary[] }>(`/api/sessions/${enc(id)}/traces`, signal),
  trace: (traceId: string, signal?: AbortSignal) => get<Trace>(`/api/traces/${enc(traceId)}`, signal),
  logs: (f: { trace_id?: string; service?: string; q?: string; limit?: number }, signal?: AbortSignal) =>
    get<{ logs: LogRecord[] }>(`/api/logs${qs(f)}`, signal),
};
