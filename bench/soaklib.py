"""Shared by bench/crash-soak.py and bench/soak.py: a `sessiontrace serve` child process on fresh loopback
ports, the record of what it acknowledged, a mixed client (sessions started and stopped, replay chunks,
traces and logs over OTLP/HTTP JSON) and the check that every acknowledged record is stored.

Only the standard library: the harness must outlive the server it kills.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
        is_json = "json" in (response.headers.get("content-type") or "")
        return response.status, (json.loads(text) if text and is_json else text)


class Server:
    def __init__(self, binary, data_dir, prefix=()):
        # prefix: a command the server runs under, e.g. ("taskset", "-c", "0").
        self.binary, self.data_dir, self.prefix = binary, data_dir, list(prefix)
        self.http, self.otlp, self.grpc = free_port(), free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.http}"
        self.otlp_url = f"http://127.0.0.1:{self.otlp}"
        self.process = None

    def start(self):
        started = time.monotonic()
        self.process = subprocess.Popen(
            self.prefix + [self.binary, "serve", "--data-dir", self.data_dir, "--http", f"127.0.0.1:{self.http}",
             "--otlp-http", f"127.0.0.1:{self.otlp}", "--otlp-grpc", f"127.0.0.1:{self.grpc}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.data_dir, "..", "server.log"), "ab"),
            env={**os.environ, "SESSIONTRACE_LOG": "warn"})
        while time.monotonic() - started < 60:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited at start with {self.process.returncode}: the store did not open")
            try:
                if call("GET", self.api + "/healthz")[0] == 200:
                    return time.monotonic() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise SystemExit("the server did not answer within 60 s of starting")

    def kill(self, sig=signal.SIGKILL):
        self.process.send_signal(sig)
        self.process.wait()


class Acked:
    """What the server acknowledged (answered 2xx), shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = {}   # id -> stopped (bool)
        self.chunks = {}     # session id -> number of events acknowledged (chunks 0..n-1, 1 event each)
        self.traces = {}     # trace id hex -> span count
        self.logs = {}       # trace id hex -> log count

    def counts(self):
        with self.lock:
            return (len(self.sessions), sum(self.chunks.values()), len(self.traces),
                    sum(self.traces.values()), sum(self.logs.values()))


def otlp_trace(trace_id, spans):
    start = time.time_ns()
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "soak"}}]},
            "scopeSpans": [{"spans": [{"traceId": trace_id, "spanId": f"{i + 1:016x}", "name": f"op {i}",
                                       "parentSpanId": "" if i == 0 else f"{1:016x}",
                                       "startTimeUnixNano": str(start + i), "endTimeUnixNano": str(start + 1_000_000),
                                       "attributes": [{"key": "n", "value": {"intValue": str(i)}}]}
                                      for i in range(spans)]}]}]}


def otlp_logs(trace_id, count):
    now = time.time_ns()
    return {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "soak"}}]},
            "scopeLogs": [{"logRecords": [{"timeUnixNano": str(now + i), "severityText": "INFO", "severityNumber": 9,
                                           "body": {"stringValue": f"log {i}"}, "traceId": trace_id,
                                           "spanId": f"{1:016x}"} for i in range(count)]}]}]}


def worker(server, acked, stop, rng, pause=0.0, latencies=None):
    """One client: a session with replay chunks, traces of its own and logs, stopped now and then; `pause`
    seconds between operations (0: flat out); each acknowledged call's seconds appended to `latencies`."""
    def timed(method, url, body=None):
        started = time.monotonic()
        result = call(method, url, body)
        if latencies is not None:
            latencies.append(time.monotonic() - started)
        return result

    session = None
    seq = 0
    while not stop.is_set():
        try:
            if session is None:
                status, body = timed("POST", server.api + "/api/sessions", {"name": "soak", "kind": "manual"})
                session, seq = body["id"], 0
                with acked.lock:
                    acked.sessions[session] = False
                    acked.chunks[session] = 0
            choice = rng.random()
            if choice < 0.35:
                event = {"type": 3, "timestamp": int(time.time() * 1000), "data": {"source": 2, "type": 2, "id": seq}}
                timed("POST", f"{server.api}/api/sessions/{session}/events", {"seq": seq, "events": [event]})
                with acked.lock:
                    acked.chunks[session] = seq + 1
                seq += 1
            elif choice < 0.75:
                trace_id = "%032x" % rng.getrandbits(128)
                spans = rng.randint(5, 60)
                timed("POST", server.otlp_url + "/v1/traces", otlp_trace(trace_id, spans))
                with acked.lock:
                    acked.traces[trace_id] = spans
                logs = rng.randint(1, 5)
                timed("POST", server.otlp_url + "/v1/logs", otlp_logs(trace_id, logs))
                with acked.lock:
                    acked.logs[trace_id] = logs
            elif choice < 0.80:
                timed("POST", f"{server.api}/api/sessions/{session}/stop")
                with acked.lock:
                    acked.sessions[session] = True
                session = None
            if pause:
                time.sleep(pause)
        except (OSError, urllib.error.URLError, ValueError):
            # The server is being killed: what was not acknowledged is not counted; start a new session.
            session = None
            time.sleep(0.05)


def verify(server, acked, since=None, sample=0, rng=None):
    """The acknowledged records are there: all of them, or (with `since`, the counts before this round)
    every one acknowledged since then plus `sample` older ones of each kind. Returns the number checked, or
    stops the soak at the first loss."""
    checked = 0
    with acked.lock:
        sessions, chunks = dict(acked.sessions), dict(acked.chunks)
        traces, logs = dict(acked.traces), dict(acked.logs)
    if since is not None:
        def pick(items, before):
            keys = list(items)
            old, new = keys[:before], keys[before:]
            return {k: items[k] for k in new + (rng.sample(old, min(sample, len(old))) if old else [])}
        sessions = pick(sessions, since[0])
        traces = pick(traces, since[1])
        logs = {k: v for k, v in logs.items() if k in traces}
    for session, stopped in sessions.items():
        _, body = call("GET", f"{server.api}/api/sessions/{session}")
        if stopped and body.get("stopped_at_ms") is None:
            raise SystemExit(f"LOST: the acknowledged stop of session {session}")
        checked += 1
        if chunks.get(session):
            _, events = call("GET", f"{server.api}/api/sessions/{session}/events")
            if len(events["events"]) < chunks[session]:
                raise SystemExit(f"LOST: session {session} has {len(events['events'])} of {chunks[session]} acknowledged chunks")
            checked += chunks[session]
    for trace_id, spans in traces.items():
        try:
            _, body = call("GET", f"{server.api}/api/traces/{trace_id}")
        except urllib.error.HTTPError as error:
            raise SystemExit(f"LOST: acknowledged trace {trace_id}: {error}")
        if len(body["spans"]) != spans:
            raise SystemExit(f"LOST: trace {trace_id} has {len(body['spans'])} of {spans} spans")
        checked += 1
    for trace_id, count in logs.items():
        _, body = call("GET", f"{server.api}/api/logs?trace_id={trace_id}&limit=100")
        if len(body["logs"]) < count:
            raise SystemExit(f"LOST: trace {trace_id} has {len(body['logs'])} of {count} acknowledged logs")
        checked += count
    return checked
