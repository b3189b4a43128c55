// Unit tests: waterfall layout (common time axis, nesting, orphans, cycles, clock skew), windowing, formatting.
import { describe, it, expect } from 'vitest';
import type { Span } from '../src/api';
import { layoutWaterfall, axisTicks, spanIsError } from '../src/lib/waterfall';
import { visibleWindow, scrollToReveal } from '../src/lib/virtual';
import { prettyBody, splitCapture, fmtDuration } from '../src/lib/format';

const sp = (span_id: string, parent: string | null, start: number, end: number, service = 'svc', extra: Partial<Span> = {}): Span =>
  ({ trace_id: 't', span_id, parent_span_id: parent, name: `op-${span_id}`, service, start_ms: start, end_ms: end, ...extra });

const inRange = (rows: ReturnType<typeof layoutWaterfall>['rows']) => {
  for (const r of rows) {
    expect(r.left).toBeGreaterThanOrEqual(0);
    expect(r.width).toBeGreaterThanOrEqual(0);
    expect(r.left + r.width).toBeLessThanOrEqual(1 + 1e-9);
  }
};

describe('layoutWaterfall', () => {
  it('puts all spans on one time axis and nests by parent', () => {
    const L = layoutWaterfall([
      sp('c', 'b', 1040, 1060, 'orders'),
      sp('a', null, 1000, 1100, 'gateway'),
      sp('b', 'a', 1010, 1090, 'api'),
      sp('d', 'a', 1005, 1008, 'api'),
    ]);
    expect(L.start).toBe(1000);
    expect(L.end).toBe(1100);
    expect(L.rows.map((r) => [r.span.span_id, r.depth])).toEqual([['a', 0], ['d', 1], ['b', 1], ['c', 2]]);
    const a = L.rows[0], c = L.rows[3];
    expect(a.left).toBe(0);
    expect(a.width).toBeCloseTo(1);
    expect(c.left).toBeCloseTo(0.4);
    expect(c.width).toBeCloseTo(0.2);
    expect(L.services).toEqual(['gateway', 'api', 'orders']);
    expect(a.childCount).toBe(3);
    inRange(L.rows);
  });

  it('shows orphans (parent not in the trace) at top level, marked', () => {
    const L = layoutWaterfall([sp('x', 'browser-span', 10, 20), sp('y', 'x', 12, 18), sp('r', null, 0, 30)]);
    const x = L.rows.find((r) => r.span.span_id === 'x')!;
    expect(x.depth).toBe(0);
    expect(x.orphan).toBe(true);
    expect(L.rows.find((r) => r.span.span_id === 'y')!.depth).toBe(1);
    expect(L.rows.find((r) => r.span.span_id === 'r')!.orphan).toBe(false);
  });

  it('handles clock skew: child before parent start or after its end stays in range, flagged', () => {
    const L = layoutWaterfall([
      sp('p', null, 1000, 1050, 'a'),
      sp('early', 'p', 980, 1010, 'b'), // other host's clock is 20ms behind
      sp('late', 'p', 1040, 1090, 'c'), // ends after the parent
    ]);
    inRange(L.rows);
    expect(L.start).toBe(980);
    expect(L.end).toBe(1090);
    const early = L.rows.find((r) => r.span.span_id === 'early')!;
    const late = L.rows.find((r) => r.span.span_id === 'late')!;
    expect(early.skew && late.skew).toBe(true);
    expect(early.left).toBe(0);
    expect(late.left + late.width).toBeCloseTo(1);
    expect(L.rows.find((r) => r.span.span_id === 'p')!.skew).toBe(false);
  });

  it('never gives a negative width for end < start or missing times', () => {
    const L = layoutWaterfall([sp('a', null, 100, 200), sp('neg', 'a', 150, 120), sp('nan', 'a', NaN, NaN)]);
    inRange(L.rows);
    const neg = L.rows.find((r) => r.span.span_id === 'neg')!;
    expect(neg.width).toBe(0);
    expect(neg.negative).toBe(true);
    expect(L.rows).toHaveLength(3);
  });

  it('survives parent cycles, self-parents and duplicate ids', () => {
    const L = layoutWaterfall([
      sp('a', 'b', 0, 10), sp('b', 'a', 1, 5), sp('s', 's', 2, 3), sp('s', null, 0, 100), sp('r', null, 0, 10),
    ]);
    expect(L.rows.map((r) => r.span.span_id).sort()).toEqual(['a', 'b', 'r', 's']);
    const a = L.rows.find((r) => r.span.span_id === 'a')!;
    expect(a.depth + L.rows.find((r) => r.span.span_id === 'b')!.depth).toBe(1);
  });

  it('collapses a subtree but still counts it', () => {
    const spans = [sp('a', null, 0, 10, 'x'), sp('b', 'a', 1, 5, 'y'), sp('c', 'b', 2, 3, 'z', { status: { code: 'error' } })];
    const L = layoutWaterfall(spans, new Set(['b']));
    expect(L.rows.map((r) => r.span.span_id)).toEqual(['a', 'b']);
    expect(L.rows[1].collapsed).toBe(true);
    expect(L.services).toEqual(['x', 'y', 'z']);
    expect(L.errorCount).toBe(1);
  });

  it('lays out 10,000 spans and a 5,000-deep chain quickly', () => {
    const spans: Span[] = [sp('root', null, 0, 10_000)];
    for (let i = 0; i < 10_000; i++) spans.push(sp(`s${i}`, i % 10 === 0 ? 'root' : `s${i - 1}`, i, i + 5, `svc${i % 5}`));
    const t0 = performance.now();
    const L = layoutWaterfall(spans);
    expect(L.rows).toHaveLength(10_001);
    const chain: Span[] = [sp('c0', null, 0, 1)];
    for (let i = 1; i < 5000; i++) chain.push(sp(`c${i}`, `c${i - 1}`, i, i + 1));
    expect(layoutWaterfall(chain).rows[4999].depth).toBe(4999);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('detects errors by status or exception event', () => {
    expect(spanIsError(sp('a', null, 0, 1, 's', { status: { code: 'error' } }))).toBe(true);
    expect(spanIsError(sp('a', null, 0, 1, 's', { events: [{ name: 'exception', time_ms: 0 }] }))).toBe(true);
    expect(spanIsError(sp('a', null, 0, 1))).toBe(false);
  });

  it('makes nice axis ticks', () => {
    expect(axisTicks(100, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(axisTicks(0)).toEqual([0]);
  });
});

describe('visibleWindow', () => {
  it('renders only visible rows plus overscan', () => {
    const w = visibleWindow(2400, 600, 24, 10_000, 5);
    expect(w.first).toBe(95);
    expect(w.last).toBe(130);
    expect(w.padTop).toBe(95 * 24);
    expect(w.padTop + (w.last - w.first) * 24 + w.padBottom).toBe(10_000 * 24);
  });
  it('handles edges', () => {
    expect(visibleWindow(0, 600, 24, 0)).toEqual({ first: 0, last: 0, padTop: 0, padBottom: 0 });
    expect(visibleWindow(1e9, 600, 24, 10).last).toBe(10);
  });
  it('scrolls minimally to reveal a row', () => {
    expect(scrollToReveal(0, 100, 200, 20)).toBe(0);
    expect(scrollToReveal(10, 0, 200, 20)).toBe(20);
    expect(scrollToReveal(5, 0, 200, 20)).toBeNull();
  });
});

describe('format', () => {
  it('pretty-prints JSON bodies and leaves text alone', () => {
    expect(prettyBody('{"password":"***MASKED***"}')).toBe('{\n  "password": "***MASKED***"\n}');
    expect(prettyBody('plain')).toBe('plain');
    expect(prettyBody('{broken')).toBe('{broken');
  });
  it('splits captured headers and bodies from other attributes', () => {
    const c = splitCapture({
      'http.request.header.authorization': ['***MASKED***'], 'http.response.header.content-type': ['application/json'],
      'http.request.body': '{}', 'http.response.body.truncated': true, 'http.route': '/x',
    });
    expect(c.requestHeaders).toEqual([['authorization', '***MASKED***']]);
    expect(c.responseHeaders).toEqual([['content-type', 'application/json']]);
    expect(c.requestBody).toBe('{}');
    expect(c.responseTruncated).toBe(true);
    expect(c.rest).toEqual([['http.route', '/x']]);
  });
  it('formats durations', () => {
    expect(fmtDuration(0.5)).toBe('500µs');
    expect(fmtDuration(12.345)).toBe('12.3ms');
    expect(fmtDuration(1500)).toBe('1.50s');
    expect(fmtDuration(null)).toBe('');
  });
});
