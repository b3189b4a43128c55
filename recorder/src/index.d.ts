// Types of `@sessiontrace/recorder` (the ES module, dist/index.js) and of `window.sessiontrace` (the
// script bundle served at /recorder.js). docs/recorder.md describes each option.

/** What the server records of request and response headers and bodies on the session's traces. */
export interface Capture {
  headers?: boolean;
  bodies?: boolean;
}

/** Options of {@link start}. */
export interface StartOptions {
  /** Server base URL, e.g. `https://sessiontrace.example.com`. Default: the origin of /recorder.js, else the page's. */
  endpoint?: string;
  /** Session name shown in the UI. */
  name?: string;
  /** Who is recorded, e.g. `{ id: 'u1', email: 'a@example.com' }`. */
  user?: Record<string, unknown>;
  kind?: 'manual' | 'continuous';
  attributes?: Record<string, unknown>;
  tags?: string[];
  capture?: Capture;
  /** Origins (exact), URL prefixes or RegExps whose requests get `traceparent`, besides same-origin ones. */
  propagateTo?: Array<string | RegExp>;
  /** Mask every input's value in the replay. Default true. */
  maskAllInputs?: boolean;
  maskTextClass?: string | RegExp;
  maskTextSelector?: string;
  blockClass?: string | RegExp;
  blockSelector?: string;
  /** Header names masked in captured network calls, besides the defaults. */
  maskHeaders?: string[];
  /** JSON body keys masked in captured network calls, besides the defaults. */
  maskBodyKeys?: string[];
  /** `service.name` of the browser's spans. Default `browser`. */
  serviceName?: string;
  /** Attach to a session the server already has (its `id`, or its `short_id` with an ingest key). */
  sessionId?: string;
  /** An ingest key (`st_ing_…`) of a server with authentication on. */
  key?: string;
  flushIntervalMs?: number;
  retryBaseMs?: number;
  /** rrweb's `sampling` option. Default `{ mousemove: 50, scroll: 150, input: 'last' }`. */
  sampling?: Record<string, unknown>;
  /** Record canvases (as images, `canvasFps` a second). Default false. */
  recordCanvas?: boolean;
  /** Canvas frames a second when `recordCanvas` is on. Default 2. */
  canvasFps?: number;
  /** The recorder's budget; over it, DOM recording pauses and says so. `false` turns it off. */
  budget?: Budget | false;
  /**
   * The full snapshot in slices of at most this many milliseconds, one task each (the bundled /recorder.js;
   * an unpatched rrweb from the app's bundler takes it in one task). Default 10; `false`: one task.
   */
  snapshotSliceMs?: number | false;
}

/** Over any of these, DOM recording pauses for `pauseMs` (doubled on a new trip right after, up to `maxPauseMs`). */
export interface Budget {
  /** DOM mutation records (nodes added/removed, texts, attributes) a second. Default 10000. */
  mutationsPerSecond?: number;
  /** Main-thread milliseconds the recorder spends on DOM mutations and its events a second. Default 100. */
  recorderMsPerSecond?: number;
  /** Default 2000. */
  pauseMs?: number;
  /** Default 30000. */
  maxPauseMs?: number;
}

/** A session as the server returns it (`POST /api/sessions`). */
export interface Session {
  id: string;
  short_id: string;
  kind: string;
  trace_id_prefix?: string;
  traceparent?: string;
  started_at?: string;
  [field: string]: unknown;
}

/** Upload statistics of the active session. */
export interface Stats {
  sent: number;
  retries: number;
  bytes: number;
  /** Chunks gzipped in a Worker (the rest, on the main thread or not at all). */
  gzipInWorker: number;
  pendingChunks: number;
  /** Times the budget paused DOM recording. */
  pauses: number;
  /** Milliseconds of the task that started DOM recording: the whole full snapshot unless it is sliced. */
  snapshotMs: number;
  /** The last sliced full snapshot, once done; null while it runs or when it was not sliced. */
  snapshot: SnapshotStats | null;
}

export interface SnapshotStats {
  slices: number;
  longestSliceMs: number;
  /** From its start to its end, the waits between slices included. */
  totalMs: number;
  nodes: number;
}

/** Starts recording (or resolves with the session already recording); resolves with the server's session. */
export function start(options?: StartOptions): Promise<Session>;
/** Uploads what is left and stops the session if this recorder started it; resolves with it, or null. */
export function stop(): Promise<Session | null>;
/** Uploads what is pending now. */
export function flush(): Promise<void>;
/** The active session's id, or null. */
export function sessionId(): string | null;
/** The active session, or null. */
export function session(): Session | null;
/** Upload statistics of the active session, or null. */
export function stats(): Stats | null;
