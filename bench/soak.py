"""Soak: scrapes and probes against a working cluster, with a fault every minute.

    .venv/bin/python -m bench.soak [--minutes 10]

Real parts: a private redis-server, a qcluster kept busy with tasks, the
exporter. Faults cycle: Redis restart (all connections dropped), Redis
CLIENT KILL of every normal connection, the cluster's monitor frozen
(SIGSTOP) for 15 s. Prints one row per minute (exporter RSS and open file
descriptors, probe latency percentiles, non-200 answers outside fault
windows) and exits non-zero if memory or descriptors grew or the exporter
died. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stack as S  # noqa: E402
from tests.procs import PYTHON  # noqa: E402


class Load(threading.Thread):
    """Requests ``path`` every ``interval`` s; records latency and status."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.samples: list[tuple[float, float, int]] = []  # (time, latency, status)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.perf_counter()
            try:
                status, _ = S.http_get(self.url, timeout=5)
            except OSError:
                status = 0
            self.samples.append((time.monotonic(), time.perf_counter() - t0, status))
            self.halt.wait(self.interval)


def monitor_pid(env: dict[str, str]) -> int:
    out = subprocess.run([PYTHON, "-c", "import django; django.setup()\n"
                          "from django_q.status import Stat\n"
                          "print([s.monitor for s in Stat.get_all()][0])"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    return int(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    a = p.parse_args(argv)
    with S.stack() as st:
        exporter = st.exporter()
        st.qcluster(Q_WORKERS="2")
        S.wait_healthy(exporter)
        enqueue = subprocess.Popen(
            [PYTHON, "-c", "import django, time; django.setup()\n"
             "from django_q.tasks import async_task\n"
             "while True:\n"
             "    try:\n"
             "        async_task('math.floor', 1.5)\n"
             "    except Exception:\n"
             "        pass\n"
             "    time.sleep(0.5)\n"], cwd=ROOT, env=st.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probes = Load(exporter.url + "/healthz", 0.1)
        scrapes = Load(exporter.url + "/metrics", 0.2)
        probes.start()
        scrapes.start()
        start = time.monotonic()
        faults: list[tuple[float, float, str]] = []
        rows = []
        minute = 0
        try:
            while time.monotonic() - start < a.minutes * 60:
                minute += 1
                kind = ("redis-restart", "client-kill", "monitor-stop")[(minute - 1) % 3]
                t_fault = time.monotonic()
                if kind == "redis-restart":
                    st.redis.stop()
                    time.sleep(3)
                    st.redis.start()
                elif kind == "client-kill":
                    st.redis.client().client_kill_filter(_type="normal", skipme=True)
                else:
                    try:
                        pid = monitor_pid(st.env)
                        os.kill(pid, signal.SIGSTOP)
                        time.sleep(15)
                        os.kill(pid, signal.SIGCONT)
                    except (OSError, ValueError, IndexError) as exc:
                        print(f"monitor-stop skipped: {exc}", flush=True)
                # Answers may be 503 during a fault and until the cluster recovers.
                faults.append((t_fault, time.monotonic() + 20, kind))
                end_of_minute = start + minute * 60
                while time.monotonic() < min(end_of_minute, start + a.minutes * 60):
                    time.sleep(0.5)
                if not exporter.alive():
                    print("exporter died", flush=True)
                    return 1
                window = [s for s in probes.samples if s[0] >= end_of_minute - 60]
                lat = sorted(s[1] for s in window) or [0.0]
                scrape_window = [s for s in scrapes.samples if s[0] >= end_of_minute - 60]

                def outside_faults(s):
                    return not any(f0 <= s[0] <= f1 for f0, f1, _ in faults)

                bad_probes = sum(1 for s in window if s[2] != 200 and outside_faults(s))
                bad_scrapes = sum(1 for s in scrape_window if s[2] != 200)
                row = {"minute": minute, "fault": kind,
                       "rss_mib": S.rss_kib(exporter.pid) / 1024, "fds": S.fds(exporter.pid),
                       "probes": len(window), "p50_ms": statistics.median(lat) * 1000,
                       "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000 if len(lat) > 1 else 0,
                       "max_ms": lat[-1] * 1000, "probe_non200_outside_faults": bad_probes,
                       "scrapes": len(scrape_window), "scrape_non200": bad_scrapes}
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            probes.halt.set()
            scrapes.halt.set()
            enqueue.terminate()
    print("\n| minute | fault | RSS MiB | fds | probes | p50 ms | p99 ms | max ms | "
          "non-200 outside faults | scrapes | scrape non-200 |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['minute']} | {r['fault']} | {r['rss_mib']:.1f} | {r['fds']} | {r['probes']} "
              f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
              f"{r['probe_non200_outside_faults']} | {r['scrapes']} | {r['scrape_non200']} |")
    if len(rows) >= 3:
        growth = rows[-1]["rss_mib"] - rows[1]["rss_mib"]
        fd_growth = rows[-1]["fds"] - rows[1]["fds"]
        print(f"\nRSS {rows[1]['rss_mib']:.1f} → {rows[-1]['rss_mib']:.1f} MiB after minute 2 "
              f"({growth:+.1f}); fds {rows[1]['fds']} → {rows[-1]['fds']} ({fd_growth:+d})")
        if growth > max(5.0, rows[1]["rss_mib"] * 0.2) or fd_growth > 10:
            print("FAIL: the exporter grew")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
