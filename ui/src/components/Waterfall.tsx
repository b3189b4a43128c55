// Trace waterfall: spans nested by parent, bars on a common time axis, colored by service, errors in red.
// Only visible rows are rendered (VirtualList); arrows move, Left/Right collapse/expand, Enter selects.
import { useMemo, useState } from 'preact/hooks';
import type { Span } from '../api';
import { axisTicks, layoutWaterfall, serviceColor } from '../lib/waterfall';
import { fmtDuration } from '../lib/format';
import { VirtualList, listKey } from './VirtualList';

interface Props {
  spans: Span[];
  selected: string | null;
  onSelect: (s: Span) => void;
  /** Span id of the browser-side network span, to mark its server children. */
  clientSpan?: string | null;
  playhead?: number | null;
}

const ROW = 26;

export function Waterfall({ spans, selected, onSelect, clientSpan, playhead }: Props) {
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const [nonce, setNonce] = useState(0);
  const L = useMemo(() => layoutWaterfall(spans, collapsed), [spans, collapsed]);
  const ticks = useMemo(() => axisTicks(L.duration), [L.duration]);
  const ph = playhead !== null && playhead !== undefined ? (playhead - L.start) / L.duration : -1;
  const showPh = ph >= 0 && ph <= 1;
  const selIdx = useMemo(() => L.rows.findIndex((r) => r.span.span_id === selected), [L, selected]);

  const toggle = (id: string, open?: boolean) => {
    const n = new Set(collapsed);
    const isOpen = !n.has(id);
    if (open === undefined ? isOpen : !open) n.add(id); else n.delete(id);
    setCollapsed(n);
  };

  const onKey = (e: KeyboardEvent) => {
    const n = listKey(e, Math.max(0, selIdx), L.rows.length);
    if (n !== null) { e.preventDefault(); onSelect(L.rows[n].span); setNonce((x) => x + 1); return; }
    const row = L.rows[selIdx];
    if (!row) return;
    if (e.key === 'ArrowLeft' && row.childCount) { e.preventDefault(); toggle(row.span.span_id, false); }
    if (e.key === 'ArrowRight' && row.childCount) { e.preventDefault(); toggle(row.span.span_id, true); }
  };

  return (
    <div class="waterfall" data-testid="waterfall">
      <div class="wf-summary">
        <span><b>{L.spanCount}</b> spans</span>
        <span><b>{L.services.length}</b> services</span>
        <span>{fmtDuration(L.end - L.start)}</span>
        {L.errorCount ? <span class="err-text"><b>{L.errorCount}</b> errors</span> : null}
        <span class="legend">
          {L.services.map((s) => <span class={`svc-tag c${serviceColor(s, L.services)}`} data-testid="wf-service">{s || '(no service)'}</span>)}
        </span>
      </div>
      <div class="wf-head">
        <div class="wf-name-col">Span</div>
        <div class="wf-axis">
          {ticks.map((t) => (
            <span class="tick" style={{ left: `${(t / L.duration) * 100}%` }}>{fmtDuration(t)}</span>
          ))}
        </div>
      </div>
      <VirtualList
        count={L.rows.length} rowHeight={ROW} class="wf-rows" role="tree" label="Spans"
        reveal={selIdx} revealNonce={nonce} onKeyDown={onKey} testid="waterfall-rows"
        activeId={selIdx >= 0 ? `wf-${selIdx}` : undefined}
        renderRow={(i) => {
          const r = L.rows[i];
          const s = r.span;
          const c = serviceColor(s.service, L.services);
          const fromClient = !!clientSpan && s.parent_span_id === clientSpan;
          return (
            <div id={`wf-${i}`} key={s.span_id} role="treeitem" aria-level={r.depth + 1} aria-selected={i === selIdx}
              aria-expanded={r.childCount ? !r.collapsed : undefined}
              class={`wf-row ${i === selIdx ? 'selected' : ''} ${r.error ? 'err' : ''}`} style={{ height: `${ROW}px` }}
              data-span={s.span_id} data-service={s.service ?? ''} onClick={() => onSelect(s)}>
              <div class="wf-name-col" style={{ paddingLeft: `${Math.min(r.depth, 30) * 14 + 4}px` }}>
                {r.childCount ? (
                  <button type="button" class="twisty" tabIndex={-1} aria-label={r.collapsed ? 'Expand' : 'Collapse'}
                    onClick={(e) => { e.stopPropagation(); toggle(s.span_id); }}>{r.collapsed ? '▸' : '▾'}</button>
                ) : <span class="twisty" />}
                <span class={`svc-dot c${c}`} />
                <span class="wf-svc">{s.service}</span>
                <span class="wf-name" title={s.name}>{s.name}</span>
                {r.collapsed ? <span class="muted"> +{r.childCount}</span> : null}
                {fromClient ? <span class="flag net" title="Called by the selected network request (its parent is the browser's span)">from browser</span>
                  : r.orphan ? <span class="flag" title="Parent span not in this trace">orphan</span> : null}
                {r.skew ? <span class="flag" title="Outside its parent's time range: clock skew between services">skew</span> : null}
              </div>
              <div class="wf-track">
                {showPh ? <div class="wf-playhead" style={{ left: `${ph * 100}%` }} /> : null}
                <div class={`wf-bar c${c} ${r.error ? 'err' : ''}`}
                  style={{ left: `${r.left * 100}%`, width: `max(2px, ${r.width * 100}%)` }} />
                <span class="wf-dur mono" style={{ left: `calc(${(r.left + r.width) * 100}% + 4px)` }}>
                  {fmtDuration(s.end_ms - s.start_ms)}
                </span>
              </div>
            </div>
          );
        }}
      />
    </div>
  );
}
