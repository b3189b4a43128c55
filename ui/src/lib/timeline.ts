// Pure timeline logic: merging item lists (live polling), filtering, and syncing with the replay playhead.
import type { TimelineItem } from '../api';

export const KINDS = ['signal', 'click', 'input', 'navigation', 'network', 'console', 'error', 'trace', 'log'] as const;

/** Stable identity of an item across polls (the server has no item ids). */
export function itemKey(it: TimelineItem): string {
  return `${it.kind}|${it.time_ms}|${it.trace_id ?? ''}|${it.span_id ?? ''}|${it.label}`;
}

/**
 * Merge several item lists into one time-ordered list without duplicates. Later lists win for an
 * item with the same key (a live trace item's span count grows). Ties keep input order (stable sort).
 * Items with a non-finite time are dropped rather than breaking the binary search.
 */
export function mergeTimeline(...lists: TimelineItem[][]): TimelineItem[] {
  const byKey = new Map<string, TimelineItem>();
  const order: string[] = [];
  for (const list of lists) {
    for (const it of list) {
      if (!Number.isFinite(it.time_ms)) continue;
      const k = itemKey(it);
      if (!byKey.has(k)) order.push(k);
      byKey.set(k, it);
    }
  }
  const out = order.map((k, i) => ({ it: byKey.get(k)!, i }));
  out.sort((a, b) => a.it.time_ms - b.it.time_ms || a.i - b.i);
  return out.map((x) => x.it);
}

/** Index of the item that is "current" at absolute time t: the last item with time_ms <= t, or -1. */
export function currentIndex(items: TimelineItem[], t: number): number {
  let lo = 0, hi = items.length - 1, ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].time_ms <= t) { ans = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return ans;
}

/** Items in flight at time t (network calls and traces whose [start, start+duration] contains t). */
export function inFlight(items: TimelineItem[], t: number): number[] {
  const out: number[] = [];
  const last = currentIndex(items, t);
  for (let i = last; i >= 0 && i > last - 2000; i--) {
    const it = items[i];
    const d = it.duration_ms ?? 0;
    if (d > 0 && it.time_ms <= t && t <= it.time_ms + d) out.push(i);
  }
  return out.reverse();
}

export function isErrorItem(it: TimelineItem): boolean {
  if (it.kind === 'error') return true;
  if (it.status === 'error') return true;
  if (it.level === 'error' || it.level === 'fatal') return true;
  const st = it.detail && typeof it.detail.status === 'number' ? it.detail.status : null;
  return it.kind === 'network' && st !== null && (st >= 500 || st === 0);
}

export interface ItemFilter { kinds?: Set<string>; text?: string; errorsOnly?: boolean }

export function filterItems(items: TimelineItem[], f: ItemFilter): TimelineItem[] {
  const text = (f.text ?? '').trim().toLowerCase();
  if (!text && !f.errorsOnly && (!f.kinds || f.kinds.size === 0)) return items;
  return items.filter((it) => {
    if (f.kinds && f.kinds.size > 0 && !f.kinds.has(it.kind)) return false;
    if (f.errorsOnly && !isErrorItem(it)) return false;
    if (text) {
      const hay = `${it.label} ${it.service ?? ''} ${it.trace_id ?? ''} ${it.kind}`.toLowerCase();
      if (!hay.includes(text)) return false;
    }
    return true;
  });
}

/** Replay offset (ms from the first replay event) for an absolute time, clamped to [0, total]. */
export function toReplayOffset(timeMs: number, replayStart: number, totalMs: number): number {
  const off = timeMs - replayStart;
  if (!Number.isFinite(off) || off < 0) return 0;
  return Math.min(off, Math.max(0, totalMs));
}

/** Does selecting this item open a waterfall? */
export function opensTrace(it: TimelineItem): boolean {
  return !!it.trace_id && ['network', 'trace', 'log', 'error', 'signal'].includes(it.kind);
}

/** Start/end of the whole session timeline: replay span and item span together. */
export function timeBounds(items: TimelineItem[], extra: number[] = []): { start: number; end: number } {
  let start = Infinity, end = -Infinity;
  for (const t of extra) if (Number.isFinite(t)) { start = Math.min(start, t); end = Math.max(end, t); }
  for (const it of items) {
    start = Math.min(start, it.time_ms);
    end = Math.max(end, it.time_ms + Math.max(0, it.duration_ms ?? 0));
  }
  if (!Number.isFinite(start)) return { start: 0, end: 0 };
  return { start, end };
}
