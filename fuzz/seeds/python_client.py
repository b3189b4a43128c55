"""The real Python OpenTelemetry SDK exporting one small session trace (a server span joining the session's
traceparent, two children, one with an exception event) over OTLP/HTTP protobuf, once plain and once with
gzip, to the capture server (fuzz/seeds/capture.sh). The Python SDK has no OTLP/JSON exporter.

    python python_client.py http://127.0.0.1:PORT
"""

import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "00-debdeb5eed5eed0123456789abcdef01-0123456789abcdef-01"


def export(endpoint, compression, service):
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", compression=compression)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    # One export request for the whole trace: the batch processor, flushed at shutdown.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("sessiontrace-seed-capture")
    context = TraceContextTextMapPropagator().extract(
        {"traceparent": TRACEPARENT, "tracestate": "sessiontrace=hb"})
    with tracer.start_as_current_span(
            "POST /checkout", context=context, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": "POST", "url.path": "/checkout", "http.response.status_code": 502,
                        "http.request.header.authorization": ["Bearer seed-secret"]}) as root:
        root.set_status(trace.Status(trace.StatusCode.ERROR, "payment failed"))
        with tracer.start_as_current_span("SELECT orders", kind=trace.SpanKind.CLIENT,
                                          attributes={"db.system.name": "sqlite", "db.query.text": "SELECT 1"}):
            pass
        with tracer.start_as_current_span("charge card", kind=trace.SpanKind.CLIENT) as charge:
            try:
                raise ConnectionError("payment service unavailable")
            except ConnectionError as error:
                charge.record_exception(error)
                charge.set_status(trace.Status(trace.StatusCode.ERROR, str(error)))
    provider.shutdown()


def main():
    endpoint = sys.argv[1]
    export(endpoint, Compression.NoCompression, "py-shop")
    export(endpoint, Compression.Gzip, "py-shop-gzip")


if __name__ == "__main__":
    main()
