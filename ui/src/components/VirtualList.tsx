// Fixed-row-height virtualized list: only the rows in view (plus overscan) are in the DOM.
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { scrollToReveal, visibleWindow } from '../lib/virtual';

interface Props {
  count: number;
  rowHeight: number;
  renderRow: (index: number) => ComponentChildren;
  /** Reveal this row when `revealNonce` changes. */
  reveal?: number | null;
  revealNonce?: number;
  class?: string;
  onKeyDown?: (e: KeyboardEvent) => void;
  role?: string;
  label?: string;
  activeId?: string;
  testid?: string;
}

export function VirtualList(p: Props) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);

  useLayoutEffect(() => {
    const el = ref.current!;
    setHeight(el.clientHeight || 400);
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 400));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const el = ref.current;
    if (!el || p.reveal === null || p.reveal === undefined || p.reveal < 0) return;
    const top = scrollToReveal(p.reveal, el.scrollTop, el.clientHeight, p.rowHeight);
    if (top !== null) { el.scrollTop = top; setScrollTop(top); }
  }, [p.revealNonce, p.reveal]);

  const w = visibleWindow(scrollTop, height, p.rowHeight, p.count);
  const rows: ComponentChildren[] = [];
  for (let i = w.first; i < w.last; i++) rows.push(p.renderRow(i));
  return (
    <div
      ref={ref}
      class={`vlist ${p.class ?? ''}`}
      tabIndex={0}
      role={p.role as any}
      aria-label={p.label}
      aria-activedescendant={p.activeId}
      data-testid={p.testid}
      onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
      onKeyDown={p.onKeyDown as any}
    >
      <div style={{ height: `${w.padTop}px` }} />
      {rows}
      <div style={{ height: `${w.padBottom}px` }} />
    </div>
  );
}

/** Shared keyboard handling for list cursors: returns the new index or null when the key is not ours. */
export function listKey(e: KeyboardEvent, index: number, count: number, page = 10): number | null {
  switch (e.key) {
    case 'ArrowDown': case 'j': return Math.min(count - 1, index + 1);
    case 'ArrowUp': case 'k': return Math.max(0, index - 1);
    case 'PageDown': return Math.min(count - 1, index + page);
    case 'PageUp': return Math.max(0, index - page);
    case 'Home': return 0;
    case 'End': return count - 1;
    default: return null;
  }
}
