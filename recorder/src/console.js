// Console messages and uncaught errors / unhandled rejections as `sessiontrace/console` and
// `sessiontrace/error` custom events (shapes in docs/api.md).

export const LEVELS = ['log', 'info', 'warn', 'error', 'debug'];
const MAX_MESSAGE = 8 * 1024;

/** One console argument as text. */
export function formatArg(a) {
  if (typeof a === 'string') return a;
  if (a instanceof Error) return a.stack || String(a);
  if (a === undefined) return 'undefined';
  if (typeof a === 'function') return '[function ' + (a.name || 'anonymous') + ']';
  if (typeof Node !== 'undefined' && a instanceof Node) return '<' + (a.nodeName || 'node').toLowerCase() + '>';
  try {
    const seen = new WeakSet();
    const s = JSON.stringify(a, (k, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (v && typeof v === 'object') {
        if (seen.has(v)) return '[circular]';
        seen.add(v);
      }
      return v;
    });
    return s === undefined ? String(a) : s;
  } catch {
    return String(a);
  }
}

export function formatMessage(args) {
  const s = args.map(formatArg).join(' ');
  return s.length > MAX_MESSAGE ? s.slice(0, MAX_MESSAGE) + '…' : s;
}

/**
 * Patches console methods and listens for errors. `emit(tag, payload)` records a custom event.
 * Returns a function that undoes it all.
 */
export function captureConsoleAndErrors(emit) {
  const originals = {};
  let inside = false; // a console call made while recording one is not recorded again
  for (const level of LEVELS) {
    const orig = console[level];
    if (typeof orig !== 'function') continue;
    originals[level] = orig;
    console[level] = function (...args) {
      if (!inside) {
        inside = true;
        try {
          emit('sessiontrace/console', { level, message: formatMessage(args) });
        } catch {
          /* never break the page's logging */
        } finally {
          inside = false;
        }
      }
      return orig.apply(this, args);
    };
  }

  const onError = (e) => {
    if (!(e instanceof ErrorEvent)) return; // resource load failures are not script errors
    const err = e.error;
    emit('sessiontrace/error', {
      message: String(e.message || (err && err.message) || 'error'),
      stack: String((err && err.stack) || (e.filename ? `at ${e.filename}:${e.lineno}:${e.colno}` : '')),
      kind: 'error',
    });
  };
  const onRejection = (e) => {
    const r = e.reason;
    emit('sessiontrace/error', {
      message: r instanceof Error ? String(r.message) : formatArg(r),
      stack: r instanceof Error ? String(r.stack || '') : '',
      kind: 'unhandledrejection',
    });
  };
  window.addEventListener('error', onError, true);
  window.addEventListener('unhandledrejection', onRejection);

  return () => {
    Object.assign(console, originals);
    window.removeEventListener('error', onError, true);
    window.removeEventListener('unhandledrejection', onRejection);
  };
}
