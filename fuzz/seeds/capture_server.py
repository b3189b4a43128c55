"""A tiny HTTP server on 127.0.0.1 that stands in for sessiontrace while fuzz/seeds/capture.sh runs real
clients against it, and writes down every request they make.

Each request goes to OUT/NNNN.json (method, path, headers, client) and OUT/NNNN.body (the body exactly as
received, still compressed when it was sent compressed). It answers like the server would, just enough for
the clients to carry on: OTLP exports get an empty success, `POST /api/sessions` gets a fixed session, replay
chunks get 202, and `/capture/page.html` + `/recorder.js` serve the browser page. Any other path (the page's
own "backend" calls) answers 502 for `/api/missing`, else `{"hello": "world"}`. It listens on two ports: the page and the recorder's
endpoint on the first, the page's backend on the second (another origin, listed in `propagateTo`: the
recorder never puts trace headers on calls to its own endpoint), with permissive CORS on both.

    python3 capture_server.py OUT PORT_FILE RECORDER_JS PAGE_HTML
"""

import itertools
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT, PORT_FILE, RECORDER_JS, PAGE_HTML = sys.argv[1:5]
SHORT_ID = "5eed5eed"
SESSION = {
    "id": "5eed5eed5eed5eed5eed5eed5eed5eed",
    "short_id": SHORT_ID,
    "kind": "manual",
    "name": "seed capture",
    "user": {"id": "u-seed"},
    "attributes": {},
    "tags": [],
    "capture": {"headers": True, "bodies": True},
    "trace_id_prefix": "debdeb" + SHORT_ID,
    "traceparent": "00-debdeb" + SHORT_ID + "0123456789abcdef01-0123456789abcdef-01",
    "tracestate": "sessiontrace=hb",
    "started_at": "2026-11-30T08:00:00.000Z",
    "started_at_ms": 1796025600000,
    "stopped_at": None,
    "stopped_at_ms": None,
    "live": True,
    "counts": {"traces": 0, "spans": 0, "logs": 0, "events": 0, "errors": 0},
    "services": [],
    "signals": {"rage": 0, "dead": 0, "error": 0},
}
numbers = itertools.count(1)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        with lock:
            number = next(numbers)
        meta = {"method": self.command, "path": self.path, "headers": [[k, v] for k, v in self.headers.items()]}
        with open(f"{OUT}/{number:04}.json", "w") as f:
            json.dump(meta, f, indent=1)
        with open(f"{OUT}/{number:04}.body", "wb") as f:
            f.write(body)

    def do_GET(self):
        self.record(b"")
        path = self.path.split("?")[0]
        if path == "/recorder.js":
            with open(RECORDER_JS, "rb") as f:
                return self.answer(200, f.read(), "text/javascript")
        if path == "/capture/page.html":
            with open(PAGE_HTML, "rb") as f:
                return self.answer(200, f.read(), "text/html")
        if path == "/favicon.ico":
            return self.answer(404, b"")
        if path == "/api/missing":
            return self.answer(502, b'{"error": "bad gateway"}')
        return self.answer(200, b'{"hello": "world"}')

    def do_OPTIONS(self):
        self.record(b"")
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
        self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.record(body)
        path = self.path.split("?")[0]
        if path.startswith("/v1/"):
            if "json" in (self.headers.get("Content-Type") or ""):
                return self.answer(200, b"{}")
            return self.answer(200, b"", "application/x-protobuf")
        if path == "/api/sessions":
            return self.answer(201, json.dumps(SESSION).encode())
        if path.startswith("/api/sessions/") and path.endswith("/events"):
            return self.answer(202, b'{"accepted": true}')
        if path.startswith("/api/sessions/"):
            return self.answer(200, json.dumps({**SESSION, "live": False}).encode())
        return self.answer(200, b'{"hello": "world"}')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
backend = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=backend.serve_forever, daemon=True).start()
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(f"{server.server_address[1]} {backend.server_address[1]}\n")
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
