// Session timeline: virtualized, filterable list of frontend actions, network calls, console, errors,
// backend traces and logs. Highlights the item at the playhead; click/Enter seeks and opens its trace.
import { useMemo, useState } from 'preact/hooks';
import type { TimelineItem } from '../api';
import { KINDS, currentIndex, filterItems, inFlight, isErrorItem, itemKey } from '../lib/timeline';
import { fmtDuration, fmtOffset } from '../lib/format';
import { VirtualList, listKey } from './VirtualList';

const ICON: Record<string, string> = {
  click: '●', input: '✎', navigation: '➜', network: '⇄', console: '›', error: '⚠', trace: '≣', log: '≡', signal: '⚡',
};

interface Props {
  items: TimelineItem[];
  origin: number;
  playhead: number | null;
  selectedKey: string | null;
  onSelect: (it: TimelineItem) => void;
}

const ROW = 30;

export function Timeline({ items, origin, playhead, selectedKey, onSelect }: Props) {
  const [kinds, setKinds] = useState<Set<string>>(new Set());
  const [text, setText] = useState('');
  const [errorsOnly, setErrorsOnly] = useState(false);
  const [follow, setFollow] = useState(true);
  const [cursor, setCursor] = useState(-1);
  const [nonce, setNonce] = useState(0);

  const shown = useMemo(() => filterItems(items, { kinds, text, errorsOnly }), [items, kinds, text, errorsOnly]);
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const it of items) c[it.kind] = (c[it.kind] ?? 0) + 1;
    return c;
  }, [items]);
  const cur = playhead === null ? -1 : currentIndex(shown, playhead);
  const flying = useMemo(() => new Set(playhead === null ? [] : inFlight(shown, playhead)), [shown, playhead]);
  const selIdx = useMemo(() => (selectedKey ? shown.findIndex((it) => itemKey(it) === selectedKey) : -1), [shown, selectedKey]);
  const active = cursor >= 0 && cursor < shown.length ? cursor : selIdx;
  const reveal = follow && cur >= 0 ? cur : active;

  const toggleKind = (k: string) => {
    const n = new Set(kinds);
    if (n.has(k)) n.delete(k); else n.add(k);
    setKinds(n);
  };

  const onKey = (e: KeyboardEvent) => {
    const from = active >= 0 ? active : Math.max(0, cur);
    const n = listKey(e, from, shown.length);
    if (n !== null) { e.preventDefault(); setFollow(false); setCursor(n); setNonce((x) => x + 1); return; }
    if ((e.key === 'Enter' || e.key === ' ') && from >= 0 && shown[from]) { e.preventDefault(); onSelect(shown[from]); }
  };

  return (
    <div class="timeline" data-testid="timeline">
      <div class="tl-filters">
        <input type="search" placeholder="Filter timeline…" value={text} aria-label="Filter timeline"
          onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)} />
        <label class="inline"><input type="checkbox" checked={errorsOnly} onChange={(e) => setErrorsOnly((e.currentTarget as HTMLInputElement).checked)} /> errors</label>
        <label class="inline" title="Scroll to the item at the playhead"><input type="checkbox" checked={follow} onChange={(e) => setFollow((e.currentTarget as HTMLInputElement).checked)} /> follow</label>
        <div class="chips" role="group" aria-label="Item kinds">
          {KINDS.filter((k) => counts[k]).map((k) => (
            <button type="button" class={`chip ${kinds.has(k) ? 'on' : ''}`} aria-pressed={kinds.has(k)} onClick={() => toggleKind(k)}>
              {ICON[k]} {k} <span class="muted">{counts[k]}</span>
            </button>
          ))}
        </div>
      </div>
      {shown.length === 0 ? (
        <p class="muted pad">{items.length ? 'No items match the filter.' : 'No timeline items yet.'}</p>
      ) : (
        <VirtualList
          count={shown.length} rowHeight={ROW} class="tl-list" role="listbox" label="Timeline"
          reveal={reveal} revealNonce={follow ? cur * 2 : nonce * 2 + 1} testid="timeline-list"
          activeId={active >= 0 ? `tl-${active}` : undefined}
          onKeyDown={onKey}
          renderRow={(i) => {
            const it = shown[i];
            const err = isErrorItem(it);
            const cls = ['tl-row', `k-${it.kind}`, err ? 'err' : '', i === cur ? 'current' : '', flying.has(i) ? 'flying' : '',
              i === selIdx ? 'selected' : '', i === active ? 'cursor' : ''].join(' ');
            return (
              <div id={`tl-${i}`} key={itemKey(it)} class={cls} style={{ height: `${ROW}px` }} role="option"
                aria-selected={i === selIdx} data-kind={it.kind} data-trace={it.trace_id ?? undefined}
                onClick={() => { setCursor(i); onSelect(it); }} title={it.label}>
                <span class="tl-time mono">{fmtOffset(it.time_ms - origin)}</span>
                <span class="tl-icon" aria-hidden="true">{ICON[it.kind] ?? '•'}</span>
                <span class="tl-kind">{it.kind}</span>
                <span class="tl-label">{it.label}</span>
                {it.service ? <span class="tl-svc">{it.service}</span> : null}
                {it.duration_ms !== null && it.duration_ms !== undefined ? <span class="tl-dur mono">{fmtDuration(it.duration_ms)}</span> : null}
              </div>
            );
          }}
        />
      )}
    </div>
  );
}
