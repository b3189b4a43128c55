// The ingest key (`st_ing_...`): a public, write-only key the page hands to start({key}). Every request the
// recorder makes carries it as `Authorization: Bearer <key>`. It may not read, so attaching to an existing
// session makes no GET. The key is never put in a URL, an error message or a log line.

/** Headers that authenticate the recorder's requests: the key's Authorization, or none. */
export function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/**
 * The session to attach to (`sessionId` option) when a key is given, built without a read (GET answers 403
 * to an ingest key): the short_id gives the trace id prefix (with `kind`: `continuous` → `cdbcdb`, else
 * `debdeb`), the API takes it in paths and `session.id` may carry it; what to capture comes from the
 * `capture` option instead of the server. A long session id cannot be turned into a short_id: that throws.
 */
export function attachWithoutRead(sessionId, options = {}) {
  const shortId = String(sessionId ?? '').toLowerCase();
  if (!/^[0-9a-f]{8}$/.test(shortId)) {
    throw new Error(
      "sessiontrace: with an ingest key, sessionId must be the session's 8-hex short_id " +
        '(the key is write-only, so the recorder cannot read the session to learn it)',
    );
  }
  return {
    id: shortId,
    short_id: shortId,
    kind: options.kind === 'continuous' ? 'continuous' : 'manual',
    capture: { headers: !!options.capture?.headers, bodies: !!options.capture?.bodies },
  };
}
