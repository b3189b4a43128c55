"""Turns what capture_server.py wrote down (one folder per client) into seed files under fuzz/corpus/, in
the input format each fuzz target reads (see fuzz/fuzz_targets/*.rs):

- otlp_protobuf, otlp_json, replay: the request body as sent (replay: after gzip is undone);
- decompress: one byte naming the encoding (1 = gzip), then the body as sent;
- trace_context: `name: value` lines, the `traceparent` line first (the target also reads its first line
  as a bare traceparent), then the other headers of that request as received;
- masking: one byte naming the case (0 = a request header `name:value`, 1 = a JSON body), then the text.

Every seed must stay under 64 KiB (scripts/fuzz.sh runs with -max_len=65536).

    python3 convert.py CAPTURE_DIR CORPUS_DIR
"""

import gzip
import json
import os
import sys

capture, corpus = sys.argv[1:3]
MAX_SEED = 64 * 1024
GZIP = b"\x01"  # decompress: ENCODINGS[1]
HEADER, BODY = b"\x00", b"\x01"  # masking: header attribute (string value) / JSON body


def requests(client):
    folder = os.path.join(capture, client)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(folder, name)) as f:
            meta = json.load(f)
        with open(os.path.join(folder, name[:-5] + ".body"), "rb") as f:
            body = f.read()
        headers = {key.lower(): value for key, value in meta["headers"]}
        yield meta["method"], meta["path"].split("?")[0], meta["headers"], headers, body


def write(target, name, data):
    if len(data) > MAX_SEED:
        sys.exit(f"convert: {target}/{name} is {len(data)} bytes, over {MAX_SEED}")
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)
    print(f"convert: {target}/{name} ({len(data)} bytes)")


def header_lines(raw_headers):
    """The request's headers as the trace_context target reads them, traceparent first."""
    first = [f"{k}: {v}" for k, v in raw_headers if k.lower() == "traceparent"]
    rest = [f"{k}: {v}" for k, v in raw_headers if k.lower() != "traceparent"]
    return "\n".join(first + rest).encode()


def first(items, what):
    if not items:
        sys.exit(f"convert: no {what} was captured")
    return items[0]


# The Python SDK: OTLP/HTTP protobuf, plain and gzip.
python = [(h, b) for m, p, _, h, b in requests("python") if p == "/v1/traces"]
plain = first([b for h, b in python if "content-encoding" not in h], "plain Python protobuf export")
gzipped = first([b for h, b in python if h.get("content-encoding") == "gzip"], "gzip Python protobuf export")
write("otlp_protobuf", "python_sdk_traces.pb", plain)
write("decompress", "python_sdk_traces_gzip", GZIP + gzipped)

# The Rust SDK (the demo shop's gateway): OTLP/HTTP protobuf and JSON, and the headers its traced client puts
# on the call to the next service.
rust_pb = list(requests("rust-protobuf"))
write("otlp_protobuf", "rust_sdk_traces.pb", first([b for m, p, _, h, b in rust_pb if p == "/v1/traces"], "Rust protobuf export"))
rust_json = list(requests("rust-json"))
write("otlp_json", "rust_sdk_traces.json", first([b for m, p, _, h, b in rust_json if p == "/v1/traces"], "Rust JSON export"))
call = first([raw for m, p, raw, h, b in rust_pb if "traceparent" in h and not p.startswith("/v1/")], "Rust client call")
write("trace_context", "rust_sdk_client_headers", header_lines(call))

# The browser recorder: its OpenTelemetry web exporter's OTLP/JSON (one export per kind of span), its replay
# chunk (gzip as sent, and the JSON inside), and the page's fetch to a propagateTo backend.
browser = list(requests("browser"))
exports = [b for m, p, _, h, b in browser if p == "/v1/traces"]
for body in exports:
    scopes = {s["scope"]["name"] for r in json.loads(body)["resourceSpans"] for s in r["scopeSpans"]}
    if any("document-load" in s for s in scopes):
        write("otlp_json", "browser_otlp_traces_document_load.json", body)
    elif any("fetch" in s or "xml-http-request" in s for s in scopes):
        write("otlp_json", "browser_otlp_traces_fetch_xhr.json", body)
    elif any("user-interaction" in s for s in scopes):
        write("otlp_json", "browser_otlp_traces_click.json", body)
chunk = first([b for m, p, _, h, b in browser if p.endswith("/events") and h.get("content-encoding") == "gzip"],
              "gzip replay chunk")
write("decompress", "recorder_replay_chunk_gzip", GZIP + chunk)
write("replay", "recorder_replay_chunk.json", gzip.decompress(chunk))
fetch = first([(raw, h, b) for m, p, raw, h, b in browser if m == "POST" and "traceparent" in h], "traced fetch")
write("trace_context", "browser_fetch_headers", header_lines(fetch[0]))
write("masking", "browser_fetch_header_authorization", HEADER + f"authorization:{fetch[1]['authorization']}".encode())
write("masking", "browser_fetch_body_json", BODY + fetch[2])
