// Links to a moment of a session: `?t=` on the session page URL. `t` is seconds from the start of the
// session's replay (`?t=12.4`, what "Copy link at this moment" writes) or, for links made from a trace
// by the server (`/sessions/by-trace/{id}`), an absolute Unix time in milliseconds.

/** Values above this are Unix milliseconds (2001 onwards), not seconds into a session. */
const ABSOLUTE_MS = 1e12;

/** The absolute time (Unix ms) that `t` names in a session whose replay starts at `origin` (Unix ms). */
export function momentOf(t: string | null, origin: number): number | null {
  if (t === null || t.trim() === '') return null;
  const value = Number(t);
  if (!Number.isFinite(value) || value < 0) return null;
  return value >= ABSOLUTE_MS ? value : origin + value * 1000;
}

/** The `t` of a link to `at` (Unix ms): seconds from `origin`, one decimal. */
export function momentParam(at: number, origin: number): string {
  return (Math.max(0, at - origin) / 1000).toFixed(1);
}
