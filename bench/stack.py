"""Real parts for the benchmarks: private Redis, a throwaway PostgreSQL database,
throwaway data dirs, exporter and qcluster processes, and the measuring tools."""

from __future__ import annotations

import itertools
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.procs import PYTHON, ROOT, Exporter, Proc, RedisServer, base_env, migrate, wait_for

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
_names = itertools.count(1)


@contextmanager
def postgres_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A throwaway PostgreSQL database, migrated once, dropped at the end (its URL).

    Stacks share it: each has its own cluster name, so rows never mix."""
    import psycopg

    name = f"dqe_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(base_env(DATABASE_URL=url, DJANGO_Q_DATA_DIR="/nonexistent"))
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    """One broker set-up (Redis by default) with its env, data dir and processes."""

    def __init__(self, workdir: Path, redis: RedisServer | None, name: str = "bench",
                 database_url: str | None = None, **extra: str) -> None:
        self.workdir = workdir
        self.redis = redis
        data = workdir / "data"
        env = {"DJANGO_Q_NAME": name, "DJANGO_Q_DATA_DIR": str(data),
               "DJANGO_Q_EXPORTER_POD_STORE": str(workdir / "pod.sqlite3"),
               "DJANGO_SECRET_KEY": "bench-secret", "DJANGO_Q_LOG_LEVEL": "ERROR", **extra}
        if redis:
            env["REDIS_URL"] = redis.url
        if database_url:
            env["DATABASE_URL"] = database_url
        self.env = base_env(**env)
        if not database_url:  # a shared PostgreSQL database is migrated once
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
def stack(redis: bool = True, database_url: str | None = None, **extra: str):
    """A fresh Stack: its own redis-server (unless ``redis=False``), data dir and
    cluster name; on ``database_url`` when given, else on SQLite. ``extra``: env."""
    work = Path(tempfile.mkdtemp(prefix="dqe-bench-"))
    # DEBUG POPULATE fills the unrelated keyspace quickly (local connections only).
    server = (RedisServer(work / "redis", extra_args=("--enable-debug-command", "local")).start()
              if redis else None)
    s = Stack(work, server, f"bench{next(_names)}x{uuid.uuid4().hex[:4]}", database_url,
              **extra)
    try:
        yield s
    finally:
        s.stop()
        if server:
            server.stop()


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with a stack's environment (once)."""
    os.environ.update(env)
    import django

    django.setup()


def run_child(env: dict[str, str], body: str, timeout: float = 900) -> str:
    """Run Python ``body`` in a child process with the stack's Django settings set up;
    its stdout. (Django is set up once per process, and each stack has its own.)"""
    code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from bench.stack import setup_django\n"
            "setup_django(dict(os.environ))\n" + body)
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, timeout=timeout, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench child failed:\n{done.stderr[-3000:]}")
    return done.stdout


def time_command(cmd: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    """Wall time of a command, like hyperfine: one warm-up run, then ``runs`` runs;
    median, min and max in seconds. Fails if the command fails."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=120)
        elapsed = time.perf_counter() - t0
        if done.returncode:
            raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace')[-2000:]}")
        if i:
            times.append(elapsed)
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": runs}


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, connections: int, seconds: float) -> dict[str, float]:
    """p50, p99 (seconds), requests/s and non-2xx count from `wrk --latency`
    (threads = min(2, connections): the machine has 2 cores, and wrk needs at least
    one connection per thread)."""
    threads = min(2, connections)
    out = subprocess.run(["wrk", "--latency", "-t", str(threads), "-c", str(connections),
                          "-d", f"{seconds:g}s", "--timeout", "5s", url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    """The figures of a ``wrk --latency`` report. wrk pads a one-letter unit to two
    characters (``2.48s `` and ``1.50m ``), so a value may end in a space."""
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {"p50": _seconds(pct["50"]), "p99": _seconds(pct["99"]), "rps": rps,
            "non2xx": float(bad.group(1)) if bad else 0.0,
            "errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0}


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
