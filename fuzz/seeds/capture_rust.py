"""Runs the demo shop's gateway (the Rust sessiontrace-sdk: `init_with`, the tower layer, `TracedClient`)
with its OTLP export and its downstream `orders` service both pointed at the capture server, sends it one
checkout inside a session (traceparent + `tracestate: sessiontrace=hb`, so headers and bodies are
captured), then stops it with SIGTERM so the SDK flushes. The gateway's call to `orders` is made with every
propagation format on (OTEL_PROPAGATORS), so the capture server sees the W3C, B3 and x-trace-id headers the
SDK writes.

    python3 capture_rust.py DEMO_SHOP_BIN CAPTURE_ORIGIN BACKEND_ADDRESS PROTOCOL
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

demo_shop, capture, backend, protocol = sys.argv[1:5]

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    gateway_port = probe.getsockname()[1]
env = {
    **os.environ,
    "OTEL_EXPORTER_OTLP_ENDPOINT": capture,
    "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
    "OTEL_PROPAGATORS": "tracecontext,b3,b3multi,xtraceid",
    "OTEL_METRIC_EXPORT_INTERVAL": "600000",
    "DEMO_LOG": "warn",
}
gateway = subprocess.Popen(
    [demo_shop, "gateway", "--gateway", f"127.0.0.1:{gateway_port}", "--orders", backend,
     "--inventory", backend, "--payment", backend, "--sessiontrace-api", capture],
    env=env)
try:
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway_port}/api/checkout",
        data=json.dumps({"sku": "book-1", "quantity": 2, "card": "4111 1111 1111 1111"}).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer seed-secret",
                 "traceparent": "00-debdeb5eed5eed0123456789abcdef02-0123456789abcdef-01",
                 "tracestate": "sessiontrace=hb"})
    print(urllib.request.urlopen(request, timeout=10).read().decode(), file=sys.stderr)
finally:
    gateway.send_signal(signal.SIGTERM)
    gateway.wait(timeout=30)
