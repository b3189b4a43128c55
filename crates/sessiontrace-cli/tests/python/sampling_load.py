"""Mixed traffic for the sampling test (crates/sessiontrace-cli/tests/sampling.rs): session traces (their trace
ids carry the session prefix, taken from a remote parent `traceparent`), error traces (one child span with an
error status and an exception event) and plain traces, sent concurrently by the real Python OpenTelemetry SDK
over OTLP/HTTP and OTLP/gRPC with batching span processors. Small export batches make a trace's spans arrive in
several requests, so a child's error often comes before (or after) the rest of its trace. Prints what it sent
as JSON: trace id -> span count, by class."""

import argparse
import json
import random
import threading

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def one_trace(tracer, kind, prefix, rng):
    context = None
    if kind == "session":
        trace_id = prefix + "%018x" % rng.getrandbits(72)
        traceparent = "00-%s-%016x-01" % (trace_id, rng.getrandbits(64) | 1)
        context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    with tracer.start_as_current_span("GET /item", context=context, kind=trace.SpanKind.SERVER) as root:
        with tracer.start_as_current_span("load item"):
            pass
        with tracer.start_as_current_span("charge card") as child:
            if kind == "error":
                child.record_exception(ValueError("card declined"))
                child.set_status(Status(StatusCode.ERROR, "card declined"))
    return "%032x" % root.get_span_context().trace_id, 3


def worker(provider, kinds, prefix, seed, sent, lock):
    tracer = provider.get_tracer("sessiontrace-sampling-test")
    rng = random.Random(seed)
    mine = {"session": {}, "error": {}, "plain": {}}
    for kind in kinds:
        trace_id, spans = one_trace(tracer, kind, prefix, rng)
        mine[kind][trace_id] = spans
    with lock:
        for kind, traces in mine.items():
            sent[kind].update(traces)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True)
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--prefix", required=True, help="the session's 14-hex trace-id prefix")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--others", type=int, default=10000)
    parser.add_argument("--error-every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    kinds = ["session"] * args.sessions
    kinds += ["error" if n % args.error_every == 0 else "plain" for n in range(args.others)]
    random.Random(7).shuffle(kinds)
    sent = {"session": {}, "error": {}, "plain": {}}
    lock = threading.Lock()
    providers = []
    for number, exporter in enumerate([HttpSpanExporter(endpoint=f"{args.http}/v1/traces"),
                                       GrpcSpanExporter(endpoint=args.grpc, insecure=True)]):
        provider = TracerProvider(resource=Resource.create({"service.name": f"py-sampling-{number}"}))
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=200,
                                                       schedule_delay_millis=50, max_queue_size=100000))
        providers.append(provider)
    threads = []
    for number in range(args.threads):
        share = kinds[number::args.threads]
        provider = providers[number % len(providers)]
        threads.append(threading.Thread(target=worker, args=(provider, share, args.prefix, number, sent, lock)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for provider in providers:
        provider.force_flush()
        provider.shutdown()
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
