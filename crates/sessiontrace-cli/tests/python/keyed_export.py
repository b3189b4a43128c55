"""Exports spans with the real Python OpenTelemetry SDK configured only by the standard environment
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_HEADERS=Authorization=<key>`),
one export call per span so that a tight rate limit on the key answers some of them with 429 /
RESOURCE_EXHAUSTED, which the SDK retries. Prints the trace ids it exported and each export's result as
JSON, for crates/sessiontrace-cli/tests/auth.rs."""

import argparse
import json
import os

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=6)
    parser.add_argument("--service", default="py-keyed")
    args = parser.parse_args()
    if os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter()
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span):
            results.append(exporter.export((span,)) == SpanExportResult.SUCCESS)

    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("sessiontrace-keyed")
    trace_ids = []
    for n in range(args.spans):
        with tracer.start_as_current_span(f"work {n}") as span:
            trace_ids.append(f"{span.get_span_context().trace_id:032x}")
    print(json.dumps({"trace_ids": trace_ids, "exported": results}))


if __name__ == "__main__":
    main()
