"""The benchmark suite: figures and ratios against baselines measured in the same run.

    scripts/bench            # full run (about 10 minutes)
    scripts/bench --quick    # short run (about 2 minutes)

Writes bench/results/results.md (the table) and bench/results/scrape-cost.png.
Real parts only: a private redis-server, real exporter and qcluster processes,
wrk as the load generator.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import stack as S  # noqa: E402
from tests.procs import PYTHON, free_port, wait_for  # noqa: E402

RESULTS = ROOT / "bench" / "results"


class Report:
    def __init__(self) -> None:
        self.sections: list[str] = []

    def table(self, title: str, header: list[str], rows: list[list[str]], note: str = "") -> None:
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if note:
            lines += ["", note]
        text = "\n".join(lines) + "\n"
        print(text, flush=True)
        self.sections.append(text)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


# 1. probe latency ---------------------------------------------------------------------------
def bench_probes(report: Report, quick: bool) -> dict:
    seconds = 2 if quick else 5
    runs = 3 if quick else 5
    results = {}
    with S.stack() as st:
        exporter = st.exporter()
        st.qcluster()
        S.wait_healthy(exporter)
        rows = []
        for path in ("/healthz", "/livez"):
            for conns in (1, 16, 64):
                r = S.wrk(exporter.url + path, conns, seconds)
                results[(path, conns)] = r
                rows.append([f"`{path}` exporter", str(conns), ms(r["p50"]), ms(r["p99"]),
                             f"{r['rps']:.0f}", f"{r['non2xx']:.0f}"])
        # Peer baseline: a Django view calling Stat.get_all(), under gunicorn (2 workers).
        port = free_port()
        peer_env = dict(st.env, DJANGO_SETTINGS_MODULE="bench.peer.settings")
        log = open(st.workdir / "gunicorn.log", "wb")
        peer = subprocess.Popen([str(Path(PYTHON).parent / "gunicorn"), "-w", "2", "-b",
                                 f"127.0.0.1:{port}", "rsr_tasks.demo.wsgi:application"],
                                cwd=ROOT, env=peer_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            peer_url = f"http://127.0.0.1:{port}/health/"
            wait_for(lambda: S.http_get(peer_url, 2)[0] == 200, 30, what="peer view up")
            for conns in (1, 16, 64):
                r = S.wrk(peer_url, conns, seconds)
                results[("peer", conns)] = r
                rows.append(["Django view (gunicorn -w 2)", str(conns), ms(r["p50"]),
                             ms(r["p99"]), f"{r['rps']:.0f}", f"{r['non2xx']:.0f}"])
        finally:
            peer.terminate()
            peer.wait(10)
            log.close()
        qinfo = S.time_command([PYTHON, "manage.py", "qinfo"], st.env, runs)
        probe_code = ("from django_q.status import Stat; from django_q.conf import Conf; "
                      "import sys; sys.exit(0 if any(s.status in (Conf.IDLE, Conf.WORKING) "
                      "for s in Stat.get_all()) else 1)")
        shell = S.time_command([PYTHON, "manage.py", "shell", "-c", probe_code], st.env, runs)
        results["qinfo"], results["shell"] = qinfo, shell
        rows.append(["`manage.py qinfo`", "1 (sequential)", ms(qinfo), "", f"{1 / qinfo:.1f}",
                     ""])
        rows.append(["`manage.py shell -c <Stat probe>`", "1 (sequential)", ms(shell), "",
                     f"{1 / shell:.1f}", ""])
    h16 = results[("/healthz", 16)]
    note = (f"/healthz p99 at 16 connections: {ms(h16['p99'])} ms (target < 5 ms) — "
            f"{qinfo / h16['p99']:.0f}× faster than `manage.py qinfo` "
            f"({ms(qinfo)} ms) and {shell / h16['p99']:.0f}× faster than a manage.py probe "
            f"(target ≥ 200×); the Django-view peer's p99 at 16 connections is "
            f"{results[('peer', 16)]['p99'] / h16['p99']:.1f}× the exporter's.")
    report.table("Probe latency (wrk, loopback, real cluster on Redis)",
                 ["target", "connections", "p50 ms", "p99 ms", "req/s", "non-2xx"], rows, note)
    return results


# 2. scrape cost ---------------------------------------------------------------------------------
def scrape_cost(exporter, redis_client, scrapes: int) -> tuple[float, int, float]:
    """Median /metrics time, response size, Redis commands per scrape."""
    url = exporter.url + "/metrics"
    S.http_get(url)  # warm-up (connections, lazy stores)
    redis_client.config_resetstat()
    times, size = [], 0
    for _ in range(scrapes):
        t0 = time.perf_counter()
        status, body = S.http_get(url)
        times.append(time.perf_counter() - t0)
        assert status == 200
        size = len(body)
    stats = redis_client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items()
                if k not in ("cmdstat_config|resetstat", "cmdstat_info", "cmdstat_hello")
                and not k.startswith("cmdstat_client"))
    return statistics.median(times), size, calls / scrapes


def write_stats(start: int, end: int, ttl: int = 3600) -> None:
    """Synthetic clusters start..end-1: Stats signed and pickled like django-q2's, under
    their keys, in the index the IndexedRedisBroker keeps."""
    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage
    from django_q.status import Status

    r = get_broker().connection
    pipe = r.pipeline(transaction=False)
    now = time.time()
    for i in range(start, end):
        st = Status(pid=1000 + i, cluster_id=uuid.uuid4())
        st.host = f"bench-host-{i}"
        st.status = Conf.IDLE
        st.workers = [2000 + i, 3000 + i]
        st.tob = timezone.now()
        key = f"{Conf.Q_STAT}:{st.cluster_id}"
        pipe.set(key, SignedPackage.dumps(st, True), ex=ttl)
        pipe.zadd(f"{Conf.Q_STAT}:index", {key: now + ttl})
    pipe.execute()


def write_unique(start: int, end: int) -> None:
    """Unique tasks start..end-1, each registered with one completed run."""
    from rsr_tasks.unique.decorator import _store

    store = _store()
    for i in range(start, end):
        name = f"bench-task-{i}"
        store.register(name, 60)
        store.acquire(name, "tok", 60, "bench", 1)
        store.finish(name, "tok", "success")


def write_funcs(start: int, end: int) -> None:
    """Functions start..end-1, each with one execution through the signal recorder."""
    from rsr_tasks.instrumentation import _recorder

    rec = _recorder()
    for i in range(start, end):
        task = {"func": f"bench.funcs.f{i}", "success": True,
                "started": dt.datetime.now(dt.UTC)}
        rec.started(task)
        rec.executed(task)
        rec.finished(task)


def write_backlog(start: int, end: int) -> None:
    """Queue tasks start..end-1 (copies of one signed task package)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    client = get_broker().connection
    task = SignedPackage.dumps({"id": "x", "name": "bench", "func": "math.floor",
                                "args": (1.5,), "kwargs": {}, "started": dt.datetime.now(dt.UTC)})
    missing = end - start
    while missing > 0:
        batch = min(missing, 10_000)
        client.rpush(f"django_q:{Conf.CLUSTER_NAME}:q", *([task] * batch))
        missing -= batch


