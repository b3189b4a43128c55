// Network capture: fetch and XMLHttpRequest calls become `sessiontrace/network` custom events with
// method, URL, status, timing and the call's trace/span ids; headers and bodies only when the session's
// capture settings ask for them, masked here before they leave the browser (see mask.js).
//
// These wrappers are installed BEFORE the OpenTelemetry instrumentations, so they sit underneath them:
// OTel's fetch wrapper calls ours synchronously inside the fetch span's context (so the active span is
// the call's span). For XHR the span comes from the instrumentation's applyCustomAttributesOnSpan hook.

import { trace } from '@opentelemetry/api';
import { maskHeaders, parseRawHeaders, captureBody, isStreamingContentType } from './mask.js';

/** Request body as text when it is cheap and safe to read, else null. */
function bodyText(body) {
  if (body == null) return null;
  if (typeof body === 'string') return body;
  if (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams) return body.toString();
  return null; // Blob, FormData, ArrayBuffer, streams: not captured
}

function bodyField(text, opts) {
  if (text == null) return {};
  const { body, truncated } = captureBody(text, { extraKeys: opts.maskKeys });
  return truncated ? { body, body_truncated: true } : { body };
}

/**
 * @param {object} opts
 * @param {() => boolean} opts.active        recording right now?
 * @param {(url: string) => boolean} opts.skip  true for the recorder's own calls
 * @param {() => {headers?: boolean, bodies?: boolean}} opts.capture
 * @param {(payload: object) => void} opts.emit
 * @param {string[]} [opts.maskKeys] [opts.maskHeaders] extra names to mask
 */
export function makeFetchWrapper(nativeFetch, opts) {
  return function sessiontraceFetch(input, init) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const url = isRequest ? input.url : String(input);
    if (!opts.active() || opts.skip(url)) return nativeFetch.call(globalThis, input, init);

    const sc = trace.getActiveSpan()?.spanContext();
    const cap = opts.capture();
    const startMs = Date.now();
    const t0 = performance.now();
    const payload = {
      method: String((init && init.method) || (isRequest ? input.method : 'GET')).toUpperCase(),
      url: new URL(url, location.href).href,
      status: 0,
      start_ms: startMs,
      duration_ms: 0,
      trace_id: sc ? sc.traceId : null,
      span_id: sc ? sc.spanId : null,
    };
    let reqBody = Promise.resolve(null);
    if (cap.headers || cap.bodies) {
      const headers = (init && init.headers) || (isRequest ? input.headers : undefined);
      payload.request = {};
      if (cap.headers) payload.request.headers = maskHeaders(headers, opts.maskHeaders);
      if (cap.bodies) {
        if (init && init.body != null) reqBody = Promise.resolve(bodyText(init.body));
        else if (isRequest && input.body && !isStreamingContentType(input.headers.get('content-type'))) {
          reqBody = input.clone().text().catch(() => null);
        }
      }
    }

    const done = async (response, error) => {
      payload.duration_ms = performance.now() - t0;
      if (error) payload.error = String((error && error.message) || error);
      if (response) {
        payload.status = response.status;
        if (cap.headers || cap.bodies) payload.response = {};
        if (cap.headers) payload.response.headers = maskHeaders(response.headers, opts.maskHeaders);
        if (cap.bodies) {
          Object.assign(payload.request, bodyField(await reqBody, opts));
          const ct = response.headers.get('content-type');
          if (response.type !== 'opaque' && !isStreamingContentType(ct)) {
            const text = await response.clone().text().catch(() => null);
            Object.assign(payload.response, bodyField(text, opts));
          }
        }
      }
      opts.emit(payload);
    };

    let promise;
    try {
      promise = nativeFetch.call(globalThis, input, init);
    } catch (e) {
      done(null, e);
      throw e;
    }
    return promise.then(
      (response) => {
        done(response, null).catch(() => {});
        return response;
      },
      (error) => {
        done(null, error).catch(() => {});
        throw error;
      },
    );
  };
}

const xhrState = new WeakMap();

/** Emits an XHR call once both its end (loadend) and its span (OTel hook) are known. */
function maybeEmitXhr(xhr, opts) {
  const st = xhrState.get(xhr);
  if (!st || !st.ended || st.emitted) return;
  if (!st.spanContext && !st.spanWaitOver) return;
  st.emitted = true;
  if (st.spanContext) {
    st.payload.trace_id = st.spanContext.traceId;
    st.payload.span_id = st.spanContext.spanId;
  }
  opts.emit(st.payload);
}

/** The hook to pass as the XHR instrumentation's applyCustomAttributesOnSpan. */
export function xhrSpanHook(opts) {
  return (span, xhr) => {
    const st = xhrState.get(xhr);
    if (!st) return;
    st.spanContext = span.spanContext();
    maybeEmitXhr(xhr, opts);
  };
}

/** Patches XMLHttpRequest.prototype; returns a function that restores it. */
export function patchXhr(opts) {
  const proto = XMLHttpRequest.prototype;
  const orig = { open: proto.open, setRequestHeader: proto.setRequestHeader, send: proto.send };

  proto.open = function (method, url, ...rest) {
    xhrState.delete(this);
    const abs = new URL(String(url), location.href).href;
    if (opts.active() && !opts.skip(abs)) {
      xhrState.set(this, {
        headers: [],
        payload: { method: String(method).toUpperCase(), url: abs, status: 0, start_ms: 0, duration_ms: 0, trace_id: null, span_id: null },
      });
    }
    return orig.open.call(this, method, url, ...rest);
  };

  proto.setRequestHeader = function (name, value) {
    const st = xhrState.get(this);
    if (st) st.headers.push([name, value]);
    return orig.setRequestHeader.call(this, name, value);
  };

  proto.send = function (body) {
    const st = xhrState.get(this);
    if (st) {
      const cap = opts.capture();
      const p = st.payload;
      p.start_ms = Date.now();
      const t0 = performance.now();
      const xhr = this;
      const onEnd = () => {
        xhr.removeEventListener('loadend', onEnd);
        p.duration_ms = performance.now() - t0;
        p.status = xhr.status;
        if (xhr.status === 0) p.error = 'network error or aborted';
        if (cap.headers || cap.bodies) {
          p.request = {};
          p.response = {};
        }
        if (cap.headers) {
          p.request.headers = maskHeaders(st.headers, opts.maskHeaders);
          p.response.headers = maskHeaders(parseRawHeaders(xhr.getAllResponseHeaders()), opts.maskHeaders);
        }
        if (cap.bodies) {
          Object.assign(p.request, bodyField(bodyText(body), opts));
          const ct = xhr.getResponseHeader('content-type');
          let text = null;
          if (!isStreamingContentType(ct)) {
            if (xhr.responseType === '' || xhr.responseType === 'text') text = xhr.responseText;
            else if (xhr.responseType === 'json' && xhr.response != null) text = JSON.stringify(xhr.response);
          }
          Object.assign(p.response, bodyField(text, opts));
        }
        st.ended = true;
        maybeEmitXhr(xhr, opts);
        // The span hook can run a little after loadend (OTel waits for resource timing); don't wait forever.
        setTimeout(() => {
          st.spanWaitOver = true;
          maybeEmitXhr(xhr, opts);
        }, 1000);
      };
      this.addEventListener('loadend', onEnd);
    }
    return orig.send.call(this, body);
  };

  return () => Object.assign(proto, orig);
}
