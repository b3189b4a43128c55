// Browser tracing with the OpenTelemetry web SDK while a session records: session-prefixed trace ids,
// always sampled, traceparent only to same-origin and `propagateTo` URLs, spans exported as OTLP/HTTP
// JSON to {endpoint}/v1/traces. startTracing() returns {flush, stop}.

import { context, propagation, trace, createTraceState, SamplingDecision } from '@opentelemetry/api';
import { WebTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-web';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { XMLHttpRequestInstrumentation } from '@opentelemetry/instrumentation-xml-http-request';
import { DocumentLoadInstrumentation } from '@opentelemetry/instrumentation-document-load';
import { UserInteractionInstrumentation } from '@opentelemetry/instrumentation-user-interaction';
import { SessionIdGenerator } from './ids.js';

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Samples every span (a session's traces are kept whole) and gives root spans the session's `tracestate`
 * (`sessiontrace=h`, `b` or `0`), so sessiontrace-sdk services capture only what the session asked for.
 * The default (`sessiontrace=hb`, capture everything) is what services do without it, so it is not sent:
 * a header fewer for cross-origin backends whose CORS does not list `tracestate`.
 */
export class SessionSampler {
  constructor(tracestate) {
    this.traceState = tracestate && tracestate !== 'sessiontrace=hb' ? createTraceState(tracestate) : undefined;
  }
  shouldSample(ctx) {
    const isRoot = !trace.getSpanContext(ctx);
    return { decision: SamplingDecision.RECORD_AND_SAMPLED, traceState: isRoot ? this.traceState : undefined };
  }
  toString() {
    return 'SessionSampler';
  }
}

/**
 * @param {object} o
 * @param {string} o.endpoint     sessiontrace server base URL
 * @param {string} o.prefix       14-hex trace id prefix of the session
 * @param {object} o.session      the server's Session object
 * @param {RegExp[]} o.propagateTo
 * @param {string} o.serviceName
 * @param {Function} o.xhrHook    applyCustomAttributesOnSpan for XHR (network capture)
 * @param {object} [o.headers]    sent with every span export (the ingest key's Authorization)
 */
export function startTracing(o) {
  let prefix = o.prefix;
  const provider = new WebTracerProvider({
    resource: resourceFromAttributes({
      'service.name': o.serviceName,
      'session.id': o.session.id,
      'telemetry.sdk.language': 'webjs',
    }),
    idGenerator: new SessionIdGenerator(() => prefix),
    sampler: new SessionSampler(o.session.tracestate),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: o.endpoint + '/v1/traces', headers: { ...o.headers } }), {
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  provider.register(); // StackContextManager + W3C trace context propagator

  // The recorder's own calls (events upload, span export) are never traced nor given traceparent.
  const ignoreUrls = [new RegExp('^' + escapeRegExp(o.endpoint) + '/')];
  const instrumentations = [
    new DocumentLoadInstrumentation(), // reads <meta name="traceparent"> to join the server's trace
    new UserInteractionInstrumentation({ eventNames: ['click', 'submit'] }),
    new FetchInstrumentation({ ignoreUrls, propagateTraceHeaderCorsUrls: o.propagateTo }),
    new XMLHttpRequestInstrumentation({
      ignoreUrls,
      propagateTraceHeaderCorsUrls: o.propagateTo,
      applyCustomAttributesOnSpan: o.xhrHook,
    }),
  ];
  const unregister = registerInstrumentations({ tracerProvider: provider, instrumentations });

  return {
    flush: () => provider.forceFlush(),
    async stop() {
      unregister();
      prefix = null;
      try {
        await provider.forceFlush();
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
      }
    },
  };
}
