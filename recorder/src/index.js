// sessiontrace browser recorder: the public API `window.sessiontrace` = {start, stop, sessionId, ...}.
// start() creates (or attaches to, or resumes after a reload) a server session, then records the DOM
// with rrweb, console/errors and network calls as custom events, and traces fetch/XHR/document load/
// clicks with session-prefixed trace ids. Events are uploaded in numbered chunks (uploader.js).

import { record } from '@rrweb/record';
import { sessionPrefix } from './ids.js';
import { compilePropagateTo, serializePropagateTo, deserializePropagateTo } from './propagate.js';
import { Uploader, workerGzip } from './uploader.js';
import { makeFetchWrapper, patchXhr, xhrSpanHook } from './network.js';
import { captureConsoleAndErrors } from './console.js';
import { startTracing } from './tracing.js';
import { authHeaders, attachWithoutRead } from './key.js';
import { Guard, mutationClock } from './guard.js';

const STATE_KEY = 'sessiontrace:state';
const COOKIE = 'sessiontrace_session';
const FLUSH_INTERVAL_MS = 5000;
const SNAPSHOT_SLICE_MS = 10; // a slice of the full snapshot: well under a 50 ms long task, with room for the page's work

// Captured before anything is patched: the recorder's own calls never carry traceparent.
const nativeFetch = typeof fetch === 'function' ? fetch.bind(globalThis) : null;
const scriptOrigin = (() => {
  try {
    return new URL(document.currentScript.src).origin;
  } catch {
    return null;
  }
})();
const warn = (...a) => console.warn('[sessiontrace]', ...a);

let current = null; // the active recording
let starting = null; // promise of a start in progress

function storage(name) {
  try {
    const s = window[name];
    s.getItem('x');
    return s;
  } catch {
    return null; // disabled (privacy mode, sandboxed iframe)
  }
}

function readState() {
  try {
    return JSON.parse(storage('sessionStorage')?.getItem(STATE_KEY) || 'null');
  } catch {
    return null;
  }
}

function writeState(state) {
  try {
    storage('sessionStorage')?.setItem(STATE_KEY, JSON.stringify(state));
  } catch {
    /* recording still works, it just won't survive a reload */
  }
}

function setCookie(shortId) {
  document.cookie = `${COOKIE}=${shortId}; path=/; SameSite=Lax`;
}

function clearCookie() {
  document.cookie = `${COOKIE}=; path=/; max-age=0; SameSite=Lax`;
}