def run_child(env: dict[str, str], body: str, timeout: float = 900) -> str:
    """Run ``body`` in a child process with the stack's Django settings; its stdout.

    Django is set up once per process, and each stack has its own settings."""
    code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from bench.stack import setup_django\n"
            "setup_django(dict(os.environ))\n" + body)
    return subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True, timeout=timeout,
                          env=dict(env, DJANGO_Q_EXPORTER_FUNC_CAP="100000"),
                          capture_output=True, text=True).stdout


def write_in_child(env: dict[str, str], writer: str, start: int, end: int) -> None:
    run_child(env, f"import bench.run as r\nr.{writer}({start}, {end})\n")


CURVES = {  # name: (writer, quick sizes, full sizes)
    "clusters": ("write_stats", [1, 10, 100, 1000], [1, 10, 100, 1000]),
    "unique tasks": ("write_unique", [10, 100, 1000], [10, 100, 1000]),
    "functions": ("write_funcs", [10, 100, 500], [10, 100, 500]),
    "unrelated keys": ("populate", [1000, 10_000, 100_000], [1000, 10_000, 100_000, 1_000_000]),
    "queue backlog": ("write_backlog", [0, 1000, 100_000], [0, 1000, 100_000, 1_000_000]),
}


def bench_scrapes(report: Report, quick: bool) -> dict:
    """Each curve on a fresh stack (own Redis, exporter, pod store) with one real-looking
    cluster Stat, growing one dimension only."""
    scrapes = 10 if quick else 30
    curves: dict[str, list[tuple[int, float, int, float]]] = {}
    for name, (writer, quick_sizes, full_sizes) in CURVES.items():
        with S.stack() as st:
            exporter = st.exporter()
            client = st.redis.client()
            if name != "clusters":
                write_in_child(st.env, "write_stats", 0, 1)
            done, points = 0, []
            for n in quick_sizes if quick else full_sizes:
                if writer == "populate":
                    client.execute_command("DEBUG", "POPULATE", n, "unrelated")
                elif n > done:
                    write_in_child(st.env, writer, done, n)
                done = n
                t, size, calls = scrape_cost(exporter, client, scrapes)
                points.append((n, t, size, calls))
                print(f"  {name} {n}: {ms(t)} ms, {size} B, {calls:.1f} Redis commands",
                      flush=True)
            curves[name] = points
    rows = []
    for name, points in curves.items():
        base = points[0][1]
        for n, t, size, calls in points:
            rows.append([name, f"{n:,}", ms(t), f"{t / base:.2f}×", f"{size:,}", f"{calls:.1f}"])
    report.table(f"Scrape cost (/metrics, median of {scrapes} scrapes)",
                 ["grows", "n", "ms", "vs smallest", "bytes", "Redis commands / scrape"],
                 rows, "Targets: < 50 ms for 100 clusters + 1 000 unique tasks (the unique-task "
                 "curve runs with 1 cluster; see the combined row below); flat (≤ 2×) in "
                 "unrelated keys and backlog; linear or better in clusters/tasks; Redis "
                 "commands per scrape constant.")
    plot(curves)
    return curves


