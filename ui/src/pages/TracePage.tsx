// Trace page: /traces/{trace_id}, with a box to paste a trace id (from a log line or an x-trace-id header);
// /traces alone is the trace search. Below the waterfall, the map of the trace's calls between services.
import { useState } from 'preact/hooks';
import { api, type MapEdge } from '../api';
import { useLoad } from '../hooks';
import { navigate, setQuery } from '../router';
import { ServiceMapPanel } from '../components/SessionInsights';
import { TraceView } from '../components/TraceView';
import { normalizeTraceId } from '../lib/route';
import { TraceSearch } from './TraceSearch';

export function TraceIdForm({ initial = '', compact = false }: { initial?: string; compact?: boolean }) {
  const [v, setV] = useState(initial);
  return (
    <form class={`trace-form ${compact ? 'compact' : ''}`} role="search" aria-label="Open a trace by id"
      onSubmit={(e) => { e.preventDefault(); const id = normalizeTraceId(v); if (id) navigate(`/traces/${id}`); }}>
      <input class="mono" placeholder="Paste a trace id or traceparent…" aria-label="Trace id" value={v}
        onInput={(e) => setV((e.currentTarget as HTMLInputElement).value)} />
      <button class="btn" type="submit">Open trace</button>
    </form>
  );
}

/** The trace's service map (`GET /api/traces/{id}/map`); selecting an edge highlights it. */
function TraceMap({ traceId }: { traceId: string }) {
  const map = useLoad((sig) => api.traceMap(traceId, sig), [traceId]);
  const [edge, setEdge] = useState<MapEdge | null>(null);
  if (!map.data) return null;
  return <div class="insights"><ServiceMapPanel map={map.data.map} selected={edge} onSelect={setEdge} /></div>;
}

export function TracePage({ traceId, search }: { traceId: string; search: URLSearchParams }) {
  return (
    <main class="page trace-page">
      <TraceIdForm key={traceId} initial={traceId} />
      {traceId ? (
        <>
          <TraceView key={traceId} traceId={traceId} spanId={search.get('span')} showSessionLink
            onSelectSpan={(s) => setQuery({ span: s })} />
          <TraceMap key={`map-${traceId}`} traceId={traceId} />
        </>
      ) : <TraceSearch search={search} />}
    </main>
  );
}
