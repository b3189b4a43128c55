// Unit tests: timeline merge, filtering and playhead sync.
import { describe, it, expect } from 'vitest';
import type { TimelineItem } from '../src/api';
import { mergeTimeline, currentIndex, inFlight, filterItems, toReplayOffset, isErrorItem, timeBounds, opensTrace, KINDS } from '../src/lib/timeline';

const item = (time_ms: number, kind = 'click', label = `${kind}@${time_ms}`, extra: Partial<TimelineItem> = {}): TimelineItem =>
  ({ time_ms, kind, label, ...extra });

describe('mergeTimeline', () => {
  it('sorts by time and keeps input order on ties', () => {
    const a = [item(30), item(10, 'network', 'same-time-a')];
    const b = [item(10, 'trace', 'same-time-b'), item(20)];
    expect(mergeTimeline(a, b).map((i) => i.label)).toEqual(['same-time-a', 'same-time-b', 'click@20', 'click@30']);
  });
  it('dedupes items seen in two polls, the later copy wins', () => {
    const old = [item(10, 'trace', 'GET /x', { trace_id: 'aa', detail: { span_count: 1 } })];
    const neu = [item(10, 'trace', 'GET /x', { trace_id: 'aa', detail: { span_count: 5 } }), item(12, 'log')];
    const m = mergeTimeline(old, neu);
    expect(m).toHaveLength(2);
    expect(m[0].detail!.span_count).toBe(5);
  });
  it('drops items with a non-finite time', () => {
    expect(mergeTimeline([item(NaN), item(1)])).toHaveLength(1);
  });
});

describe('currentIndex (playhead sync)', () => {
  const items = [item(100), item(200), item(200, 'input'), item(300)];
  it('is -1 before the first item', () => expect(currentIndex(items, 99)).toBe(-1));
  it('is the last item at or before the playhead', () => {
    expect(currentIndex(items, 100)).toBe(0);
    expect(currentIndex(items, 250)).toBe(2);
    expect(currentIndex(items, 1e12)).toBe(3);
  });
  it('handles an empty list', () => expect(currentIndex([], 5)).toBe(-1));
  it('is fast on 50,000 items', () => {
    const many = Array.from({ length: 50_000 }, (_, i) => item(i * 10));
    const t0 = performance.now();
    for (let k = 0; k < 10_000; k++) currentIndex(many, k * 37);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(currentIndex(many, 12_345)).toBe(1234);
  });
  it('lists network calls in flight', () => {
    const xs = [item(100, 'network', 'a', { duration_ms: 50 }), item(120, 'click'), item(130, 'network', 'b', { duration_ms: 5 })];
    expect(inFlight(xs, 140)).toEqual([0]);
    expect(inFlight(xs, 132)).toEqual([0, 2]);
  });
});

describe('filterItems', () => {
  const xs = [
    item(1, 'click', 'click #buy'),
    item(2, 'network', 'POST /api/checkout → 500', { detail: { status: 500 } }),
    item(3, 'trace', 'POST /checkout', { service: 'gateway', status: 'error' }),
    item(4, 'console', 'hello', { level: 'log' }),
  ];
  it('filters by kind, text and errors', () => {
    expect(filterItems(xs, { kinds: new Set(['network', 'trace']) })).toHaveLength(2);
    expect(filterItems(xs, { text: 'GATEWAY' }).map((i) => i.kind)).toEqual(['trace']);
    expect(filterItems(xs, { errorsOnly: true }).map((i) => i.kind)).toEqual(['network', 'trace']);
    expect(filterItems(xs, {})).toBe(xs);
  });
  it('classifies errors', () => {
    expect(isErrorItem(item(1, 'error'))).toBe(true);
    expect(isErrorItem(item(1, 'console', 'x', { level: 'error' }))).toBe(true);
    expect(isErrorItem(item(1, 'network', 'x', { detail: { status: 200 } }))).toBe(false);
  });
});

describe('signal items', () => {
  const errorClick = item(500, 'signal', 'error click button#pay → POST /api/pay → 502',
    { status: 'error', trace_id: 'debdeb01020304050607080900aabbcc', span_id: '1111111111111111' });
  const deadClick = item(400, 'signal', 'dead click button#noop', { status: 'warning' });
  it('a signal with a trace opens it; a dead click has none', () => {
    expect(opensTrace(errorClick)).toBe(true);
    expect(opensTrace(deadClick)).toBe(false);
  });
  it('error clicks count as errors, and signal is a filterable kind', () => {
    expect(isErrorItem(errorClick)).toBe(true);
    expect(isErrorItem(deadClick)).toBe(false);
    expect(KINDS).toContain('signal');
    expect(filterItems([deadClick, errorClick, item(450)], { kinds: new Set(['signal']) })).toEqual([deadClick, errorClick]);
  });
});

describe('replay offsets', () => {
  it('clamps to the replay range', () => {
    expect(toReplayOffset(1500, 1000, 2000)).toBe(500);
    expect(toReplayOffset(500, 1000, 2000)).toBe(0);
    expect(toReplayOffset(9000, 1000, 2000)).toBe(2000);
  });
  it('computes bounds over items and extra times', () => {
    expect(timeBounds([item(10, 'network', 'n', { duration_ms: 100 })], [5])).toEqual({ start: 5, end: 110 });
    expect(timeBounds([])).toEqual({ start: 0, end: 0 });
  });
});

import { parseRoute, normalizeTraceId } from '../src/lib/route';
describe('routes', () => {
  it('parses shareable paths', () => {
    expect(parseRoute('/')).toEqual({ page: 'sessions' });
    expect(parseRoute('/sessions/ab12cd34/')).toEqual({ page: 'session', id: 'ab12cd34' });
    expect(parseRoute('/traces/debdeb')).toEqual({ page: 'trace', traceId: 'debdeb' });
    expect(parseRoute('/traces')).toEqual({ page: 'trace', traceId: '' });
    expect(parseRoute('/nope/x')).toEqual({ page: 'notfound' });
  });
  it('accepts a pasted trace id or a whole traceparent', () => {
    const id = 'debdeb1a2b3c4d' + 'f'.repeat(18);
    expect(normalizeTraceId(` ${id.toUpperCase()} `)).toBe(id);
    expect(normalizeTraceId(`00-${id}-0123456789abcdef-01`)).toBe(id);
  });
});