// Error messages name the method, URL and status, never the key.
async function api(method, url, body, key) {
  const headers = { ...authHeaders(key) };
  if (body) headers['Content-Type'] = 'application/json';
  const res = await nativeFetch(url, {
    method,
    credentials: 'omit',
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) {
    let msg = res.statusText;
    try {
      msg = (await res.json()).error || msg;
    } catch {
      /* not JSON */
    }
    throw new Error(`sessiontrace: ${method} ${url} → ${res.status} ${msg}`);
  }
  return res.json();
}

/** Options that can be stored in sessionStorage to resume the recording after a reload. */
function storableOptions(o) {
  const keep = {};
  for (const k of ['name', 'serviceName', 'maskAllInputs', 'maskTextClass', 'maskTextSelector', 'blockClass',
    'blockSelector', 'maskHeaders', 'maskBodyKeys', 'flushIntervalMs', 'retryBaseMs', 'sampling', 'key',
    'recordCanvas', 'canvasFps', 'budget', 'snapshotSliceMs']) {
    if (o[k] !== undefined && !(o[k] instanceof RegExp)) keep[k] = o[k];
  }
  keep.propagateTo = serializePropagateTo(o.propagateTo);
  return keep;
}

/**
 * Starts recording. Options: endpoint (server base URL; default: where this script came from), name,
 * user, kind ('manual'|'continuous'), attributes, tags, capture {headers, bodies}, propagateTo (origins,
 * URL prefixes or RegExps that get traceparent besides same-origin), maskAllInputs (default true),
 * maskTextClass, maskTextSelector, blockClass, blockSelector, serviceName, sessionId (attach to a session
 * the server already has), key (an ingest key `st_ing_...`: sent as `Authorization: Bearer` on every request
 * the recorder makes; write-only, so with a key `sessionId` must be a short_id and attaching makes no read),
 * recordCanvas (opt-in: canvases as images, canvasFps per second, default 2), budget (guard.js; false: off),
 * snapshotSliceMs (the full snapshot in slices of at most this many ms, default 10; false: in one task).
 * Returns a promise of the server's Session object.
 */
export function start(options = {}) {
  if (current) return Promise.resolve(current.session);
  if (!starting) starting = doStart(options).finally(() => (starting = null));
  return starting;
}

async function doStart(options) {
  if (!nativeFetch) throw new Error('sessiontrace: this browser has no fetch');
  const endpoint = String(options.endpoint || scriptOrigin || location.origin).replace(/\/+$/, '');
  const saved = readState();
  let session;
  let owned;
  let opts = options;
  const wanted = options.sessionId;
  if (saved && saved.endpoint === endpoint && (!wanted || wanted === saved.session.id || wanted === saved.session.short_id)) {
    // Same tab, same session: a reload. Continue it (the uploader continues the seq numbers).
    session = saved.session;
    owned = saved.owned;
    opts = { ...deserialize(saved.options), ...options };
  } else if (wanted && options.key) {
    try {
      session = attachWithoutRead(wanted, options);
    } catch (e) {
      warn(e.message);
      throw e;
    }
    owned = false;
  } else if (wanted) {
    session = await api('GET', `${endpoint}/api/sessions/${encodeURIComponent(wanted)}`);
    owned = false;
  } else {
    session = await api('POST', `${endpoint}/api/sessions`, {
      name: options.name,
      kind: options.kind,
      user: options.user,
      attributes: options.attributes,
      tags: options.tags,
      capture: options.capture,
    }, options.key);
    owned = true;
  }
  writeState({ endpoint, owned, session: pickSession(session), options: storableOptions(opts) });
  activate(endpoint, session, opts, owned);
  return session;
}

/** A selector list of the non-empty ones, or undefined. */
function selectors(...list) {
  return list.filter(Boolean).join(', ') || undefined;
}

function deserialize(o) {
  return { ...o, propagateTo: deserializePropagateTo(o.propagateTo) };
}

function pickSession(s) {
  const { id, short_id, kind, trace_id_prefix, capture, name } = s;
  return { id, short_id, kind, trace_id_prefix, capture, name };
}

function activate(endpoint, session, opts, owned) {
  const prefix = sessionPrefix(session);
  const capture = { headers: !!session.capture?.headers, bodies: !!session.capture?.bodies };
  const propagateTo = compilePropagateTo(opts.propagateTo);
  const teardown = [];
  const rec = { endpoint, session, owned, prefix, key: opts.key, recording: false };
  current = rec;

  setCookie(session.short_id);

  const uploader = new Uploader({
    url: `${endpoint}/api/sessions/${encodeURIComponent(session.id)}/events`,
    fetch: nativeFetch,
    headers: authHeaders(opts.key),
    storage: storage('sessionStorage'),
    fallbackStorage: storage('localStorage'),
    storageKey: `sessiontrace:outbox:${session.id}`,
    retryBaseMs: opts.retryBaseMs,
    gzipOffThread: workerGzip(),
    onDrop: (seq, status) => warn(`events chunk ${seq} rejected with ${status}`),
  });
  rec.uploader = uploader;

  let stopDom = null; // stops rrweb; null while DOM recording is paused by the guard
  const emit = (tag, payload) => {
    if (!rec.recording) return;
    // While the guard has paused rrweb, custom events (console, network, the guard's own) still go out.
    if (stopDom) record.addCustomEvent(tag, payload);
    else if (uploader.add({ type: 5, data: { tag, payload }, timestamp: Date.now() })) uploader.flush();
  };

  // Network capture wrappers go in first, so the OTel instrumentations wrap them.
  const netOpts = {
    active: () => rec.recording,
    skip: (url) => url.startsWith(endpoint + '/'),
    capture: () => capture,
    emit: (payload) => emit('sessiontrace/network', payload),
    maskHeaders: opts.maskHeaders || [],
    maskKeys: opts.maskBodyKeys || [],
  };
  const pageFetch = window.fetch;
  window.fetch = makeFetchWrapper(pageFetch, netOpts);
  const unpatchXhr = patchXhr(netOpts);

  const tracing = startTracing({
    endpoint,
    prefix,
    session,
    propagateTo,
    serviceName: opts.serviceName || 'browser',
    headers: authHeaders(opts.key),
    xhrHook: xhrSpanHook(netOpts),
  });
  rec.tracing = tracing;
  teardown.push(async () => {
    await tracing.stop(); // restores our wrappers underneath
    unpatchXhr();
    window.fetch = pageFetch;
  });

  // The budget (guard.js): over it, DOM recording pauses and says so, rather than slow the page.
  const clock = mutationClock(document);
  const guard = new Guard({
    budget: opts.budget,
    pause(info) {
      queueMicrotask(() => { // not from inside rrweb's own callback
        if (!stopDom) return;
        emit('sessiontrace/recorder', { state: 'paused', ...info });
        warn(`recording paused for ${info.pause_ms} ms: over the ${info.reason} budget`, info.observed, info.budget);
        stopDom();
        stopDom = null;
        clock.stop();
      });
    },
    resume() {
      if (!rec.recording || stopDom) return;
      startDom();
      emit('sessiontrace/recorder', { state: 'resumed' });
    },
  });
  rec.guard = guard;
  const onEvent = (event) => {
    const t0 = performance.now();
    const batchMs = event.type === 3 && event.data.source === 0 ? clock.take() : 0;
    const due = uploader.add(event);
    guard.observe(event, batchMs + performance.now() - t0);
    if (due) uploader.flush();
  };
  const sampling = opts.sampling || { mousemove: 50, scroll: 150, input: 'last' };
  const slicing = opts.snapshotSliceMs === false ? null : {
    budgetMs: opts.snapshotSliceMs || SNAPSHOT_SLICE_MS,
    onDone: (s) => { rec.snapshot = s; },
    finishNow: null,
  };
  const startDom = () => {
    clock.start();
    const t0 = performance.now();
    rec.snapshot = null;
    stopDom = record({
      emit: onEvent,
      maskAllInputs: opts.maskAllInputs !== false,
      // The default classes as a class and a selector, not a RegExp: rrweb then checks ancestors with
      // the browser's closest() instead of walking them in JavaScript for every text mutation.
      maskTextClass: opts.maskTextClass || 'st-mask',
      maskTextSelector: selectors(opts.maskTextClass ? null : '.rr-mask', opts.maskTextSelector),
      blockClass: opts.blockClass || 'st-block',
      blockSelector: selectors(opts.blockClass ? null : '.rr-block', opts.blockSelector),
      sampling: opts.recordCanvas ? { ...sampling, canvas: opts.canvasFps || 2 } : sampling,
      recordCanvas: !!opts.recordCanvas,
      dataURLOptions: { type: 'image/webp', quality: 0.6 },
      // The bundled rrweb (scripts/rrweb-patches.mjs) takes the full snapshot in slices of at most
      // budgetMs, one task each, rather than in one long task; an unpatched rrweb ignores this option.
      // The patch sets slicing.finishNow while a walk is in progress: the page hide calls it.
      snapshotSlicing: slicing,
    }) || null;
    rec.snapshotMs = performance.now() - t0; // record()'s task: the whole snapshot when not sliced, else the observers' start
  };
  // DOM recording starts in a task of its own: setting up tracing and the rest made this one long enough.
  // Until then, custom events (console, network) go straight to the uploader, as during a pause.
  let domTimer = setTimeout(() => {
    domTimer = null;
    if (rec.recording) startDom();
  }, 0);
  rec.recording = true;
  teardown.push(() => {
    rec.recording = false;
    clearTimeout(domTimer);
    guard.cancel();
    clock.stop();
    if (stopDom) stopDom();
    stopDom = null;
  });

  teardown.push(captureConsoleAndErrors(emit));

  const timer = setInterval(() => uploader.flush(), opts.flushIntervalMs || FLUSH_INTERVAL_MS);
  const onHide = () => {
    // A sliced snapshot still in progress ends now, so that it and what it held back are in the flush.
    if (slicing && slicing.finishNow) slicing.finishNow();
    uploader.flushOnHide();
    tracing.flush();
  };
  const onVisibility = () => {
    if (document.visibilityState === 'hidden') onHide();
  };
  window.addEventListener('pagehide', onHide);
  document.addEventListener('visibilitychange', onVisibility);
  teardown.push(() => {
    clearInterval(timer);
    window.removeEventListener('pagehide', onHide);
    document.removeEventListener('visibilitychange', onVisibility);
  });

  rec.teardown = teardown;
  // Sends the first events and what an earlier load of this session left in storage: in a task of its own,
  // so that persisting and compressing are not added to the full snapshot's task.
  setTimeout(() => uploader.flush(), 0);
}

/** Uploads what is pending now; resolves when the server has it. */
export async function flush() {
  if (!current) return;
  await Promise.all([current.uploader.flush(), current.tracing.flush()]);
}

/**
 * Stops recording: uploads what is left, stops the server session when this recorder started it,
 * removes the cookie and the saved state. Resolves with the (stopped) Session.
 */
export async function stop() {
  if (starting) await starting.catch(() => {});
  const rec = current;
  if (!rec) return null;
  for (const fn of rec.teardown.reverse()) await fn();
  current = null;
  clearCookie();
  const left = rec.uploader;
  await Promise.race([left.flush(), new Promise((r) => setTimeout(r, 10000))]);
  left.stopped = true;
  if (left.outbox.length === 0) left.clearStorage();
  try {
    storage('sessionStorage')?.removeItem(STATE_KEY);
  } catch {
    /* ignore */
  }
  if (rec.owned) {
    try {
      return await api('POST', `${rec.endpoint}/api/sessions/${encodeURIComponent(rec.session.id)}/stop`, undefined, rec.key);
    } catch (e) {
      warn('could not stop the session on the server:', e.message);
    }
  }
  return rec.session;
}

/** The active session's id, or null. */
export function sessionId() {
  return current ? current.session.id : null;
}

/** The active session object (as the server returned it), or null. */
export function session() {
  return current ? current.session : null;
}

/**
 * Upload and guard statistics of the active session: {sent, retries, bytes, gzipInWorker, pendingChunks,
 * pauses, snapshotMs (the task that started DOM recording: the whole full snapshot when it is not sliced, the
 * observers' start when it is), snapshot (the last sliced full snapshot: {slices, longestSliceMs, totalMs, nodes}, totalMs
 * from its start to its end, yields included; null while it runs or when not sliced)}.
 */
export function stats() {
  if (!current) return null;
  const { uploader, guard, snapshotMs, snapshot } = current;
  const round = (ms) => Math.round(ms * 10) / 10;
  return {
    ...uploader.stats,
    pendingChunks: uploader.outbox.length,
    pauses: guard.trips,
    snapshotMs: round(snapshotMs),
    snapshot: snapshot && { ...snapshot, longestSliceMs: round(snapshot.longestSliceMs), totalMs: round(snapshot.totalMs) },
  };
}

// A reload of a page that was recording: continue the same session right away.
const resumable = typeof window !== 'undefined' ? readState() : null;
if (resumable) {
  start({ endpoint: resumable.endpoint }).catch((e) => warn('could not resume the session:', e.message));
}
