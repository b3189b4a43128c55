// Which URLs get the session's `traceparent` header (DESIGN.md section 3). Same-origin calls always do;
// other origins only when listed in the `propagateTo` option. A string entry is an origin
// ("http://127.0.0.1:8081") or a URL prefix ("https://api.example.com/v1/"); a RegExp is tested against
// the full URL. Third-party calls never get the header, so their CORS preflights are not broken.

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** One propagateTo entry as a RegExp over absolute URLs. */
export function entryToRegExp(entry) {
  if (entry instanceof RegExp) return entry;
  if (typeof entry !== 'string' || entry === '') throw new TypeError('propagateTo entries are strings or RegExps');
  const u = new URL(entry);
  const isOrigin = entry.replace(/\/$/, '') === u.origin;
  if (isOrigin) {
    // The origin exactly: "http://h:80" must not match "http://h:8081/…".
    return new RegExp('^' + escapeRegExp(u.origin) + '([/?#]|$)');
  }
  return new RegExp('^' + escapeRegExp(entry));
}

/** Normalizes the propagateTo option (a string, RegExp or array of them) to RegExps. */
export function compilePropagateTo(option) {
  if (option == null) return [];
  const list = Array.isArray(option) ? option : [option];
  return list.map(entryToRegExp);
}

/** True when a call to `url`, made from a page at `pageOrigin`, should carry traceparent. */
export function shouldPropagate(url, pageOrigin, patterns) {
  let abs;
  try {
    abs = new URL(url, pageOrigin);
  } catch {
    return false;
  }
  if (abs.origin === pageOrigin) return true;
  return patterns.some((re) => {
    re.lastIndex = 0;
    return re.test(abs.href);
  });
}

/** Serializable form of the option, to keep it across reloads in sessionStorage. */
export function serializePropagateTo(option) {
  if (option == null) return [];
  const list = Array.isArray(option) ? option : [option];
  return list.map((e) => (e instanceof RegExp ? { re: e.source, flags: e.flags } : e));
}

export function deserializePropagateTo(list) {
  return (list || []).map((e) => (typeof e === 'string' ? e : new RegExp(e.re, e.flags)));
}
