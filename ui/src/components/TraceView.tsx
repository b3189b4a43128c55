// One trace: waterfall + details panel + logs, loaded from GET /api/traces/{id} and GET /api/logs?trace_id=.
// Polls while `live` (spans of a running session keep arriving).
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { api, type Span, type TimelineItem } from '../api';
import { useInterval, useLoad } from '../hooks';
import { Waterfall } from './Waterfall';
import { LogsList, NetworkDetails, SpanDetails } from './SpanDetails';
import { fmtTime } from '../lib/format';

interface Props {
  traceId: string;
  spanId: string | null;
  onSelectSpan: (id: string | null) => void;
  /** Timeline item that opened this trace (network call: shows the browser side too). */
  item?: TimelineItem | null;
  /** Changes when the session got new data (live sessions): the trace and its logs are refetched. */
  version?: string;
  showSessionLink?: boolean;
  /** Replay playhead (absolute ms), drawn as a line on the waterfall when inside the trace. */
  playhead?: number | null;
}

export function TraceView({ traceId, spanId, onSelectSpan, item, version, showSessionLink, playhead }: Props) {
  const trace = useLoad((sig) => api.trace(traceId, sig), [traceId]);
  const logs = useLoad((sig) => api.logs({ trace_id: traceId, limit: 5000 }, sig), [traceId]);
  // Refetch when the live session reports new data, and poll while the trace is not there yet.
  const waiting = !!trace.error && /^404/.test(trace.error);
  const seen = useRef(version);
  useEffect(() => {
    if (version === seen.current) return;
    seen.current = version;
    trace.reload(); logs.reload();
  }, [version]);
  useInterval(() => { trace.reload(); logs.reload(); }, waiting ? 3000 : null);

  const spans: Span[] = trace.data?.spans ?? [];
  const clientSpan = item?.kind === 'network' ? item.span_id ?? null : null;
  const traceStart = useMemo(() => spans.reduce((m, s) => Math.min(m, s.start_ms), Infinity), [spans]);
  // Default selection: the server span the network call reached, else the earliest root.
  const defaultSpan = useMemo(() => {
    if (!spans.length) return null;
    const hit = clientSpan ? spans.find((s) => s.parent_span_id === clientSpan) : undefined;
    if (hit) return hit.span_id;
    const ids = new Set(spans.map((s) => s.span_id));
    const roots = spans.filter((s) => !s.parent_span_id || !ids.has(s.parent_span_id));
    return (roots.sort((a, b) => a.start_ms - b.start_ms)[0] ?? spans[0]).span_id;
  }, [spans, clientSpan]);
  const sel = spans.find((s) => s.span_id === spanId) ?? spans.find((s) => s.span_id === defaultSpan) ?? null;
  useEffect(() => {
    if (!spanId && defaultSpan) onSelectSpan(defaultSpan);
  }, [defaultSpan, spanId]);

  return (
    <section class="trace-view" data-testid="trace-view" aria-label={`Trace ${traceId}`}>
      <header class="tv-head">
        <h2>Trace <span class="mono">{traceId}</span></h2>
        <a class="small" href={`/traces/${traceId}`} title="Shareable link to this trace">open trace page</a>
        {showSessionLink && trace.data?.session_id ? <a class="small" href={`/sessions/${trace.data.session_id}`}>open session</a> : null}
        {trace.loading ? <span class="muted small">loading…</span> : null}
        {spans.length ? <span class="muted small">{fmtTime(traceStart)}</span> : null}
      </header>
      {trace.error && !spans.length ? (
        <div class="pad">
          <p class={waiting ? 'muted' : 'err-text'}>{waiting ? 'No backend spans for this trace yet (the services may not have exported them, or are not instrumented). Retrying…' : trace.error}</p>
          {item?.kind === 'network' ? <NetworkDetails item={item} /> : null}
          {logs.data?.logs.length ? <LogsList logs={logs.data.logs} /> : null}
        </div>
      ) : (
        <div class="tv-body">
          <div class="tv-left">
            {spans.length ? <Waterfall spans={spans} selected={sel?.span_id ?? null} onSelect={(s) => onSelectSpan(s.span_id)} clientSpan={clientSpan} playhead={playhead ?? null} /> : null}
          </div>
          <div class="tv-right">
            {item?.kind === 'network' ? <details class="section"><summary>Browser side of {item.label}</summary><NetworkDetails item={item} /></details> : null}
            {sel ? <SpanDetails span={sel} traceStart={traceStart} logs={logs.data?.logs ?? []} /> : null}
          </div>
        </div>
      )}
    </section>
  );
}
