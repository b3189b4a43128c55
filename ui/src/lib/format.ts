// Formatting helpers: durations, times, users, pretty-printed JSON bodies, grouped HTTP capture attributes.

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  const a = Math.abs(ms);
  if (ms === 0) return '0ms';
  if (a < 1) return `${(ms * 1000).toFixed(0)}µs`;
  if (a < 1000) return `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)}ms`;
  if (a < 60_000) return `${(ms / 1000).toFixed(2)}s`;
  const m = Math.floor(a / 60_000), s = Math.floor((a % 60_000) / 1000);
  if (m < 60) return `${ms < 0 ? '-' : ''}${m}m ${s}s`;
  return `${ms < 0 ? '-' : ''}${Math.floor(m / 60)}h ${m % 60}m`;
}

export function fmtTime(ms: number | null | undefined): string {
  if (!ms || !Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** mm:ss.S offset from a start time (for the timeline and the replay clock). */
export function fmtOffset(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const neg = ms < 0; const a = Math.abs(ms);
  const m = Math.floor(a / 60000), s = Math.floor((a % 60000) / 1000), t = Math.floor((a % 1000) / 100);
  return `${neg ? '-' : ''}${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}.${t}`;
}

export function fmtUser(u: unknown): string {
  if (!u) return '';
  if (typeof u === 'string') return u;
  if (typeof u === 'object') {
    const o = u as Record<string, unknown>;
    return String(o.name ?? o.email ?? o.id ?? '');
  }
  return String(u);
}

/** Pretty-print a body: JSON gets indented, anything else is returned as is. */
export function prettyBody(body: unknown): string {
  if (body === null || body === undefined) return '';
  if (typeof body !== 'string') return JSON.stringify(body, null, 2);
  const t = body.trim();
  if ((t.startsWith('{') || t.startsWith('[')) && t.length < 5_000_000) {
    try { return JSON.stringify(JSON.parse(t), null, 2); } catch { /* not JSON */ }
  }
  return body;
}

export function attrValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object')) return v.join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export interface HttpCapture {
  requestHeaders: [string, string][];
  responseHeaders: [string, string][];
  requestBody?: string; requestTruncated?: boolean;
  responseBody?: string; responseTruncated?: boolean;
  /** Attributes that are not part of the capture. */
  rest: [string, unknown][];
}

/** Split span attributes into captured headers/bodies (DESIGN.md section 5) and the rest. */
export function splitCapture(attrs: Record<string, unknown> | undefined): HttpCapture {
  const out: HttpCapture = { requestHeaders: [], responseHeaders: [], rest: [] };
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k.startsWith('http.request.header.')) out.requestHeaders.push([k.slice(20), attrValue(v)]);
    else if (k.startsWith('http.response.header.')) out.responseHeaders.push([k.slice(21), attrValue(v)]);
    else if (k === 'http.request.body') out.requestBody = typeof v === 'string' ? v : JSON.stringify(v);
    else if (k === 'http.response.body') out.responseBody = typeof v === 'string' ? v : JSON.stringify(v);
    else if (k === 'http.request.body.truncated') out.requestTruncated = v === true || v === 'true';
    else if (k === 'http.response.body.truncated') out.responseTruncated = v === true || v === 'true';
    else out.rest.push([k, v]);
  }
  out.requestHeaders.sort(); out.responseHeaders.sort(); out.rest.sort((a, b) => a[0].localeCompare(b[0]));
  return out;
}
