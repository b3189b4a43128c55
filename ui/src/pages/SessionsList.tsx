// Sessions list: newest first, filters in the URL (shareable), live sessions marked, polled every 5 s.
import { useEffect, useState } from 'preact/hooks';
import { api, type Session, type SessionFilters } from '../api';
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

export function SessionsList({ search }: { search: URLSearchParams }) {
  const f: SessionFilters = {
    q: search.get('q') ?? '', user: search.get('user') ?? '', service: search.get('service') ?? '',
    has_error: (search.get('has_error') ?? '') as SessionFilters['has_error'],
    from: search.get('from') ? Number(search.get('from')) : undefined,
    to: search.get('to') ? Number(search.get('to')) : undefined,
    limit: PAGE, offset: Number(search.get('offset') ?? 0) || 0,
  };
  const res = useLoad((sig) => api.sessions(f, sig), [f]);
  useInterval(() => res.reload(), 5000);
  const [draft, setDraft] = useState({ q: f.q, user: f.user, service: f.service });
  // Back/forward changes the URL: show its filters in the form.
  useEffect(() => setDraft({ q: f.q, user: f.user, service: f.service }), [f.q, f.user, f.service]);

  const apply = (e: Event) => {
    e.preventDefault();
    setQuery({ q: draft.q, user: draft.user, service: draft.service, offset: null }, true);
  };
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
        <button class="btn" type="button" onClick={() => { setDraft({ q: '', user: '', service: '' }); navigate('/'); }}>Clear</button>
      </form>
      {res.error ? <p class="err-text pad">Could not load sessions: {res.error}</p> : null}
      <table class="sessions" data-testid="sessions-table">
        <thead>
          <tr><th>Session</th><th>User</th><th>Started</th><th>Duration</th><th>Services</th>
            <th class="num">Traces</th><th class="num">Spans</th><th class="num">Events</th><th class="num">Errors</th></tr>
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
              </tr>
            );
          })}
        </tbody>
      </table>
      {!res.loading && !sessions.length && !res.error ? (
        <p class="muted pad">No sessions{f.q || f.user || f.service || f.has_error ? ' match these filters' : ' yet: start one with the recorder, the CLI or POST /api/sessions'}.</p>
      ) : null}
      <nav class="pager" aria-label="Pages">
        <button class="btn" disabled={!f.offset} onClick={() => setQuery({ offset: Math.max(0, (f.offset ?? 0) - PAGE) || null }, true)}>← Newer</button>
        <span class="muted">{total ? `${(f.offset ?? 0) + 1}–${(f.offset ?? 0) + sessions.length} of ${total}` : ''}</span>
        <button class="btn" disabled={(f.offset ?? 0) + PAGE >= total} onClick={() => setQuery({ offset: (f.offset ?? 0) + PAGE }, true)}>Older →</button>
      </nav>
    </main>
  );
}
