"""Real parts for the benchmarks: private Redis, throwaway data dirs, exporter, cluster."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tests.procs import PYTHON, ROOT, Exporter, Proc, RedisServer, base_env, migrate, wait_for


class Stack:
    """One broker set-up (Redis by default) with its env, data dir and processes."""

    def __init__(self, workdir: Path, redis: RedisServer | None, name: str = "bench") -> None:
        self.workdir = workdir
        self.redis = redis
        data = workdir / "data"
        env = {"DJANGO_Q_NAME": name, "DJANGO_Q_DATA_DIR": str(data),
               "DJANGO_Q_EXPORTER_POD_STORE": str(workdir / "pod.sqlite3"),
               "DJANGO_SECRET_KEY": "bench-secret", "DJANGO_Q_LOG_LEVEL": "ERROR"}
        if redis:
            env["REDIS_URL"] = redis.url
        self.env = base_env(**env)
        migrate(self.env)
        self.procs: list[Proc] = []

    def exporter(self, *flags: str) -> Exporter:
        e = Exporter(self.env, self.workdir / f"exporter-{len(self.procs)}.log", "--log-level",
                     "WARNING", *flags)
        self.procs.append(e)
        e.wait_ready_to_serve()
        return e

    def qcluster(self, **extra: str) -> Proc:
        p = Proc([PYTHON, "manage.py", "qcluster"], dict(self.env, **extra),
                 self.workdir / f"qcluster-{len(self.procs)}.log")
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()


@contextmanager
def stack(redis: bool = True):
    work = Path(tempfile.mkdtemp(prefix="dqe-bench-"))
    # DEBUG POPULATE fills the unrelated keyspace quickly (local connections only).
    server = (RedisServer(work / "redis", extra_args=("--enable-debug-command", "local")).start()
              if redis else None)
    s = Stack(work, server)
    try:
        yield s
    finally:
        s.stop()
        if server:
            server.stop()


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with a stack's environment (once)."""
    for key in ("REDIS_URL", "DJANGO_Q_NAME", "DJANGO_Q_DATA_DIR", "DJANGO_SECRET_KEY",
                "DJANGO_Q_EXPORTER_POD_STORE", "DJANGO_SETTINGS_MODULE"):
        if key in env:
            os.environ[key] = env[key]
    import django

    django.setup()


def time_command(cmd: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall time of a command over ``runs`` runs (seconds)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    """p50, p99 (seconds), requests/s and non-2xx count from `wrk --latency`."""
    threads = min(2, connections)
    out = subprocess.run(["wrk", "--latency", "-t", str(threads), "-c", str(connections),
                          "-d", f"{seconds:g}s", "--timeout", "5s", url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"p50": _seconds(pct["50"]), "p99": _seconds(pct["99"]), "rps": rps,
            "non2xx": float(bad.group(1)) if bad else 0.0}


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_healthy(exporter: Exporter, timeout: float = 60) -> None:
    wait_for(lambda: exporter.get("/healthz", timeout=2)[0] == 200, timeout,
             what="/healthz 200")
