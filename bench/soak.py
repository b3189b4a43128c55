#!/usr/bin/env python3
"""Soak (issue 17): `sessiontrace serve` for --minutes at half its capacity — the load generator at a steady
rate (half of what it accepts flat out in 15 s, unless --rate) plus --workers paced clients with the demo's
mixed shape (sessions started and stopped, replay chunks, traces and logs) — sampled once a minute: the
server's RSS, open files, CPU, data directory size, the load's accepted spans/s and p99 latency (from the
load generator's --interval-log) and the mixed clients' p99. Writes the CSV and (with matplotlib) a PNG,
then checks that every acknowledged record is stored and prints how flat each figure stayed after the
warm-up.

    bench/soak.sh [--minutes 60] [--rate SPANS_PER_S] [--workers 4] [--out docs/soak]
    (bench/soak.sh builds the release binary; SESSIONTRACE_BIN=path uses another.)

The server runs on CPU 0, the load generator on CPU 1 (as in bench/overload.sh).
"""

import argparse
import atexit
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soaklib import Acked, Server, call, verify, worker  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def dir_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total / 2**20


def percentile(values, p):
    values = sorted(values)
    return values[round((len(values) - 1) * p)] if values else 0.0


def stored_spans(server):
    # Counting a few hundred million spans on a busy server can take seconds.
    return call("GET", server.api + "/api/stats", timeout=600)[1]["spans"]


