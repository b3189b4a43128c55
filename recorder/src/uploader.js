// Replay event upload: events are cut into chunks numbered by `seq` (the server is idempotent on it),
// kept in an outbox that is persisted to sessionStorage until the server acknowledges them, sent in
// order, gzip-compressed when CompressionStream exists (in a Worker when the page allows one, so the
// compression never runs on the page's main thread; else on the main thread, else not at all), retried with exponential backoff while the
// server is unreachable, and flushed on page hide with keepalive fetches within the browser's 64 KiB
// budget. What does not fit stays in storage and is sent by the next page load of the session.

export const CHUNK_MAX_BYTES = 1024 * 1024; // server limit is 8 MiB per body
export const CHUNK_MAX_EVENTS = 5000; // server limit is 20,000 events per chunk
export const KEEPALIVE_CHUNK_BYTES = 40 * 1024;
export const KEEPALIVE_BUDGET_BYTES = 48 * 1024; // of the browser's 64 KiB, leaving room for span export

/**
 * Splits serialized events (JSON strings) into groups of at most maxBytes (sum of string lengths plus
 * separators) and maxEvents. An event larger than maxBytes is a group of its own.
 */
export function splitEvents(serialized, maxBytes, maxEvents = CHUNK_MAX_EVENTS) {
  const groups = [];
  let cur = [];
  let size = 0;
  for (const s of serialized) {
    if (cur.length > 0 && (size + s.length + 1 > maxBytes || cur.length >= maxEvents)) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(s);
    size += s.length + 1;
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/** The JSON body of a chunk, built from already serialized events. */
export function chunkBody(seq, serialized) {
  return '{"seq":' + seq + ',"events":[' + serialized.join(',') + ']}';
}

export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

async function gzip(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// The worker's whole source: gzip each text it is sent, answer with the bytes (transferred, not copied).
const GZIP_WORKER = `onmessage=async(e)=>{try{const s=new Blob([e.data.text]).stream().pipeThrough(new CompressionStream('gzip'));` +
  `const b=await new Response(s).arrayBuffer();postMessage({id:e.data.id,b},[b])}catch(x){postMessage({id:e.data.id,error:String(x)})}}`;
const WORKER_TIMEOUT_MS = 10000;

/**
 * A gzip function that compresses in a Worker started from a blob: URL, or null when this browser has
 * no Worker or CompressionStream. The function rejects when the worker cannot do it (a Content Security
 * Policy without blob: in worker-src, a worker that does not answer): the caller then gzips on the main
 * thread, and the worker is not asked again.
 */
export function workerGzip() {
  if (typeof Worker !== 'function' || typeof CompressionStream !== 'function' || typeof URL.createObjectURL !== 'function') return null;
  let worker = null;
  let broken = false;
  let nextId = 0;
  const waiting = new Map(); // id -> {resolve, reject, timer}
  const fail = (why) => {
    broken = true;
    for (const w of waiting.values()) { clearTimeout(w.timer); w.reject(new Error(why)); }
    waiting.clear();
    try { worker?.terminate(); } catch { /* ignore */ }
    worker = null;
  };
  const start = () => {
    const url = URL.createObjectURL(new Blob([GZIP_WORKER], { type: 'text/javascript' }));
    try {
      worker = new Worker(url);
    } finally {
      setTimeout(() => URL.revokeObjectURL(url), WORKER_TIMEOUT_MS);
    }
    worker.onmessage = (e) => {
      const w = waiting.get(e.data.id);
      if (!w) return;
      waiting.delete(e.data.id);
      clearTimeout(w.timer);
      if (e.data.error) w.reject(new Error(e.data.error));
      else w.resolve(new Uint8Array(e.data.b));
    };
    worker.onerror = (e) => { e.preventDefault?.(); fail('gzip worker failed'); };
  };
  return (text) => new Promise((resolve, reject) => {
    if (broken) return reject(new Error('gzip worker unavailable'));
    try {
      if (!worker) start();
    } catch (e) {
      fail(String(e));
      return reject(e);
    }
    const id = nextId++;
    const timer = setTimeout(() => fail('gzip worker timed out'), WORKER_TIMEOUT_MS);
    waiting.set(id, { resolve, reject, timer });
    worker.postMessage({ id, text });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Uploader {
  /**
   * @param {object} o
   * @param {string} o.url          POST target: {endpoint}/api/sessions/{id}/events
   * @param {Function} o.fetch      a fetch that is NOT instrumented (no traceparent on uploads)
   * @param {object} [o.headers]    sent with every chunk (the ingest key's Authorization)
   * @param {Storage} [o.storage]   where the outbox and next seq survive reloads
   * @param {string} o.storageKey
   * @param {boolean} [o.compress]  gzip bodies when CompressionStream exists (default true)
   * @param {Function|null} [o.gzipOffThread] compresses a body elsewhere (workerGzip()); main thread if absent or failing
   * @param {number} [o.retryBaseMs] first backoff delay (doubles up to retryMaxMs)
   * @param {Function} [o.onDrop]   called with (seq, status) when the server rejects a chunk for good
   */
  constructor(o) {
    this.url = o.url;
    this.fetch = o.fetch;
    this.headers = o.headers || {};
    this.storage = o.storage || null;
    this.fallbackStorage = o.fallbackStorage || null;
    this.storageKey = o.storageKey;
    this.compress = o.compress !== false && typeof CompressionStream === 'function';
    this.gzipOffThread = this.compress ? o.gzipOffThread || null : null;
    this.retryBaseMs = o.retryBaseMs ?? 1000;
    this.retryMaxMs = o.retryMaxMs ?? 30000;
    this.maxBytes = o.maxBytes ?? CHUNK_MAX_BYTES;
    this.onDrop = o.onDrop || (() => {});
    this.pending = []; // events not yet in a chunk: serialized, or a full snapshot still an object
    this.pendingBytes = 0;
    this.outbox = []; // [{seq, body}] not yet acknowledged, in seq order
    this.nextSeq = 0;
    this.draining = null;
    this.stopped = false;
    this.stats = { sent: 0, retries: 0, bytes: 0, gzipInWorker: 0 };
    this.keepalive = new Map(); // seq -> bytes of keepalive sends still in flight
    this.saveTimer = null;
    this.load();
  }

  /** Restores the outbox and next seq of an earlier page load of this session. */
  load() {
    for (const s of [this.storage, this.fallbackStorage]) {
      if (!s) continue;
      try {
        const saved = JSON.parse(s.getItem(this.storageKey) || 'null');
        if (saved) {
          this.nextSeq = Math.max(this.nextSeq, saved.nextSeq || 0);
          const known = new Set(this.outbox.map((c) => c.seq));
          for (const c of saved.outbox || []) if (!known.has(c.seq)) this.outbox.push(c);
        }
      } catch {
        /* unreadable storage: start clean */
      }
    }
    this.outbox.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Persists outbox + next seq in a task of its own, soon: the periodic flush has just serialized the
   * events (a full snapshot among them, perhaps), and the storage write (the outbox as JSON again, then a
   * synchronous setItem of up to a few MiB) would make that task longer still. A page hide persists at once.
   */
  saveSoon() {
    if (this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.save(), 0);
  }

  /** Persists outbox + next seq; sessionStorage first, localStorage when that is full. */
  save() {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    const data = JSON.stringify({ nextSeq: this.nextSeq, outbox: this.outbox });
    for (const s of [this.storage, this.fallbackStorage]) {
      if (!s) continue;
      try {
        s.setItem(this.storageKey, data);
        if (s !== this.storage && this.storage) this.storage.removeItem(this.storageKey);
        return true;
      } catch {
        /* quota exceeded: try the next one */
      }
    }
    return false; // kept in memory only
  }

  clearStorage() {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
    }
    for (const s of [this.storage, this.fallbackStorage]) {
      try {
        if (s) s.removeItem(this.storageKey);
      } catch {
        /* ignore */
      }
    }
  }

  /**
   * Queues one rrweb event; returns true when enough is pending that a flush is due. A full snapshot
   * (type 2) is serialized later, by cut(): rrweb takes it in one long task, and serializing it too
   * there would make that task longer still.
   */
  add(event) {
    if (event && event.type === 2) {
      this.pending.push(event);
      return false;
    }
    const s = JSON.stringify(event);
    this.pending.push(s);
    this.pendingBytes += s.length + 1;
    return this.pendingBytes >= this.maxBytes || this.pending.length >= CHUNK_MAX_EVENTS;
  }

  /** Moves pending events into numbered chunks of at most maxBytes, and persists them (now, or soon). */
  cut(maxBytes = this.maxBytes, persistNow = true) {
    if (this.pending.length === 0) return;
    const serialized = this.pending.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)));
    for (const group of splitEvents(serialized, maxBytes)) {
      const seq = this.nextSeq++;
      this.outbox.push({ seq, body: chunkBody(seq, group) });
    }
    this.pending = [];
    this.pendingBytes = 0;
    if (persistNow) this.save();
    else this.saveSoon();
  }

  /** Cuts what is pending and sends the whole outbox; resolves when it is empty (or stopped). */
  flush() {
    this.cut(this.maxBytes, false);
    if (!this.draining) {
      this.draining = this.drain().finally(() => {
        this.draining = null;
      });
    }
    return this.draining;
  }

  async drain() {
    let attempt = 0;
    while (this.outbox.length > 0 && !this.stopped) {
      const chunk = this.outbox[0];
      const result = await this.send(chunk, false);
      if (result === 'ok' || result === 'drop') {
        this.ack(chunk.seq);
        attempt = 0;
        continue;
      }
      // Unreachable or 5xx/408/429: back off, then re-send the same chunk (same seq: idempotent).
      this.stats.retries++;
      const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
      attempt++;
      await sleep(delay * (0.75 + Math.random() * 0.25));
    }
  }

  ack(seq) {
    this.outbox = this.outbox.filter((c) => c.seq !== seq);
    this.save();
  }

  async gzip(text) {
    if (this.gzipOffThread) {
      try {
        const bytes = await this.gzipOffThread(text);
        this.stats.gzipInWorker++;
        return bytes;
      } catch {
        this.gzipOffThread = null; // it failed once: the main thread from now on
      }
    }
    return gzip(text);
  }

  /** Sends one chunk: 'ok', 'drop' (rejected for good) or 'retry'. */
  async send(chunk, keepalive) {
    try {
      const init = { method: 'POST', credentials: 'omit', mode: 'cors' };
      if (keepalive) {
        // No compression (it is async) and a CORS-safelisted type, so no preflight at unload (with a key,
        // its Authorization header needs one anyway; keepalive fetches may be preflighted).
        init.keepalive = true;
        init.headers = { ...this.headers, 'Content-Type': 'text/plain' };
        init.body = chunk.body;
      } else if (this.compress) {
        init.headers = { ...this.headers, 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' };
        init.body = await this.gzip(chunk.body);
      } else {
        init.headers = { ...this.headers, 'Content-Type': 'application/json' };
        init.body = chunk.body;
      }
      const res = await this.fetch(this.url, init);
      if (res.ok) {
        this.stats.sent++;
        this.stats.bytes += init.body.length ?? init.body.byteLength;
        return 'ok';
      }
      if (res.status >= 500 || res.status === 408 || res.status === 429) return 'retry';
      this.onDrop(chunk.seq, res.status);
      return 'drop';
    } catch {
      return 'retry';
    }
  }

  /**
   * Page is being hidden or unloaded: everything pending goes into small chunks that are persisted,
   * then sent with keepalive while they fit the budget. The rest waits in storage for the next load.
   */
  flushOnHide() {
    this.cut(KEEPALIVE_CHUNK_BYTES);
    let budget = KEEPALIVE_BUDGET_BYTES;
    for (const size of this.keepalive.values()) budget -= size;
    for (const chunk of this.outbox) {
      if (this.keepalive.has(chunk.seq)) continue;
      const size = utf8Length(chunk.body);
      if (size > budget) continue; // too big for keepalive: the next load sends it
      budget -= size;
      this.keepalive.set(chunk.seq, size);
      this.send(chunk, true).then((r) => {
        this.keepalive.delete(chunk.seq);
        if (r !== 'retry') this.ack(chunk.seq);
      });
    }
  }
}
