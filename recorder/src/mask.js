// Browser-side masking of captured request/response data (DESIGN.md section 5): sensitive headers and
// JSON body keys become "***MASKED***", bodies are cut at 64 KiB, streaming bodies are never read.

export const MASK = '***MASKED***';
export const BODY_LIMIT = 64 * 1024;

export const MASKED_HEADERS = [
  'authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key', 'x-auth-token',
];

export const MASKED_BODY_KEYS = [
  'password', 'passwd', 'secret', 'token', 'access_token', 'refresh_token', 'id_token', 'api_key',
  'apikey', 'authorization', 'credit_card', 'card_number', 'cvv', 'ssn',
];

const STREAMING_TYPES = ['text/event-stream', 'ndjson', 'grpc', 'octet-stream'];

/** True when a content type is a streaming one whose body must never be read. */
export function isStreamingContentType(contentType) {
  const ct = String(contentType || '').toLowerCase();
  return STREAMING_TYPES.some((t) => ct.includes(t));
}

/**
 * Headers (a Headers object, an array of pairs or a plain object) as {lowercase name: value},
 * with the sensitive ones masked. `extra` adds names to the masked list.
 */
export function maskHeaders(headers, extra = []) {
  const masked = new Set([...MASKED_HEADERS, ...extra.map((h) => h.toLowerCase())]);
  const out = {};
  const add = (name, value) => {
    const key = String(name).toLowerCase();
    const v = masked.has(key) ? MASK : String(value);
    out[key] = key in out && !masked.has(key) ? out[key] + ', ' + v : v;
  };
  if (!headers) return out;
  if (typeof headers.forEach === 'function' && !Array.isArray(headers)) {
    headers.forEach((value, name) => add(name, value)); // Headers
  } else if (Array.isArray(headers)) {
    for (const [name, value] of headers) add(name, value);
  } else {
    for (const name of Object.keys(headers)) add(name, headers[name]);
  }
  return out;
}

/** Parses the raw header block of XMLHttpRequest.getAllResponseHeaders() into pairs. */
export function parseRawHeaders(raw) {
  const pairs = [];
  for (const line of String(raw || '').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) pairs.push([line.slice(0, i).trim(), line.slice(i + 1).trim()]);
  }
  return pairs;
}

/** Replaces the value of every sensitive key, at any depth, case-insensitively. */
export function maskJsonValue(value, keys) {
  if (Array.isArray(value)) return value.map((v) => maskJsonValue(v, keys));
  if (value && typeof value === 'object') {
    const out = {};
    for (const k of Object.keys(value)) {
      out[k] = keys.has(k.toLowerCase()) ? MASK : maskJsonValue(value[k], keys);
    }
    return out;
  }
  return value;
}

/** Masks a body string: JSON bodies get their sensitive keys masked; other text is kept as is. */
export function maskBody(body, extraKeys = []) {
  if (typeof body !== 'string' || body === '') return body;
  const trimmed = body.trimStart();
  if (trimmed[0] !== '{' && trimmed[0] !== '[') return body;
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body;
  }
  const keys = new Set([...MASKED_BODY_KEYS, ...extraKeys.map((k) => k.toLowerCase())]);
  return JSON.stringify(maskJsonValue(parsed, keys));
}

/** Cuts a string to at most `limit` UTF-8 bytes: {body, truncated}. */
export function truncate(body, limit = BODY_LIMIT) {
  const bytes = new TextEncoder().encode(body);
  if (bytes.length <= limit) return { body, truncated: false };
  let cut = new TextDecoder().decode(bytes.subarray(0, limit));
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1); // a multi-byte character cut in half
  return { body: cut, truncated: true };
}

/**
 * Masks then truncates a captured body: {body, truncated}. Masking runs on the whole body first,
 * so a secret near the cut is never stored half-masked.
 */
export function captureBody(body, { limit = BODY_LIMIT, extraKeys = [] } = {}) {
  if (body == null) return null;
  return truncate(maskBody(String(body), extraKeys), limit);
}
