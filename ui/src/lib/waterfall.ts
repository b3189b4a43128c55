// Pure waterfall layout: spans of one trace -> rows nested by parent on a common time axis.
// Orphans (parent missing) and cycle members show at top level; clock skew between services never
// produces negative widths or bars outside [0, 1].
import type { Span } from '../api';

export interface Row {
  span: Span;
  depth: number;
  /** Bar position on the common axis, fractions of the trace duration, always within [0, 1]. */
  left: number;
  width: number;
  /** Parent id given but no such span in the trace (or it was part of a parent cycle). */
  orphan: boolean;
  /** Child starts before its parent or ends after it (clock skew between services). */
  skew: boolean;
  /** end < start as reported. */
  negative: boolean;
  error: boolean;
  childCount: number;
  collapsed: boolean;
}

export interface Layout {
  rows: Row[];
  start: number;
  end: number;
  duration: number;
  services: string[];
  spanCount: number;
  errorCount: number;
}

export function spanIsError(s: Span): boolean {
  const c = (s.status?.code ?? '').toString().toLowerCase();
  if (c === 'error' || c === 'status_code_error' || c === '2') return true;
  return (s.events ?? []).some((e) => e.name === 'exception');
}

const fin = (x: number, d: number) => (Number.isFinite(x) ? x : d);

export function layoutWaterfall(input: Span[], collapsed: Set<string> = new Set()): Layout {
  // De-duplicate span ids (first wins) so a retried export cannot double rows.
  const spans: Span[] = [];
  const byId = new Map<string, Span>();
  for (const s of input) {
    if (byId.has(s.span_id)) continue;
    byId.set(s.span_id, s);
    spans.push(s);
  }

  let start = Infinity, end = -Infinity;
  for (const s of spans) {
    const a = fin(s.start_ms, NaN), b = fin(s.end_ms, a);
    if (Number.isFinite(a)) { start = Math.min(start, a); end = Math.max(end, a); }
    if (Number.isFinite(b)) end = Math.max(end, b);
  }
  if (!Number.isFinite(start)) { start = 0; end = 0; }
  const duration = Math.max(end - start, 1e-6);

  const byStart = (x: Span, y: Span) =>
    fin(x.start_ms, 0) - fin(y.start_ms, 0) || x.name.localeCompare(y.name) || x.span_id.localeCompare(y.span_id);

  const children = new Map<string, Span[]>();
  const roots: Span[] = [];
  const orphanIds = new Set<string>();
  for (const s of spans) {
    const p = s.parent_span_id;
    if (p && p !== s.span_id && byId.has(p)) {
      let list = children.get(p);
      if (!list) children.set(p, (list = []));
      list.push(s);
    } else {
      if (p) orphanIds.add(s.span_id);
      roots.push(s);
    }
  }
  for (const list of children.values()) list.sort(byStart);
  roots.sort(byStart);

  // Count descendants (iterative post-order) for the collapse UI.
  const descendants = new Map<string, number>();
  const countDesc = (root: Span) => {
    const stack: [Span, boolean][] = [[root, false]];
    const seen = new Set<string>([root.span_id]);
    while (stack.length) {
      const [s, done] = stack.pop()!;
      const kids = children.get(s.span_id) ?? [];
      if (done) {
        let n = 0;
        for (const k of kids) if (k.span_id !== root.span_id) n += 1 + (descendants.get(k.span_id) ?? 0);
        descendants.set(s.span_id, n);
      } else {
        stack.push([s, true]);
        for (const k of kids) if (!seen.has(k.span_id) && !descendants.has(k.span_id)) { seen.add(k.span_id); stack.push([k, false]); }
      }
    }
  };

  const rows: Row[] = [];
  const visited = new Set<string>();
  const services: string[] = [];
  const seenSvc = new Set<string>();
  let errorCount = 0;

  const emit = (root: Span, rootOrphan: boolean) => {
    countDesc(root);
    // Iterative DFS in pre-order; deep chains (thousands of levels) must not overflow the stack.
    const stack: { s: Span; depth: number; orphan: boolean }[] = [{ s: root, depth: 0, orphan: rootOrphan }];
    while (stack.length) {
      const { s, depth, orphan } = stack.pop()!;
      if (visited.has(s.span_id)) continue;
      visited.add(s.span_id);
      const svc = s.service ?? '';
      if (!seenSvc.has(svc)) { seenSvc.add(svc); services.push(svc); }
      const a = fin(s.start_ms, start);
      const b = fin(s.end_ms, a);
      const lo = Math.min(Math.max(a, start), end);
      const hi = Math.min(Math.max(b, lo), end);
      const left = Math.min(Math.max((lo - start) / duration, 0), 1);
      const width = Math.min(Math.max((hi - lo) / duration, 0), 1 - left);
      const parent = s.parent_span_id ? byId.get(s.parent_span_id) : undefined;
      const skew = !!parent && !orphan &&
        (a < fin(parent.start_ms, a) - 1e-3 || b > fin(parent.end_ms, b) + 1e-3);
      const err = spanIsError(s);
      if (err) errorCount++;
      const isCollapsed = collapsed.has(s.span_id);
      const kids = children.get(s.span_id) ?? [];
      rows.push({
        span: s, depth, left, width, orphan, skew, negative: b < a, error: err,
        childCount: descendants.get(s.span_id) ?? kids.length, collapsed: isCollapsed,
      });
      if (isCollapsed) { markVisited(s); continue; }
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ s: kids[i], depth: depth + 1, orphan: false });
    }
  };
  // Hidden descendants of a collapsed span still count as placed (so they are not re-rooted as orphans).
  const markVisited = (s: Span) => {
    const st = [...(children.get(s.span_id) ?? [])];
    while (st.length) {
      const k = st.pop()!;
      if (visited.has(k.span_id)) continue;
      visited.add(k.span_id);
      const svc = k.service ?? '';
      if (!seenSvc.has(svc)) { seenSvc.add(svc); services.push(svc); }
      if (spanIsError(k)) errorCount++;
      st.push(...(children.get(k.span_id) ?? []));
    }
  };

  for (const r of roots) emit(r, orphanIds.has(r.span_id));
  // Spans only reachable through a parent cycle (a -> b -> a): break the cycle at the earliest one.
  if (visited.size < spans.length) {
    const rest = spans.filter((s) => !visited.has(s.span_id)).sort(byStart);
    for (const s of rest) if (!visited.has(s.span_id)) emit(s, true);
  }

  return { rows, start, end, duration, services, spanCount: spans.length, errorCount };
}

/** Evenly spaced "nice" tick offsets (ms from trace start) for an axis of `duration` ms. */
export function axisTicks(duration: number, maxTicks = 6): number[] {
  if (!(duration > 0)) return [0];
  const raw = duration / Math.max(1, maxTicks);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = 0; t <= duration + 1e-9; t += step) out.push(Number(t.toFixed(6)));
  return out;
}

/** Stable color index for a service name. */
export function serviceColor(service: string | null | undefined, services: string[]): number {
  const i = services.indexOf(service ?? '');
  return (i < 0 ? 0 : i) % 8;
}
