// Below the session's replay and timeline: what its backend picture is missing (completeness) and the
// map of its services' calls. Completeness entries link to the spans concerned; clicking (or Enter on) a
// map edge filters the timeline to the traces of those calls.
import { useMemo } from 'preact/hooks';
import type { Completeness, MapEdge, ServiceMap } from '../api';
import { edgeLabel, layoutMap, NODE_H, NODE_W } from '../lib/servicemap';
import { setQuery } from '../router';
import { fmtOffset } from '../lib/format';

function SpanLink({ trace, span, children }: { trace: string; span?: string; children: preact.ComponentChildren }) {
  return <a href={`?trace=${trace}${span ? `&span=${span}` : ''}`} onClick={(e) => { e.preventDefault(); setQuery({ trace, span: span ?? null }); }}>{children}</a>;
}

export function CompletenessPanel({ facts, origin }: { facts: Completeness; origin: number }) {
  const orphanServices = Object.entries(facts.orphans_by_service);
  const complete = !facts.orphans.length && !facts.untraced_calls.length && !facts.after_stop.length && !facts.skew.length;
  return (
    <section class="panel completeness" data-testid="completeness" aria-label="Completeness">
      <h2>Completeness</h2>
      {complete ? <p class="ok-text small">Complete: every parent span arrived, every browser call has backend spans, nothing arrived after the stop, no clock skew.</p> : null}
      <ul class="facts">
        {orphanServices.length ? (
          <li data-fact="orphans"><b>Orphan spans</b> (their parent never arrived): {orphanServices.map(([service, n]) => <span class="svc-tag">{service} {n}</span>)}
            <ul>{facts.orphans.slice(0, 10).map((o) => <li><SpanLink trace={o.trace_id} span={o.span_id}>{o.service} · {o.name}</SpanLink></li>)}</ul></li>
        ) : null}
        {facts.untraced_calls.length ? (
          <li data-fact="untraced"><b>Browser calls without backend spans</b> (service not instrumented, or its spans were lost):
            <ul>{facts.untraced_calls.map((c) => <li><span class="mono small">{fmtOffset(c.time_ms - origin)}</span> {c.label} <span class="muted mono small">{c.trace_id.slice(0, 12)}…</span></li>)}</ul></li>
        ) : null}
        {facts.after_stop.length ? (
          <li data-fact="after-stop"><b>Spans after the session stopped</b>: {facts.after_stop.length}
            <ul>{facts.after_stop.slice(0, 10).map((s) => <li><SpanLink trace={s.trace_id} span={s.span_id}>{s.service} · {s.name}</SpanLink></li>)}</ul></li>
        ) : null}
        {facts.skew.map((k) => (
          <li data-fact="skew"><b>Clock skew</b> {k.parent_service} → {k.child_service}: up to {k.max_ms.toFixed(1)} ms ({k.spans} span{k.spans === 1 ? '' : 's'}), e.g. <SpanLink trace={k.example.trace_id} span={k.example.span_id}>{k.example.name}</SpanLink></li>
        ))}
      </ul>
      {facts.truncated ? <p class="muted small">Read the first {facts.spans_read} spans only.</p> : null}
    </section>
  );
}

export function ServiceMapPanel({ map, selected, onSelect }: { map: ServiceMap; selected: MapEdge | null; onSelect: (e: MapEdge | null) => void }) {
  const layout = useMemo(() => layoutMap(map), [map]);
  if (!map.nodes.length) return <section class="panel service-map"><h2>Service map</h2><p class="muted small">No spans yet.</p></section>;
  const isSel = (e: MapEdge) => !!selected && selected.from === e.from && selected.to === e.to;
  return (
    <section class="panel service-map" data-testid="service-map" aria-label="Service map">
      <h2>Service map {selected ? <button class="btn small" onClick={() => onSelect(null)}>show all calls ✕</button> : null}</h2>
      <svg viewBox={`0 0 ${Math.max(layout.width, 200)} ${Math.max(layout.height, 60)}`} width="100%" style={{ maxHeight: '320px' }} role="img" aria-label={`Services: ${map.nodes.map((n) => n.service).join(', ')}`}>
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a6" /></marker></defs>
        {layout.edges.map(({ edge, points, label }) => {
          const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x},${p.y}`).join(' ');
          return (
            <g class={`map-edge ${edge.errors ? 'err' : ''} ${isSel(edge) ? 'selected' : ''}`} data-edge={`${edge.from}->${edge.to}`} tabIndex={0} role="button"
              aria-label={`${edge.from} to ${edge.to}: ${edgeLabel(edge)}. Show these calls in the timeline`}
              onClick={() => onSelect(isSel(edge) ? null : edge)} onKeyDown={(e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(isSel(edge) ? null : edge); } }}>
              <path d={d} class="hit" />
              <path d={d} class="line" marker-end="url(#arrow)" />
              <text x={label.x} y={label.y} text-anchor="middle" class="edge-label">{edgeLabel(edge)}</text>
            </g>
          );
        })}
        {layout.nodes.map((n) => (
          <g class={`map-node ${n.errors ? 'err' : ''}`} data-service={n.service}>
            <rect x={n.x - NODE_W / 2} y={n.y - NODE_H / 2} width={NODE_W} height={NODE_H} rx="8" />
            <text x={n.x} y={n.y - 3} text-anchor="middle" class="node-name">{n.service}</text>
            <text x={n.x} y={n.y + 13} text-anchor="middle" class="node-sub">{n.spans} {n.service === 'browser' ? 'calls' : 'spans'}{n.errors ? ` · ${n.errors} err` : ''}</text>
          </g>
        ))}
      </svg>
    </section>
  );
}