def loadgen(binary, server, rate, seconds, interval_log=None):
    command = ["taskset", "-c", "1", binary, "loadgen", "--endpoint", server.otlp_url, "--connections", "16",
               "--duration", str(seconds), "--json", "--quiet"]
    if rate:
        command += ["--rate", str(rate)]
    if interval_log:
        command += ["--interval-log", interval_log, "--interval", "60"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def flatness(rows, column):
    values = [float(r[column]) for r in rows]
    mean = sum(values) / len(values)
    spread = max(abs(v - mean) for v in values) / mean * 100 if mean else 0.0
    return mean, min(values), max(values), spread


def plot(rows, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: the PNG is not drawn (bench/soak.sh installs it into bench/.venv-plot)")
        return
    minutes = [int(r["minute"]) for r in rows]
    panels = [("rss_mib", "RSS (MiB)"), ("open_files", "open files"), ("ingest_p99_ms", "ingest p99 (ms)"),
              ("api_p99_ms", "mixed clients p99 (ms)"), ("spans_per_second", "accepted spans/s"),
              ("disk_mib", "data directory (MiB)")]
    fig, axes = plt.subplots(3, 2, figsize=(11, 9), sharex=True)
    for axis, (column, label) in zip(axes.flat, panels):
        axis.plot(minutes, [float(r[column]) for r in rows], marker=".")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("minute")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--rate", type=int, default=0, help="load generator spans/s (default: half the capacity)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between a mixed client's calls")
    parser.add_argument("--warmup", type=int, default=5, help="minutes left out of the flatness figures")
    parser.add_argument("--out", default="docs/soak")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="sessiontrace-soak-")
    data = os.path.join(work, "data")
    os.makedirs(data)
    os.makedirs(args.out, exist_ok=True)
    server = Server(args.binary, data, prefix=("taskset", "-c", "0"))
    server.start()
    # Whatever happens to this script, the server does not outlive it.
    atexit.register(lambda: server.process.poll() is None and server.process.terminate())
    pid = server.process.pid
    # taskset execs the server: the child's pid is the server's.
    idle_rss = rss_mib(pid)

    rate = args.rate
    if not rate:
        probe = loadgen(args.binary, server, 0, 15)
        capacity = json.loads(probe.communicate()[0])["accepted_spans_per_second"]
        rate = int(capacity / 2)
        print(f"capacity {capacity:,.0f} spans/s (15 s flat out, 16 connections); soaking at {rate:,} spans/s",
              flush=True)
    baseline = stored_spans(server)

    interval_log = os.path.join(work, "intervals.jsonl")
    seconds = args.minutes * 60
    load = loadgen(args.binary, server, rate, seconds, interval_log)
    acked, stop, latencies = Acked(), threading.Event(), []
    rng = random.Random(17)
    threads = [threading.Thread(target=worker, args=(server, acked, stop, random.Random(rng.random()), args.pause,
                                                     latencies)) for _ in range(args.workers)]
    for thread in threads:
        thread.start()

    samples = []
    began = time.monotonic()
    last_cpu, last_at = cpu_seconds(pid), began
    for minute in range(1, args.minutes + 1):
        time.sleep(max(0.0, began + minute * 60 - time.monotonic()))
        now, cpu = time.monotonic(), cpu_seconds(pid)
        window, latencies[:] = latencies[:], []
        samples.append({
            "minute": minute,
            "rss_mib": round(rss_mib(pid), 1),
            "open_files": len(os.listdir(f"/proc/{pid}/fd")),
            "disk_mib": round(dir_mib(data), 1),
            "cpu_percent": round((cpu - last_cpu) / (now - last_at) * 100, 1),
            "api_p99_ms": round(percentile(window, 0.99) * 1000, 1),
            "api_calls": len(window),
        })
        last_cpu, last_at = cpu, now
        s = samples[-1]
        print(f"minute {minute:>3}: RSS {s['rss_mib']} MiB, {s['open_files']} open files, disk {s['disk_mib']} MiB, "
              f"CPU {s['cpu_percent']}%, mixed p99 {s['api_p99_ms']} ms", flush=True)
    stop.set()
    for thread in threads:
        thread.join()
    result = json.loads(load.communicate()[0])

    intervals = [json.loads(line) for line in open(interval_log)]
    rows = []
    for sample, interval in zip(samples, intervals):
        rows.append({**sample, "spans_per_second": round(interval["spans_per_second"]),
                     "ingest_p99_ms": round(interval["p99_ms"], 1), "ingest_max_ms": round(interval["max_ms"], 1),
                     "refused": interval["refused"], "errors": interval["errors"]})
    columns = ["minute", "rss_mib", "open_files", "disk_mib", "cpu_percent", "spans_per_second", "ingest_p99_ms",
               "ingest_max_ms", "api_p99_ms", "api_calls", "refused", "errors"]
    csv_path = os.path.join(args.out, "soak.csv")
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"csv: {csv_path}")
    plot(rows, os.path.join(args.out, "soak.png"),
         f"sessiontrace soak: {args.minutes} min at {rate:,} spans/s + {args.workers} mixed clients")

    # Nothing acknowledged is lost: the load's accepted spans plus the mixed clients' are all stored, and each
    # acknowledged session, stop, replay chunk, trace and log is there.
    _, _, traces, mixed_spans, _ = acked.counts()
    stored = stored_spans(server) - baseline
    expected = result["spans_accepted"] + mixed_spans
    checked = verify(server, acked)
    server.kill(signal.SIGTERM)

    steady = rows[args.warmup:] if len(rows) > args.warmup else rows
    print(f"\nsoak: {args.minutes} min; load generator {result['spans_accepted']:,} spans accepted "
          f"({result['accepted_spans_per_second']:,.0f}/s), {result['refused']} refused, {result['errors']} errors, "
          f"p99 {result['latency_ms']['p99']:.1f} ms; mixed clients {traces:,} traces, {checked:,} records checked")
    print(f"stored: {stored:,} spans of {expected:,} acknowledged ({'all present' if stored == expected else 'MISMATCH'})")
    print(f"after a {args.warmup}-minute warm-up (minutes {steady[0]['minute']}–{steady[-1]['minute']}), "
          "mean, min–max, largest deviation from the mean:")
    print(f"  RSS               idle {idle_rss:.0f} MiB")
    for column, label in [("rss_mib", "RSS (MiB)"), ("open_files", "open files"), ("cpu_percent", "CPU (%)"),
                          ("ingest_p99_ms", "ingest p99 (ms)"), ("api_p99_ms", "mixed p99 (ms)"),
                          ("spans_per_second", "spans/s")]:
        mean, low, high, spread = flatness(steady, column)
        print(f"  {label:<17} {mean:,.1f}, {low:,.1f}–{high:,.1f}, ±{spread:.1f}%")
    growth = [float(b["disk_mib"]) - float(a["disk_mib"]) for a, b in zip(steady, steady[1:])]
    if growth:
        half = len(growth) // 2 or 1
        print(f"  disk growth       {sum(growth[:half]) / half:.1f} MiB/min in the first half, "
              f"{sum(growth[half:]) / max(1, len(growth) - half):.1f} MiB/min in the second; "
              f"{float(rows[-1]['disk_mib']) * 2**20 / max(1, stored):.1f} bytes per stored span")
    print(f"reproduce: bench/soak.sh --minutes {args.minutes} --workers {args.workers}"
          + (f" --rate {args.rate}" if args.rate else ""))
    if stored != expected:
        sys.exit(1)


if __name__ == "__main__":
    main()
