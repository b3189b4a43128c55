// Trace search (/traces): every stored trace — errors, slow and sampled ones, not only those of sessions —
// by service, operation, status, trace duration, a `key=value` attribute, a TraceQL expression and a time
// range; newest first, in pages ("Older"). The filters live in the URL, so a search is a shareable link.
// Each result opens its trace; a trace recorded in a session links to that session.
import { useEffect, useState } from 'preact/hooks';
import { api, type FoundTrace, type TraceSearchFilters } from '../api';
import { useLoad } from '../hooks';
import { navigate, setQuery } from '../router';
import { fmtDuration, fmtTime } from '../lib/format';

/** Time ranges offered, in minutes back from now (0: all time). */
const RANGES: [string, number][] = [['last 15 min', 15], ['last hour', 60], ['last 6 hours', 360], ['last 24 hours', 1440], ['last 7 days', 10080], ['all time', 0]];

export function filtersOf(search: URLSearchParams, now: number): TraceSearchFilters {
  const range = Number(search.get('range') ?? 60);
  const get = (k: string) => search.get(k) ?? '';
  return {
    q: get('q'), service: get('service'), operation: get('operation'),
    status: (['error', 'ok'].includes(get('status')) ? get('status') : '') as TraceSearchFilters['status'],
    min_ms: get('min_ms'), max_ms: get('max_ms'), attr: get('attr'),
    from: range > 0 ? now - range * 60_000 : undefined,
  };
}

const FIELDS = ['service', 'operation', 'status', 'min_ms', 'max_ms', 'attr', 'q', 'range'] as const;

export function TraceSearch({ search }: { search: URLSearchParams }) {
  const key = FIELDS.map((k) => `${k}=${search.get(k) ?? ''}`).join('&');
  const [draft, setDraft] = useState<Record<string, string>>({});
  useEffect(() => { setDraft(Object.fromEntries(FIELDS.map((k) => [k, search.get(k) ?? '']))); }, [key]);
  const [pages, setPages] = useState<{ traces: FoundTrace[]; next: string | null }>({ traces: [], next: null });
  const [more, setMore] = useState<{ loading: boolean; error: string | null }>({ loading: false, error: null });
  const first = useLoad((sig) => api.searchTraces(filtersOf(search, Date.now()), null, sig), [key]);
  useEffect(() => { if (first.data) setPages({ traces: first.data.traces, next: first.data.next_cursor }); }, [first.data]);
  const services = useLoad((sig) => api.traceServices(sig), []);

  const loadOlder = async () => {
    if (!pages.next) return;
    setMore({ loading: true, error: null });
    try {
      const page = await api.searchTraces(filtersOf(search, Date.now()), pages.next);
      setPages((p) => ({ traces: [...p.traces, ...page.traces], next: page.next_cursor }));
      setMore({ loading: false, error: null });
    } catch (e) {
      setMore({ loading: false, error: String((e as Error)?.message ?? e) });
    }
  };
  const submit = (e: Event) => {
    e.preventDefault();
    setQuery(Object.fromEntries(FIELDS.map((k) => [k, draft[k] || null])), true);
  };
  const field = (k: (typeof FIELDS)[number]) => ({
    value: draft[k] ?? '',
    onInput: (e: Event) => setDraft((d) => ({ ...d, [k]: (e.currentTarget as HTMLInputElement).value })),
  });
  const open = (t: FoundTrace) => navigate(`/traces/${t.trace_id}`);

  return (
    <section class="trace-search" aria-label="Search traces">
      <form class="filters" role="search" aria-label="Trace filters" onSubmit={submit}>
        <input list="trace-services" placeholder="service" aria-label="Service" {...field('service')} />
        <datalist id="trace-services">{(services.data?.services ?? []).map((s) => <option value={s} />)}</datalist>
        <input placeholder="operation" aria-label="Operation" {...field('operation')} />
        <select aria-label="Status" value={draft.status ?? ''} onChange={(e) => setDraft((d) => ({ ...d, status: (e.currentTarget as HTMLSelectElement).value }))}>
          <option value="">any status</option>
          <option value="error">status = error</option>
          <option value="ok">no error</option>
        </select>
        <input class="num-in" inputMode="decimal" placeholder="min ms" aria-label="Minimum duration (ms)" {...field('min_ms')} />
        <input class="num-in" inputMode="decimal" placeholder="max ms" aria-label="Maximum duration (ms)" {...field('max_ms')} />
        <input placeholder="attribute key=value" aria-label="Attribute" {...field('attr')} />
        <input class="mono traceql" placeholder='TraceQL, e.g. { span.http.status_code >= 500 }' aria-label="TraceQL" {...field('q')} />
        <select aria-label="Time range" value={draft.range || '60'} onChange={(e) => setDraft((d) => ({ ...d, range: (e.currentTarget as HTMLSelectElement).value }))}>
          {RANGES.map(([label, minutes]) => <option value={String(minutes)}>{label}</option>)}
        </select>
        <button class="btn primary" type="submit">Search</button>
        <button class="btn" type="button" onClick={() => navigate('/traces')}>Clear</button>
      </form>
      {first.error ? <p class="err-text pad" role="alert">Search failed: {first.error}</p> : null}
      <table class="sessions traces-found" data-testid="trace-results">
        <thead>
          <tr><th>Started</th><th>Root</th><th class="num">Duration</th><th class="num">Spans</th><th class="num">Errors</th><th>Services</th><th>Session</th></tr>
        </thead>
        <tbody>
          {pages.traces.map((t) => (
            <tr class={t.error_count ? 'has-err' : ''} data-trace={t.trace_id} tabIndex={0} onClick={(e) => {
              if ((e.target as Element).closest('a')) return;
              open(t);
            }} onKeyDown={(e) => { if (e.key === 'Enter') open(t); }}>
              <td class="nowrap">{fmtTime(t.start_ms)}</td>
              <td>
                <a href={`/traces/${t.trace_id}`}><b>{t.root_service ?? '?'}</b> {t.root_name ?? '(root not received)'}</a>
                <div class="muted small mono">{t.trace_id}</div>
              </td>
              <td class="num nowrap">{fmtDuration(t.duration_ms)}</td>
              <td class="num">{t.span_count}</td>
              <td class={`num ${t.error_count ? 'err-text' : ''}`}>{t.error_count}</td>
              <td>{(t.services ?? []).map((s) => <span class="svc-tag">{s}</span>)}</td>
              <td>{t.session ? <a href={`/sessions/${t.session.id}?trace=${t.trace_id}`}>{t.session.name || t.session.short_id}</a> : <span class="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!first.loading && !first.error && !pages.traces.length ? <p class="muted pad">No trace matches these filters in this time range.</p> : null}
      {first.loading && !pages.traces.length ? <p class="muted pad">Searching…</p> : null}
      <nav class="pager" aria-label="Pages">
        {pages.next ? <button class="btn" disabled={more.loading} onClick={loadOlder}>Older →</button> : null}
        {first.data?.capped ? <span class="muted small">The search read its limit of candidate traces: narrow the time range or the filters to see all.</span> : null}
        {more.error ? <span class="err-text">{more.error}</span> : null}
      </nav>
    </section>
  );
}
