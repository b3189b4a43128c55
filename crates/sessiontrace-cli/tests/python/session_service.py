"""A tiny HTTP service (Python stdlib http.server) instrumented with the Python opentelemetry-sdk, with a
parent-based sampler that samples nothing of its own (ParentBased(ALWAYS_OFF)). Used by
crates/sessiontrace-cli/tests/python_service.rs: called with a sessiontrace session's traceparent, it must
keep the session's trace, because session traces always carry the sampled flag.

Prints the port it listens on, then serves until killed. GET /work answers the trace id and span id of
its server span and whether it was sampled."""

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--otlp-http", required=True)
    args = parser.parse_args()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF),
                              resource=Resource.create({"service.name": "py-service"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{args.otlp_http}/v1/traces")))
    tracer = provider.get_tracer("sessiontrace-python-service")
    propagator = TraceContextTextMapPropagator()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            context = propagator.extract(dict(self.headers.items()))
            with tracer.start_as_current_span("GET /work", context=context, kind=trace.SpanKind.SERVER,
                                              attributes={"http.request.method": "GET"}) as span:
                with tracer.start_as_current_span("compute"):
                    pass
                ctx = span.get_span_context()
                body = json.dumps({"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                                   "sampled": ctx.trace_flags.sampled}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
