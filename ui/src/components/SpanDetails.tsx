// Details of one span: request/response headers and bodies (pretty JSON), attributes, events, links,
// resource, and the logs of that span (or the whole trace). Also renders a browser-side network call.
import { useState } from 'preact/hooks';
import type { LogRecord, Span, TimelineItem } from '../api';
import { attrValue, fmtDuration, fmtTime, prettyBody, splitCapture } from '../lib/format';
import { spanIsError } from '../lib/waterfall';

function KV({ rows, testid }: { rows: [string, unknown][]; testid?: string }) {
  if (!rows.length) return <p class="muted">none</p>;
  return (
    <table class="kv" data-testid={testid}>
      <tbody>
        {rows.map(([k, v]) => <tr><th>{k}</th><td class="mono">{attrValue(v)}</td></tr>)}
      </tbody>
    </table>
  );
}

function Body({ body, truncated, label }: { body?: string; truncated?: boolean; label: string }) {
  if (body === undefined || body === null || body === '') return null;
  return (
    <div class="body">
      <div class="muted small">{label}{truncated ? ' (truncated at the size limit)' : ''}</div>
      <pre class="mono" data-testid="body">{prettyBody(body)}</pre>
    </div>
  );
}

function Section({ title, children, open = true }: { title: string; children: any; open?: boolean }) {
  return <details class="section" open={open}><summary>{title}</summary>{children}</details>;
}

const logText = (b: unknown) => (typeof b === 'string' ? b : JSON.stringify(b));

export function LogsList({ logs }: { logs: LogRecord[] }) {
  if (!logs.length) return <p class="muted">No logs.</p>;
  return (
    <div class="logs" data-testid="logs">
      {logs.slice(0, 2000).map((l) => (
        <div class={`log-row sev-${(l.severity_text ?? '').toLowerCase()}`}>
          <span class="mono muted">{fmtTime(l.time_ms).slice(11)}</span>
          <span class="sev">{l.severity_text || l.severity_number || ''}</span>
          <span class="tl-svc">{l.service}</span>
          <span class="mono log-body">{logText(l.body)}</span>
        </div>
      ))}
      {logs.length > 2000 ? <p class="muted">…{logs.length - 2000} more</p> : null}
    </div>
  );
}

export function SpanDetails({ span, traceStart, logs }: { span: Span; traceStart: number; logs: LogRecord[] }) {
  const [allLogs, setAllLogs] = useState(false);
  const cap = splitCapture(span.attributes);
  const a = span.attributes ?? {};
  const method = a['http.request.method'] ?? a['http.method'];
  const url = a['url.full'] ?? a['http.url'] ?? a['url.path'] ?? a['http.target'] ?? a['http.route'];
  const status = a['http.response.status_code'] ?? a['http.status_code'];
  const spanLogs = logs.filter((l) => l.span_id === span.span_id);
  const hasHttp = cap.requestHeaders.length || cap.responseHeaders.length || cap.requestBody || cap.responseBody || method;
  return (
    <div class="details" data-testid="span-details">
      <h3 class={spanIsError(span) ? 'err-text' : ''}>{span.name}</h3>
      <div class="meta-grid">
        <span>service</span><b>{span.service}</b>
        <span>kind</span><b>{span.kind}</b>
        <span>duration</span><b>{fmtDuration(span.end_ms - span.start_ms)}</b>
        <span>starts at</span><b>+{fmtDuration(span.start_ms - traceStart)}</b>
        <span>status</span><b class={spanIsError(span) ? 'err-text' : ''}>{span.status?.code ?? 'unset'}{span.status?.message ? `: ${span.status.message}` : ''}</b>
        <span>span id</span><b class="mono">{span.span_id}</b>
        <span>parent</span><b class="mono">{span.parent_span_id ?? '—'}</b>
      </div>
      {hasHttp ? (
        <Section title="HTTP">
          {method || url ? <p class="mono">{String(method ?? '')} {String(url ?? '')} {status !== undefined ? `→ ${status}` : ''}</p> : null}
          <h4>Request headers</h4>
          <KV rows={cap.requestHeaders} testid="req-headers" />
          <Body body={cap.requestBody} truncated={cap.requestTruncated} label="Request body" />
          <h4>Response headers</h4>
          <KV rows={cap.responseHeaders} testid="resp-headers" />
          <Body body={cap.responseBody} truncated={cap.responseTruncated} label="Response body" />
        </Section>
      ) : null}
      <Section title={`Attributes (${cap.rest.length})`}><KV rows={cap.rest} testid="attributes" /></Section>
      {span.events?.length ? (
        <Section title={`Events (${span.events.length})`}>
          {span.events.map((e) => (
            <div class={`span-event ${e.name === 'exception' ? 'err' : ''}`}>
              <div><b>{e.name}</b> <span class="muted">+{fmtDuration(e.time_ms - span.start_ms)}</span></div>
              {Object.entries(e.attributes ?? {}).map(([k, v]) =>
                k === 'exception.stacktrace' ? <pre class="mono small">{String(v)}</pre> : <div class="small"><span class="muted">{k}</span> <span class="mono">{attrValue(v)}</span></div>)}
            </div>
          ))}
        </Section>
      ) : null}
      {span.links?.length ? (
        <Section title={`Links (${span.links.length})`}>
          {span.links.map((l) => <div class="mono small"><a href={`/traces/${l.trace_id}?span=${l.span_id}`}>{l.trace_id} / {l.span_id}</a></div>)}
        </Section>
      ) : null}
      <Section title={`Logs (${allLogs ? logs.length : spanLogs.length})`}>
        <label class="inline small"><input type="checkbox" checked={allLogs} onChange={(e) => setAllLogs((e.currentTarget as HTMLInputElement).checked)} /> whole trace</label>
        <LogsList logs={allLogs ? logs : spanLogs} />
      </Section>
      <Section title="Resource" open={false}><KV rows={Object.entries(span.resource ?? {})} /></Section>
      {span.scope?.name ? <p class="muted small">scope {span.scope.name} {span.scope.version}</p> : null}
    </div>
  );
}

/** The browser's view of a network call (from the recorder's sessiontrace/network event). */
export function NetworkDetails({ item }: { item: TimelineItem }) {
  const d = (item.detail ?? {}) as Record<string, any>;
  const req = d.request ?? {}, resp = d.response ?? {};
  const hdrs = (h: unknown): [string, unknown][] => (h && typeof h === 'object' ? Object.entries(h as object) : []);
  return (
    <div class="details" data-testid="network-details">
      <h3 class={d.error || (typeof d.status === 'number' && d.status >= 500) ? 'err-text' : ''}>{item.label}</h3>
      <div class="meta-grid">
        <span>method</span><b>{d.method}</b>
        <span>url</span><b class="mono">{d.url}</b>
        <span>status</span><b>{d.status}</b>
        <span>duration</span><b>{fmtDuration(item.duration_ms ?? d.duration_ms)}</b>
        <span>trace id</span><b class="mono">{item.trace_id}</b>
        {d.error ? <><span>error</span><b class="err-text">{String(d.error)}</b></> : null}
      </div>
      <Section title="Browser request">
        <KV rows={hdrs(req.headers)} />
        <Body body={req.body} label="Request body" />
      </Section>
      <Section title="Browser response">
        <KV rows={hdrs(resp.headers)} />
        <Body body={resp.body} label="Response body" />
      </Section>
    </div>
  );
}
