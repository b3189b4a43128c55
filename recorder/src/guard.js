// The recorder's budget: it must never be what makes a page slow. Every rrweb event passes through
// observe(), which counts DOM mutation records and the time the recorder spent handling events in a
// sliding one-second window. Over budget, the guard pauses DOM recording (rrweb is stopped, so the page's
// mutations cost it nothing), for pauseMs, doubled on each new trip soon after a resume (up to maxPauseMs).
// The caller says so: a console warning and a `sessiontrace/recorder` custom event in the replay
// ({state: 'paused', reason, budget, observed, pause_ms}, then {state: 'resumed'} with a new full
// snapshot). Console, errors and network calls are still recorded while DOM recording is paused.

export const DEFAULT_BUDGET = {
  mutationsPerSecond: 10000, // rrweb mutation records (nodes added/removed, texts, attributes) per second
  // Main-thread ms spent by the recorder on DOM mutations and its events per second (10%): a stall guard
  // measured in wall time, so a machine busy with other work adds to it; the 5% goal is for a normal page.
  recorderMsPerSecond: 100,
  pauseMs: 2000, // first pause; doubled when the budget trips again within pauseMs of a resume
  maxPauseMs: 30000,
};

const WINDOW_MS = 1000;

/**
 * Times rrweb's handling of each batch of DOM mutations. rrweb serializes a batch in its MutationObserver
 * callback and emits the mutation event at the end of it; observers are notified in the order they were
 * created, so an observer created before rrweb's sees the batch first: the time from its callback to
 * rrweb's mutation event is what recording that batch cost. rrweb takes a native MutationObserver
 * (it checks for patched ones), so wrapping the constructor cannot do this.
 */
export function mutationClock(doc) {
  let batchStart = -1;
  // Mutations rrweb observes elsewhere (shadow roots, iframes) or emits from timers are not seen here:
  // forget the start once this round of observer callbacks is over, so that their events are not timed
  // from a batch long gone. (A microtask queued from an observer callback runs after the whole round:
  // the round is itself a microtask, and microtask checkpoints do not nest.)
  const forget = () => { batchStart = -1; };
  const Observer = typeof MutationObserver === 'function' ? MutationObserver : null;
  const observer = Observer ? new Observer(() => {
    batchStart = performance.now();
    queueMicrotask(forget);
  }) : null;
  const options = { childList: true, subtree: true, attributes: true, characterData: true };
  return {
    start() { if (observer) observer.observe(doc, options); },
    stop() { if (observer) { observer.takeRecords(); observer.disconnect(); } batchStart = -1; },
    /** ms since the start of the mutation batch being handled now, or 0 when there is none. */
    take() {
      const start = batchStart;
      batchStart = -1;
      return start < 0 ? 0 : performance.now() - start;
    },
  };
}

/** How many mutation records an rrweb event carries (0 for everything but DOM mutations). */
export function mutationCount(event) {
  if (!event || event.type !== 3 || !event.data || event.data.source !== 0) return 0;
  const d = event.data;
  return (d.adds?.length || 0) + (d.removes?.length || 0) + (d.texts?.length || 0) + (d.attributes?.length || 0);
}

export class Guard {
  /**
   * @param {object} o
   * @param {object|false} [o.budget]   overrides of DEFAULT_BUDGET; false turns the guard off
   * @param {Function} o.pause          called with ({reason, budget, observed, pause_ms}) when over budget
   * @param {Function} o.resume         called when the pause is over
   * @param {Function} [o.now]          ms clock (performance.now)
   * @param {Function} [o.setTimeout]
   */
  constructor(o) {
    this.off = o.budget === false;
    this.budget = { ...DEFAULT_BUDGET, ...(o.budget || {}) };
    this.onPause = o.pause;
    this.onResume = o.resume;
    this.now = o.now || (() => performance.now());
    this.setTimeout = o.setTimeout || ((fn, ms) => setTimeout(fn, ms));
    this.samples = []; // [t, mutations, ms] of the last WINDOW_MS
    this.mutations = 0;
    this.ms = 0;
    this.paused = false;
    this.pauseMs = this.budget.pauseMs;
    this.resumedAt = -Infinity;
    this.trips = 0;
  }

  /**
   * Accounts one event handled in `ms` milliseconds; returns true when it tripped the budget (the
   * pause callback has then been called).
   */
  observe(event, ms) {
    // A full snapshot (and its meta event) is the price of recording at all, and comes again on every
    // resume: counting it would pause a big page for good.
    if (this.off || this.paused || event.type === 2 || event.type === 4) return false;
    const t = this.now();
    const m = mutationCount(event);
    this.samples.push([t, m, ms]);
    this.mutations += m;
    this.ms += ms;
    while (this.samples.length && this.samples[0][0] <= t - WINDOW_MS) {
      const [, oldM, oldMs] = this.samples.shift();
      this.mutations -= oldM;
      this.ms -= oldMs;
    }
    let reason = null;
    if (this.mutations > this.budget.mutationsPerSecond) reason = 'mutations';
    else if (this.ms > this.budget.recorderMsPerSecond) reason = 'recorder_time';
    if (!reason) return false;
    this.trip(reason, t);
    return true;
  }

  trip(reason, t) {
    // A trip soon after the last resume: the page is still too busy, wait longer this time.
    this.pauseMs = t - this.resumedAt < this.pauseMs + WINDOW_MS
      ? Math.min(this.budget.maxPauseMs, this.pauseMs * 2)
      : this.budget.pauseMs;
    this.trips++;
    const observed = reason === 'mutations'
      ? { mutations_per_second: this.mutations }
      : { recorder_ms_per_second: Math.round(this.ms * 10) / 10 };
    const budget = reason === 'mutations'
      ? { mutations_per_second: this.budget.mutationsPerSecond }
      : { recorder_ms_per_second: this.budget.recorderMsPerSecond };
    this.paused = true;
    this.samples = [];
    this.mutations = 0;
    this.ms = 0;
    this.onPause({ reason, budget, observed, pause_ms: this.pauseMs });
    this.timer = this.setTimeout(() => {
      if (!this.paused) return;
      this.paused = false;
      this.resumedAt = this.now();
      this.onResume();
    }, this.pauseMs);
  }

  /** Stops the pending resume (the recording stops). */
  cancel() {
    this.paused = false;
    if (this.timer) clearTimeout(this.timer);
  }
}
