#!/usr/bin/env python3
"""SIGKILL soak (issue 17): a mixed load — sessions started and stopped, replay chunks uploaded, traces and
logs over OTLP/HTTP JSON — against `sessiontrace serve` on one data directory, killed with SIGKILL at a
random moment of each round and restarted, --rounds times over about --minutes minutes. After every restart
it checks that the records acknowledged before the kill are there — all those of the round and 200 older
ones of each kind (every one of them at the end): each session (and its stopped state when the stop was
acknowledged), replay chunk (its events), trace (all its spans) and log record. It prints one line per round and a summary, and exits
non-zero on the first loss or on a store that does not open.

    bench/crash-soak.sh [--rounds 20] [--minutes 10] [--workers 4]
    (bench/crash-soak.sh builds the release binary; SESSIONTRACE_BIN=path uses another.)

Only the standard library: the harness must outlive the server it kills.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
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
    def __init__(self, binary, data_dir):
        self.binary, self.data_dir = binary, data_dir
        self.http, self.otlp, self.grpc = free_port(), free_port(), free_port()
        self.api = f"http://127.0.0.1:{self.http}"
        self.otlp_url = f"http://127.0.0.1:{self.otlp}"
        self.process = None

    def start(self):
        started = time.monotonic()
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--http", f"127.0.0.1:{self.http}",
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

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
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


def worker(server, acked, stop, rng):
    """One client: a session with replay chunks, traces of its own and logs, stopped now and then."""
    session = None
    seq = 0
    while not stop.is_set():
        try:
            if session is None:
                status, body = call("POST", server.api + "/api/sessions", {"name": "soak", "kind": "manual"})
                session, seq = body["id"], 0
                with acked.lock:
                    acked.sessions[session] = False
                    acked.chunks[session] = 0
            choice = rng.random()
            if choice < 0.35:
                event = {"type": 3, "timestamp": int(time.time() * 1000), "data": {"source": 2, "type": 2, "id": seq}}
                call("POST", f"{server.api}/api/sessions/{session}/events", {"seq": seq, "events": [event]})
                with acked.lock:
                    acked.chunks[session] = seq + 1
                seq += 1
            elif choice < 0.75:
                trace_id = "%032x" % rng.getrandbits(128)
                spans = rng.randint(5, 60)
                call("POST", server.otlp_url + "/v1/traces", otlp_trace(trace_id, spans))
                with acked.lock:
                    acked.traces[trace_id] = spans
                logs = rng.randint(1, 5)
                call("POST", server.otlp_url + "/v1/logs", otlp_logs(trace_id, logs))
                with acked.lock:
                    acked.logs[trace_id] = logs
            elif choice < 0.80:
                call("POST", f"{server.api}/api/sessions/{session}/stop")
                with acked.lock:
                    acked.sessions[session] = True
                session = None
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="sessiontrace-soak-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    server = Server(args.binary, data)
    acked = Acked()
    round_seconds = args.minutes * 60 / args.rounds
    opened = [server.start()]
    began = time.monotonic()
    for number in range(1, args.rounds + 1):
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(server, acked, stop, random.Random(rng.random())))
                   for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        # A random moment of the round (at least a second in, so every round writes something).
        with acked.lock:
            since = (len(acked.sessions), len(acked.traces))
        time.sleep(rng.uniform(1.0, max(1.0, round_seconds - 2)))
        server.kill()
        killed_at = time.monotonic() - began
        stop.set()
        for thread in threads:
            thread.join()
        opened.append(server.start())
        checked = verify(server, acked, since=since, sample=200, rng=rng)
        s, e, t, sp, lg = acked.counts()
        print(f"round {number:>2}: killed at {killed_at:6.1f} s; reopened in {opened[-1]:.2f} s; "
              f"{checked:,} records checked (this round's and 200 older of each kind) of {s} sessions, {e} replay chunks, "
              f"{t} traces / {sp} spans, {lg} logs acknowledged", flush=True)
    checked = verify(server, acked)
    print(f"at the end: all {checked:,} acknowledged records present")
    server.kill()
    print(f"{args.rounds} SIGKILLs over {(time.monotonic() - began) / 60:.1f} min: every acknowledged record present "
          f"after each restart; the store opened every time (slowest {max(opened):.2f} s)")
    print(f"reproduce: bench/crash-soak.sh --rounds {args.rounds} --minutes {args.minutes:g} --workers {args.workers}")


if __name__ == "__main__":
    main()
