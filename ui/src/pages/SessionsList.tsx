// Sessions list: newest first, filters in the URL (shareable), live sessions marked, polled every 5 s.
// Filters by what the user did too (frustration signals, visited URL, clicked element, console errors,
// failed requests), and shows each session's signal counts.
import { useEffect, useState } from 'preact/hooks';
import { api, type Session, type SessionFilters, type SignalCounts } from '../api';
import { useInterval, useLoad } from '../hooks';
import { navigate, setQuery } from '../router';
import { fmtDuration, fmtTime, fmtUser } from '../lib/format';

const PAGE = 50;

const toLocalInput = (ms: string | null) => {
  if (!ms) return '';
  const d = new Date(Number(ms));
  if (isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (v: string) => (v ? String(new Date(v).getTime()) : '');

export function sessionDuration(s: Session, now = Date.now()): number {
  const end = s.stopped_at_ms ?? (s.live ? now : s.started_at_ms);
  return Math.max(0, end - s.started_at_ms);
}

/** The text inputs of the filter form (applied with Search). */
const TEXT_FILTERS = ['q', 'user', 'service', 'url', 'clicked', 'failed_path', 'failed_status'] as const;
type Draft = Record<(typeof TEXT_FILTERS)[number], string>;

const SIGNAL_LABEL: Record<keyof SignalCounts, string> = { rage: 'rage', dead: 'dead', error: 'error' };

export function SignalBadges({ signals }: { signals?: SignalCounts | null }) {
  if (!signals) return <span class="muted">–</span>;
  const kinds = (Object.keys(SIGNAL_LABEL) as (keyof SignalCounts)[]).filter((k) => signals[k] > 0);
  if (!kinds.length) return <span class="muted">0</span>;
  return (
    <span class="signals">
      {kinds.map((k) => (
        <span class={`sig-badge sig-${k}`} title={`${signals[k]} ${SIGNAL_LABEL[k]} click${signals[k] > 1 ? 's' : ''}`}>
          {SIGNAL_LABEL[k]} {signals[k]}
        </span>
      ))}
    </span>
  );
}

export function SessionsList({ search }: { search: URLSearchParams }) {
  const f: SessionFilters = {
    q: search.get('q') ?? '', user: search.get('user') ?? '', service: search.get('service') ?? '',
    has_error: (search.get('has_error') ?? '') as SessionFilters['has_error'],
    from: search.get('from') ? Number(search.get('from')) : undefined,
    to: search.get('to') ? Number(search.get('to')) : undefined,
    limit: PAGE, offset: Number(search.get('offset') ?? 0) || 0,
    signal: (search.get('signal') ?? '') as SessionFilters['signal'],
    url: search.get('url') ?? '', clicked: search.get('clicked') ?? '',
    console_errors: (search.get('console_errors') ?? '') as SessionFilters['console_errors'],
    failed_requests: (search.get('failed_requests') ?? '') as SessionFilters['failed_requests'],
    failed_path: search.get('failed_path') ?? '', failed_status: search.get('failed_status') ?? '',
  };
  const fromUrl = (): Draft => Object.fromEntries(TEXT_FILTERS.map((k) => [k, (f[k] as string) ?? ''])) as Draft;
  const res = useLoad((sig) => api.sessions(f, sig), [f]);
  useInterval(() => res.reload(), 5000);
  const [draft, setDraft] = useState<Draft>(fromUrl);
  // Back/forward changes the URL: show its filters in the form.
  useEffect(() => setDraft(fromUrl()), TEXT_FILTERS.map((k) => f[k]));

  const apply = (e: Event) => {
    e.preventDefault();
    setQuery({ ...draft, offset: null }, true);
  };
  const text = (key: keyof Draft, placeholder: string, label: string, extra: Record<string, string> = {}) => (
    <input placeholder={placeholder} aria-label={label} value={draft[key]} {...extra}
      onInput={(e) => setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement).value })} />
  );
  const choice = (key: 'signal' | 'console_errors' | 'failed_requests', label: string, options: [string, string][]) => (
    <select aria-label={label} value={f[key]} onChange={(e) => setQuery({ [key]: (e.currentTarget as HTMLSelectElement).value, offset: null }, true)}>
      {options.map(([value, name]) => <option value={value}>{name}</option>)}
    </select>
  );
  const filtered = TEXT_FILTERS.some((k) => f[k]) || f.has_error || f.signal || f.console_errors || f.failed_requests;
  const sessions = res.data?.sessions ?? [];
  const total = res.data?.total ?? 0;

  return (
    <main class="page list-page">
      <form class="filters" onSubmit={apply} role="search" aria-label="Filter sessions">
        <input type="search" placeholder="Search name, id, attributes…" aria-label="Text" value={draft.q}
          onInput={(e) => setDraft({ ...draft, q: (e.currentTarget as HTMLInputElement).value })} />
        <input placeholder="User" aria-label="User" value={draft.user}
          onInput={(e) => setDraft({ ...draft, user: (e.currentTarget as HTMLInputElement).value })} />
        <input placeholder="Service" aria-label="Service" value={draft.service}
          onInput={(e) => setDraft({ ...draft, service: (e.currentTarget as HTMLInputElement).value })} />
        {text('url', 'Visited URL (* wildcards)', 'Visited URL')}
        {text('clicked', 'Clicked (selector or text)', 'Clicked element')}
        {choice('signal', 'Signal', [['', 'any signal'], ['rage', 'rage clicks'], ['dead', 'dead clicks'], ['error', 'error clicks']])}
        {choice('console_errors', 'Console errors', [['', 'any console'], ['true', 'console errors'], ['false', 'no console errors']])}
        {choice('failed_requests', 'Failed requests', [['', 'any requests'], ['true', 'failed requests'], ['false', 'no failed requests']])}
        {text('failed_path', 'Failed path, e.g. /api/pay', 'Failed request path')}
        {text('failed_status', 'Status', 'Failed request status', { class: 'narrow', inputMode: 'numeric' })}
        <select aria-label="Errors" value={f.has_error} onChange={(e) => setQuery({ has_error: (e.currentTarget as HTMLSelectElement).value, offset: null }, true)}>
          <option value="">any errors</option>
          <option value="true">with errors</option>
          <option value="false">without errors</option>
        </select>
        <label class="inline small">from <input type="datetime-local" aria-label="From" value={toLocalInput(search.get('from'))}
          onChange={(e) => setQuery({ from: fromLocalInput((e.currentTarget as HTMLInputElement).value), offset: null }, true)} /></label>
        <label class="inline small">to <input type="datetime-local" aria-label="To" value={toLocalInput(search.get('to'))}
          onChange={(e) => setQuery({ to: fromLocalInput((e.currentTarget as HTMLInputElement).value), offset: null }, true)} /></label>
        <button class="btn primary" type="submit">Search</button>
        <button class="btn" type="button" onClick={() => { setDraft(Object.fromEntries(TEXT_FILTERS.map((k) => [k, ''])) as Draft); navigate('/'); }}>Clear</button>
      </form>
      {res.error ? <p class="err-text pad">Could not load sessions: {res.error}</p> : null}
      <table class="sessions" data-testid="sessions-table">
        <thead>
          <tr><th>Session</th><th>User</th><th>Started</th><th>Duration</th><th>Services</th>
            <th class="num">Traces</th><th class="num">Spans</th><th class="num">Events</th><th class="num">Errors</th><th>Signals</th></tr>
        </thead>
        <tbody>
          {sessions.map((s) => {
            const href = `/sessions/${s.id}`;
            const c = s.counts ?? {};
            return (
              <tr class={`${c.errors ? 'has-err' : ''}`} data-session={s.id} onClick={(e) => {
                if ((e.target as Element).closest('a')) return;
                navigate(href);
              }}>
                <td>
                  <a href={href} class="sess-name">{s.name || `session ${s.short_id}`}</a>
                  {s.live ? <span class="live" title="Still recording">● live</span> : null}
                  <div class="muted small mono">{s.short_id} · {s.kind}</div>
                </td>
                <td>{fmtUser(s.user)}</td>
                <td class="nowrap">{fmtTime(s.started_at_ms)}</td>
                <td class="nowrap">{fmtDuration(sessionDuration(s))}</td>
                <td>{(s.services ?? []).map((x) => <span class="svc-tag">{x}</span>)}</td>
                <td class="num">{c.traces ?? 0}</td>
                <td class="num">{c.spans ?? 0}</td>
                <td class="num">{c.events ?? 0}</td>
                <td class={`num ${c.errors ? 'err-text' : ''}`}>{c.errors ?? 0}</td>
                <td data-testid="signals"><SignalBadges signals={s.signals} /></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {!res.loading && !sessions.length && !res.error ? (
        <p class="muted pad">No sessions{filtered ? ' match these filters' : ' yet: start one with the recorder, the CLI or POST /api/sessions'}.</p>
      ) : null}
      <nav class="pager" aria-label="Pages">
        <button class="btn" disabled={!f.offset} onClick={() => setQuery({ offset: Math.max(0, (f.offset ?? 0) - PAGE) || null }, true)}>← Newer</button>
        <span class="muted">{total ? `${(f.offset ?? 0) + 1}–${(f.offset ?? 0) + sessions.length} of ${total}` : ''}</span>
        <button class="btn" disabled={(f.offset ?? 0) + PAGE >= total} onClick={() => setQuery({ offset: (f.offset ?? 0) + PAGE }, true)}>Older →</button>
      </nav>
    </main>
  );
}
