"""3. Overhead on the work itself: @unique_task per run against the bare function
(bench/bench_unique.py), and the signal instrumentation per task: measured
directly (the receivers' cost) and end to end (a real one-worker cluster running
10 ms tasks with and without the receivers connected,
``DJANGO_Q_EXPORTER_INSTRUMENT=0``, runs interleaved)."""

from __future__ import annotations

import statistics
import subprocess
import time
import uuid

from bench import stack as S
from tests.procs import PYTHON, ROOT

TASK_SECONDS = 0.010

RECEIVERS = """
import datetime as dt, statistics, time, uuid
from rsr_tasks import instrumentation as ins

def one(i):
    task = {{"id": uuid.uuid4().hex, "func": "bench.tasks.sleep_10ms", "success": True,
            "started": dt.datetime.now(dt.UTC)}}
    t0 = time.perf_counter()
    ins.on_pre_execute("django_q", func=None, task=task)
    ins.on_post_execute_in_worker("django_q", func=None, task=task)
    t1 = time.perf_counter()
    ins.on_post_execute("django_q", task=task)
    return t1 - t0, time.perf_counter() - t1

one(0)
worker, monitor = [], []
for r in range(5):
    rows = [one(i) for i in range({runs})]
    worker.append(sum(w for w, _ in rows) / {runs})
    monitor.append(sum(m for _, m in rows) / {runs})
print(statistics.median(worker), statistics.median(monitor))
"""


def unique_overhead(runs: int) -> tuple[str, str, float | None]:
    """(bench_unique's table, its verdict line, overhead in seconds)."""
    done = subprocess.run([PYTHON, "-m", "bench.bench_unique", "--runs", str(runs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"bench.bench_unique failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    verdict = next((x for x in lines if x.startswith("overhead")), "")
    table = "\n".join(x for x in lines if x.startswith("|"))
    try:
        seconds = float(verdict.split(":", 1)[1].split("ms", 1)[0]) / 1000
    except (IndexError, ValueError):
        seconds = None
    return table, verdict, seconds


def cluster_per_task(st, instrument: bool, n: int) -> tuple[float, float]:
    """A one-worker cluster drains ``n`` queued 10 ms tasks: (mean, median) seconds
    between consecutive tasks' finish times (``stopped``), from the 10th percentile
    task on, so start-up and first imports do not count. The mean carries every
    stall, the median is robust to the machine's other work."""
    import psycopg

    group = f"bench-{uuid.uuid4().hex[:8]}"
    S.run_child(st.env, "from django_q.tasks import async_task\n"
                        f"for _ in range({n}):\n"
                        f"    async_task('bench.tasks.sleep_10ms', group={group!r})\n")
    proc = st.qcluster(Q_WORKERS="1", Q_SAVE_LIMIT="0",
                       DJANGO_Q_EXPORTER_INSTRUMENT="1" if instrument else "0")
    query = 'SELECT stopped FROM django_q_task WHERE "group" = %s ORDER BY stopped'
    deadline = time.monotonic() + 120 + n * 0.1
    with psycopg.connect(st.env["DATABASE_URL"], autocommit=True) as conn:
        while len(rows := conn.execute(query, (group,)).fetchall()) < n:
            if not proc.alive():
                raise RuntimeError(f"qcluster exited:\n{proc.output()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(rows)} of {n} tasks done in time")
            time.sleep(0.25)
    proc.stop()
    st.procs.remove(proc)
    stopped = [r[0] for r in rows][n // 10:]
    gaps = [(b - a).total_seconds() for a, b in zip(stopped, stopped[1:], strict=False)]
    return statistics.mean(gaps), statistics.median(gaps)


def run(ctx) -> None:
    runs = 300 if ctx.quick else 2000
    table, verdict, unique = unique_overhead(runs)
    with S.stack(database_url=ctx.db) as st:
        out = S.run_child(st.env, RECEIVERS.format(runs=runs))
        worker, monitor = (float(x) for x in out.split())
        n, pairs = (120, 1) if ctx.quick else (300, 3)
        per = {True: [], False: []}
        for _ in range(pairs):
            for instrument in (False, True):
                per[instrument].append(cluster_per_task(st, instrument, n))
                mean, median = per[instrument][-1]
                print(f"  cluster, instrumentation {'on' if instrument else 'off'}: mean "
                      f"{mean * 1000:.2f} ms, median {median * 1000:.2f} ms per task", flush=True)
    off = [statistics.median(x[i] for x in per[False]) for i in (0, 1)]
    on = [statistics.median(x[i] for x in per[True]) for i in (0, 1)]
    e2e = [on[i] - off[i] for i in (0, 1)]
    rows = [
        ["@unique_task per run, over the bare call", verdict.split(":", 1)[-1].strip(), ""],
        ["signal receivers, worker side (pre_execute + post_execute_in_worker: two clock "
         "reads, no I/O)", f"{worker * 1e6:.0f} µs", f"{worker / TASK_SECONDS:.2%}"],
        ["signal receivers, monitor side (post_execute: one pod-store transaction; runs in "
         "the monitor, beside the worker)", f"{monitor * 1e6:.0f} µs",
         f"{monitor / TASK_SECONDS:.2%}"],
        [f"real cluster, 1 worker, {n} × 10 ms tasks, no instrumentation: time per task, "
         f"median / mean (median of {pairs} runs)",
         f"{off[1] * 1000:.2f} / {off[0] * 1000:.2f} ms", ""],
        ["… with instrumentation", f"{on[1] * 1000:.2f} / {on[0] * 1000:.2f} ms",
         f"{e2e[1] / TASK_SECONDS:+.2%} / {e2e[0] / TASK_SECONDS:+.2%}"],
    ]
    ctx.report.table("Overhead on the work itself", ["what", "measured", "of a 10 ms task"],
                     rows,
                     "Cluster runs alternate off/on to cancel drift; a run's figures are the "
                     "median and mean gap between consecutive tasks' `stopped` times (off: "
                     + ", ".join(f"{m * 1000:.2f}/{a * 1000:.2f}" for a, m in per[False])
                     + " ms; on: " + ", ".join(f"{m * 1000:.2f}/{a * 1000:.2f}"
                                              for a, m in per[True])
                     + " ms). The mean moves by several % between runs on a shared 2-core "
                     "machine; the median and the receivers' own cost are the stable "
                     "figures. @unique_task, from `python -m bench.bench_unique`:\n\n" + table)
    direct = worker + monitor
    ctx.report.target("signal instrumentation per 10 ms task", "< 2 %",
                      f"{direct * 1e6:.0f} µs = {direct / TASK_SECONDS:.2%} (receivers); real "
                      f"cluster {e2e[1] / TASK_SECONDS:+.2%} (median), "
                      f"{e2e[0] / TASK_SECONDS:+.2%} (mean)",
                      f"vs the same cluster uninstrumented ({off[1] * 1000:.2f} ms per task)",
                      direct / TASK_SECONDS < 0.02 and e2e[1] / TASK_SECONDS < 0.02)
    if unique is not None:
        ctx.report.target("@unique_task per run", "< 1 ms", f"{unique * 1000:.3f} ms",
                          "over the bare function (bench_unique)", unique < 0.001)
