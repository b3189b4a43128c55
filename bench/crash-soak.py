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
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soaklib import Acked, Server, verify, worker  # noqa: E402


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