def bench_combined(report: Report, quick: bool) -> float:
    """The target case: 100 clusters + 1 000 unique tasks in one scrape."""
    with S.stack() as st:
        exporter = st.exporter()
        client = st.redis.client()
        write_in_child(st.env, "write_stats", 0, 100)
        write_in_child(st.env, "write_unique", 0, 1000)
        t, size, calls = scrape_cost(exporter, client, 10 if quick else 30)
        report.table("Target case", ["case", "ms", "bytes", "Redis commands / scrape"],
                     [["100 clusters + 1 000 unique tasks", ms(t), f"{size:,}", f"{calls:.1f}"]],
                     f"Target < 50 ms: {'met' if t < 0.05 else 'MISSED'}.")
        return t


def plot(curves: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.5))
    for ax, (name, points) in zip(axes, curves.items(), strict=True):
        xs = [max(p[0], 1) for p in points]
        ax.plot(xs, [p[1] * 1000 for p in points], marker="o")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("n")
        ax.set_ylabel("/metrics ms")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "scrape-cost.png", dpi=100)


# 3. overheads -----------------------------------------------------------------------------------
def bench_overheads(report: Report, quick: bool) -> dict:
    runs = 500 if quick else 2000
    unique = subprocess.run([PYTHON, "-m", "bench.bench_unique", "--runs", str(runs)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=True).stdout
    overhead_line = next(line for line in unique.splitlines() if line.startswith("overhead"))
    body = ("import time, datetime as dt\n"
            "from rsr_tasks.instrumentation import _recorder\n"
            "rec = _recorder()\n"
            "t0 = time.perf_counter()\n"
            f"for i in range({runs}):\n"
            "    task = {'func': 'bench.f', 'success': True, 'started': dt.datetime.now(dt.UTC)}\n"
            "    rec.started(task); rec.executed(task); rec.finished(task)\n"
            f"print((time.perf_counter() - t0) / {runs})\n")
    with S.stack(redis=False) as st:
        per_task = float(run_child(st.env, body).strip())
    rows = [["@unique_task per run", overhead_line.split(":", 1)[1].strip()],
            ["signal instrumentation per task (2 pod-store writes)",
             f"{per_task * 1e6:.0f} µs = {per_task / 0.010 * 100:.2f} % of a 10 ms task "
             f"(target < 2 %)"]]
    report.table("Overhead on the work itself", ["what", "measured"], rows,
                 "The unique-task figure comes from `python -m bench.bench_unique` (table "
                 "printed above it in the log).")
    print(unique)
    return {"per_task": per_task}


# 4. start-up and footprint -------------------------------------------------------------------
def bench_footprint(report: Report, quick: bool) -> dict:
    scrapes = 1000 if quick else 10_000
    with S.stack() as st:
        st.qcluster()
        t0 = time.monotonic()
        exporter = S.Exporter(st.env, st.workdir / "fp.log", "--log-level", "WARNING")
        st.procs.append(exporter)
        wait_for(lambda: exporter.get("/livez", timeout=1)[0] == 200, 30, 0.005,
                 what="first /livez")
        first_livez = time.monotonic() - t0
        wait_for(lambda: b"django_q_cluster_up{" in S.http_get(exporter.url + "/metrics")[1],
                 30, 0.005, what="first complete /metrics")
        first_metrics = time.monotonic() - t0
        S.wait_healthy(exporter)
        rss_idle = S.rss_kib(exporter.pid)
        fds_idle = S.fds(exporter.pid)
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=10)
        for i in range(scrapes):
            conn.request("GET", "/metrics")
            conn.getresponse().read()
            if i == scrapes // 10:
                rss_early = S.rss_kib(exporter.pid)
        conn.close()
        rss_after = S.rss_kib(exporter.pid)
        fds_after = S.fds(exporter.pid)
        qinfo = S.time_command([PYTHON, "manage.py", "qinfo"], st.env, 3)
    rows = [["process start → first 200 on /livez", f"{first_livez * 1000:.0f} ms"],
            ["process start → first complete /metrics", f"{first_metrics * 1000:.0f} ms"],
            ["`manage.py qinfo` (baseline, one run)", f"{qinfo * 1000:.0f} ms"],
            ["RSS idle (cluster up)", f"{rss_idle / 1024:.1f} MiB"],
            [f"RSS after {scrapes // 10:,} scrapes", f"{rss_early / 1024:.1f} MiB"],
            [f"RSS after {scrapes:,} scrapes", f"{rss_after / 1024:.1f} MiB "
             f"({(rss_after - rss_early) / 1024:+.1f} MiB since {scrapes // 10:,})"],
            ["open file descriptors idle / after", f"{fds_idle} / {fds_after}"]]
    report.table("Start-up and footprint", ["what", "measured"], rows)
    return {"first_livez": first_livez, "rss_idle": rss_idle, "rss_after": rss_after}


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        kib = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")).split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{platform.system()} {platform.machine()}, {cpus} cores{mem}, Python " \
           f"{platform.python_version()}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short run (fewer sizes and samples)")
    p.add_argument("--only", choices=["probes", "scrapes", "overheads", "footprint"],
                   action="append", help="run only these sections (repeatable)")
    a = p.parse_args(argv)
    sections = a.only or ["probes", "scrapes", "overheads", "footprint"]
    report = Report()
    started = time.monotonic()
    if "probes" in sections:
        bench_probes(report, a.quick)
    if "footprint" in sections:
        bench_footprint(report, a.quick)
    if "overheads" in sections:
        bench_overheads(report, a.quick)
    if "scrapes" in sections:
        bench_combined(report, a.quick)
        bench_scrapes(report, a.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = (f"# django-q-exporter benchmarks\n\n{dt.date.today().isoformat()} · {machine()} · "
              f"{'quick' if a.quick else 'full'} run in {time.monotonic() - started:.0f} s\n\n")
    (RESULTS / "results.md").write_text(header + "\n".join(report.sections))
    print(f"wrote {RESULTS / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
