// Trace and span ids for session traces (DESIGN.md section 2):
// trace id = <prefix 6 hex><short_id 8 hex><18 random hex>; span ids are 8 random bytes.

const HEX = '0123456789abcdef';

/** Random lowercase hex string of `n` characters (crypto.getRandomValues when present). */
export function randomHex(n) {
  const bytes = new Uint8Array(Math.ceil(n / 2));
  const c = globalThis.crypto;
  if (c && c.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let s = '';
  for (const b of bytes) s += HEX[b >> 4] + HEX[b & 15];
  return s.slice(0, n);
}

/** The 14-hex trace id prefix of a session: `debdeb`/`cdbcdb` + short_id. */
export function sessionPrefix(session) {
  if (session.trace_id_prefix && /^[0-9a-f]{14}$/.test(session.trace_id_prefix)) {
    return session.trace_id_prefix;
  }
  if (!/^[0-9a-f]{8}$/.test(session.short_id || '')) throw new Error('session has no valid short_id');
  return (session.kind === 'continuous' ? 'cdbcdb' : 'debdeb') + session.short_id;
}

/** A 32-hex trace id with the given 14-hex prefix; never all zeros. */
export function sessionTraceId(prefix) {
  return prefix + randomHex(32 - prefix.length);
}

/** A 16-hex span id, never all zeros. */
export function spanId() {
  let id;
  do id = randomHex(16); while (id === '0000000000000000');
  return id;
}

/** An OpenTelemetry IdGenerator whose trace ids carry the session prefix (returned by getPrefix()). */
export class SessionIdGenerator {
  constructor(getPrefix) {
    this.getPrefix = getPrefix;
  }
  generateTraceId() {
    const prefix = this.getPrefix();
    return prefix ? sessionTraceId(prefix) : spanId() + spanId();
  }
  generateSpanId() {
    return spanId();
  }
}
