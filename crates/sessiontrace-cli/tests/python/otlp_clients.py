"""Sends spans and logs to a running sessiontrace server with the real Python OpenTelemetry SDK, over
OTLP/HTTP (protobuf) and OTLP/gRPC, inside a session's trace context and outside it, then prints what it
sent as JSON for the Rust test (crates/sessiontrace-cli/tests/real_clients.rs) to look for."""

import argparse
import json
import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def record(provider, service, traceparent, sent):
    tracer = provider.get_tracer("sessiontrace-python-e2e")
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    with tracer.start_as_current_span("GET /cart", context=context, kind=trace.SpanKind.SERVER,
                                      attributes={"client": "python", "http.request.method": "GET"}) as root:
        spans = [root]
        for step in range(3):
            with tracer.start_as_current_span(f"query {step}", attributes={"client": "python", "step": step}) as child:
                spans.append(child)
    for span in spans:
        ctx = span.get_span_context()
        sent["spans"].append({"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                              "service": service, "session": True})
    with tracer.start_as_current_span("cron tick", attributes={"client": "python"}) as other:
        ctx = other.get_span_context()
        sent["spans"].append({"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                              "service": service, "session": False})
    return context


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True)
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--traceparent", required=True)
    args = parser.parse_args()
    sent = {"spans": [], "session_logs": 0}

    exporters = [
        ("py-http", HttpSpanExporter(endpoint=f"{args.http}/v1/traces")),
        ("py-grpc", GrpcSpanExporter(endpoint=args.grpc, insecure=True)),
    ]
    for service, exporter in exporters:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        session_context = record(provider, service, args.traceparent, sent)
        if service == "py-grpc":
            logger_provider = LoggerProvider(resource=Resource.create({"service.name": service}))
            logger_provider.add_log_record_processor(
                SimpleLogRecordProcessor(GrpcLogExporter(endpoint=args.grpc, insecure=True)))
            logger = logging.getLogger("sessiontrace-e2e")
            logger.propagate = False
            logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
            logger.setLevel(logging.INFO)
            tracer = provider.get_tracer("sessiontrace-python-e2e")
            with tracer.start_as_current_span("log inside session", context=session_context,
                                              attributes={"client": "python"}) as span:
                ctx = span.get_span_context()
                sent["spans"].append({"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                                      "service": service, "session": True})
                logger.warning("stock low for %s", "sku-1")
                sent["session_logs"] += 1
            logger.info("outside any session")
            logger_provider.shutdown()
        provider.shutdown()
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
