// Session page: replay beside the timeline (synced both ways), the selected trace's waterfall below.
// The selected trace/span live in the URL (?trace=&span=) so the view is shareable; live sessions poll.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type MapEdge, type Session, type TimelineItem } from '../api';
import { useInterval, useLoad } from '../hooks';
import { setQuery } from '../router';
import { itemKey, mergeTimeline, opensTrace } from '../lib/timeline';
import { fmtDuration, fmtTime, fmtUser } from '../lib/format';
import { Replay, canReplay, type ReplayControl } from '../components/Replay';
import { ExportButtons } from '../components/ExportButtons';
import { CompletenessPanel, ServiceMapPanel } from '../components/SessionInsights';
import { MetricsPanel } from '../components/MetricsPanel';
import { Timeline } from '../components/Timeline';
import { TraceView } from '../components/TraceView';
import { sessionDuration } from './SessionsList';
import { momentOf, momentParam } from '../lib/moment';

export function SessionPage({ id, search }: { id: string; search: URLSearchParams }) {
  const tl = useLoad((sig) => api.timeline(id, sig), [id]);
  const ev = useLoad((sig) => api.events(id, sig), [id]);
  const session = tl.data?.session ?? null;
  const live = !!session?.live;
  // Live: poll the cheap session object; refetch the timeline/events only when its counts change.
  const [counts, setCounts] = useState<string>('');
  const countsKey = (s: Session) => { const c = s.counts ?? {}; return `${c.events}|${c.spans}|${c.logs}|${c.traces}|${c.errors}|${s.live}`; };
  useEffect(() => { if (session) setCounts(countsKey(session)); }, [tl.data]);
  useInterval(() => {
    api.session(id).then((s) => {
      const k = countsKey(s);
      if (k === counts) return;
      if (s.counts?.events !== session?.counts?.events) ev.reload();
      tl.reload();
      setCounts(k);
    }, () => { /* transient: retry next tick */ });
  }, live ? 2500 : null);

  const items = useMemo(() => mergeTimeline(tl.data?.items ?? []), [tl.data]);
  // Completeness and the service map: loaded once, and again when a live session's counts change.
  const analysis = useLoad((sig) => api.analysis(id, sig), [id, counts]);
  const [edge, setEdge] = useState<MapEdge | null>(null);
  // The metrics window ends at the stop, or (live) at the last time the counts changed.
  const metricsTo = useMemo(() => session?.stopped_at_ms ?? Date.now(), [session?.stopped_at_ms, counts]);
  const shownItems = useMemo(
    () => (edge ? items.filter((it) => it.trace_id && edge.trace_ids.includes(it.trace_id)) : items),
    [items, edge],
  );
  const events = ev.data?.events ?? [];
  const replayStart = useMemo(() => {
    let m = Infinity;
    for (const e of events) if (e && typeof e.timestamp === 'number' && e.timestamp < m) m = e.timestamp;
    return m;
  }, [ev.data]);
  const origin = Number.isFinite(replayStart) ? replayStart : session?.started_at_ms ?? items[0]?.time_ms ?? 0;

  const ctl = useRef<ReplayControl | null>(null);
  const [playhead, setPlayhead] = useState<number | null>(null);
  const [selKey, setSelKey] = useState<string | null>(null);
  const traceId = search.get('trace');
  const spanId = search.get('span');

  // The item that opened the current trace (for the browser-side view), also after a reload of a shared URL.
  const selItem = useMemo<TimelineItem | null>(() => {
    const byKey = selKey ? items.find((it) => itemKey(it) === selKey) : undefined;
    if (byKey) return byKey;
    if (!traceId) return null;
    return items.find((it) => it.trace_id === traceId && it.kind === 'network') ?? items.find((it) => it.trace_id === traceId) ?? null;
  }, [items, selKey, traceId]);

  const select = (it: TimelineItem) => {
    setSelKey(itemKey(it));
    setPlayhead(it.time_ms);
    ctl.current?.seek(it.time_ms);
    if (opensTrace(it) && it.trace_id) {
      // A log, error or signal item points at a real span (a signal's: its trace's error or slowest span);
      // a network item's span id is the browser's (not in the trace).
      const span = it.kind === 'log' || it.kind === 'error' || it.kind === 'signal' ? it.span_id ?? null : null;
      if (it.trace_id !== traceId || span) setQuery({ trace: it.trace_id, span });
    }
  };

  // `?t=` (a link to a moment): once the replay and the timeline are loaded, seek there once.
  const tParam = search.get('t');
  const applied = useRef<string | null>(null);
  useEffect(() => {
    if (!tl.data || ev.loading || applied.current === tParam) return;
    applied.current = tParam;
    const at = momentOf(tParam, origin);
    if (at === null) return;
    setPlayhead(at);
    ctl.current?.seek(at);
  }, [tl.data, ev.loading, tParam, origin]);
  const [linkNote, setLinkNote] = useState<string | null>(null);
  const copyMoment = async () => {
    const u = new URL(location.href);
    u.searchParams.set('t', momentParam(playhead ?? origin, origin));
    try {
      await navigator.clipboard.writeText(u.toString());
      setLinkNote(`Copied link at +${u.searchParams.get('t')}s`);
    } catch {
      setLinkNote(u.toString()); // no clipboard (plain http): show it to copy by hand
    }
    history.replaceState(history.state, '', u.pathname + u.search);
  };

  // Space toggles play/pause when focus is not in a control.
  useEffect(() => {
    const k = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (e.key !== ' ' || /INPUT|SELECT|TEXTAREA|BUTTON/.test(t.tagName) || t.closest('[role=listbox],[role=tree]')) return;
      e.preventDefault();
      ctl.current?.toggle();
    };
    window.addEventListener('keydown', k);
    return () => window.removeEventListener('keydown', k);
  }, []);

  useEffect(() => {
    if (session) document.title = `${session.name || session.short_id} · sessiontrace`;
    return () => { document.title = 'sessiontrace'; };
  }, [session?.name, session?.short_id]);

  if (tl.error && !tl.data) return <main class="page"><p class="err-text pad">Could not load session {id}: {tl.error}</p></main>;
  if (!session) return <main class="page"><p class="muted pad">Loading session…</p></main>;
  const c = session.counts ?? {};
  const hasReplay = canReplay(events);

  return (
    <main class="page session-page">
      <header class="session-head">
        <h1>{session.name || `session ${session.short_id}`}</h1>
        {live ? <span class="live" title="Still recording: updates every few seconds">● live</span> : null}
        <span class="muted mono small" title="session id">{session.short_id}</span>
        <span class="small">{session.kind}</span>
        {fmtUser(session.user) ? <span class="small">user <b>{fmtUser(session.user)}</b></span> : null}
        <span class="small">{fmtTime(session.started_at_ms)} · {fmtDuration(sessionDuration(session))}</span>
        <span class="small">{c.traces ?? 0} traces · {c.spans ?? 0} spans · {c.events ?? 0} events · {c.logs ?? 0} logs · <span class={c.errors ? 'err-text' : ''}>{c.errors ?? 0} errors</span></span>
        <span class="small">{(session.services ?? []).map((s) => <span class="svc-tag">{s}</span>)}</span>
        <span class="small">
          <button type="button" class="btn" onClick={copyMoment} title="A link that opens this session at the replay's current time (?t=)">Copy link at this moment</button>
          {linkNote ? <span class="muted small" role="status" data-testid="moment-status"> {linkNote}</span> : null}
        </span>
        <ExportButtons id={session.short_id} />
      </header>
      <div class={`session-grid ${hasReplay ? '' : 'no-replay'}`}>
        <div class="replay-col">
          {ev.loading && !ev.data ? <p class="muted pad">Loading replay…</p> : <Replay key={id} events={events} onTime={setPlayhead} control={ctl} />}
        </div>
        <div class="timeline-col">
          {edge ? <p class="small timeline-filter" data-testid="edge-filter">Calls {edge.from} → {edge.to} only <button class="btn small" onClick={() => setEdge(null)}>show all ✕</button></p> : null}
          <Timeline items={shownItems} origin={origin} playhead={playhead} selectedKey={selItem ? itemKey(selItem) : null} onSelect={select} />
        </div>
      </div>
      {traceId ? (
        <TraceView key={traceId} traceId={traceId} spanId={spanId} item={selItem} version={live ? counts : undefined} playhead={playhead}
          onSelectSpan={(s) => setQuery({ span: s })} />
      ) : (
        <p class="muted pad hint">Select a network call or a trace in the timeline to see its waterfall across services.</p>
      )}
      {analysis.data ? (
        <div class="insights">
          <CompletenessPanel facts={analysis.data.completeness} origin={origin} />
          <ServiceMapPanel map={analysis.data.map} selected={edge} onSelect={setEdge} />
        </div>
      ) : analysis.error ? <p class="err-text pad small">Could not load the completeness and service map: {analysis.error}</p> : null}
      <div class="insights-wide">
        <MetricsPanel id={session.id} from={session.started_at_ms} to={metricsTo} playhead={playhead} version={live ? counts : undefined} />
      </div>
    </main>
  );
}
