// "Copy for AI" and "Download" on the session page: the server's export of the session (markdown for an
// assistant or a ticket, JSON for tools), masked and within its token budget, from /api/sessions/{id}/export.
import { useState } from 'preact/hooks';
import { api } from '../api';

/** Copies text; falls back to a selected textarea where the Clipboard API is unavailable (plain http). */
async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement('textarea');
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  if (!ok) throw new Error('the browser refused to copy');
}

function download(text: string, name: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

const kb = (text: string) => `${(new Blob([text]).size / 1024).toFixed(1)} KB`;

export function ExportButtons({ id }: { id: string }) {
  const [status, setStatus] = useState<{ text: string; error?: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (what: 'copy' | 'md' | 'json') => {
    setBusy(true);
    setStatus(null);
    try {
      const text = await api.exportSession(id, what === 'json' ? 'json' : 'md');
      if (what === 'copy') {
        await copyText(text);
        setStatus({ text: `Copied ${kb(text)} of markdown: paste it into your assistant or ticket` });
      } else if (what === 'md') {
        download(text, `session-${id}.md`, 'text/markdown');
        setStatus({ text: `Downloaded session-${id}.md (${kb(text)})` });
      } else {
        download(text, `session-${id}.json`, 'application/json');
        setStatus({ text: `Downloaded session-${id}.json (${kb(text)})` });
      }
    } catch (e) {
      setStatus({ text: `Export failed: ${(e as Error)?.message ?? e}`, error: true });
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="export-buttons" role="group" aria-label="Export this session">
      <button type="button" class="btn" disabled={busy} onClick={() => run('copy')}
        title="The session as markdown (what the user did, failing requests, traces, logs; secrets masked) for an AI assistant">
        Copy for AI
      </button>
      <button type="button" class="btn" disabled={busy} onClick={() => run('md')} title="Download the markdown export">Download .md</button>
      <button type="button" class="btn" disabled={busy} onClick={() => run('json')} title="Download the sessiontrace.export/v1 JSON">.json</button>
      {status ? <span class={`small ${status.error ? 'err-text' : 'muted'}`} role="status" data-testid="export-status">{status.text}</span> : null}
    </span>
  );
}
