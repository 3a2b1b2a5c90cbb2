"""Probes and scrapes against the size of the keyspace, per broker class.

For each way a project can run the Redis broker (django-q2's stock class with
the ``rsr_tasks`` app, which keeps the Stat index; the stock class alone, where
the exporter finds Stat keys by background SCAN passes; ``IndexedRedisBroker``
named in the settings): ``/healthz`` p99 at 16 connections and ``/metrics`` time
at 10^3 and at 10^6 unrelated keys, in one run, and their ratio. Also the time of
one discovery pass, which bounds how long a restarted cluster without the index
waits to be found.
"""

from __future__ import annotations

import statistics
import time

from bench import stack as S
from bench.report import ms, times
from tests.procs import wait_for

SMALL, LARGE = 1_000, 1_000_000
VARIANTS = {
    "stock class + rsr_tasks app (index)": {"DJANGO_SETTINGS_MODULE": "tests.settings_variants",
                                            "TEST_Q_BROKER_CLASS": "stock"},
    "stock class alone (background SCAN)": {"DJANGO_SETTINGS_MODULE": "tests.settings_variants",
                                            "TEST_Q_BROKER_CLASS": "stock",
                                            "TEST_WITHOUT_RSR_TASKS": "1"},
    "IndexedRedisBroker": {},
}


def metrics_seconds(url: str, scrapes: int) -> float:
    """Median wall time of a /metrics GET; every collector must have succeeded."""
    took = []
    for _ in range(scrapes):
        t0 = time.perf_counter()
        status, body = S.http_get(url + "/metrics")
        took.append(time.perf_counter() - t0)
        assert status == 200 and b'collector_success{collector="' in body, status
        assert b"} 0.0\n" not in b"".join(
            line + b"\n" for line in body.splitlines()
            if line.startswith(b"django_q_exporter_collector_success")), body[:2000]
    return statistics.median(took)


def scan_pass(client, name: str) -> tuple[int, float]:
    """One discovery pass with the exporter's own code (SCAN calls, seconds)."""
    from exporter.sources.keyspace import KeyspaceDiscovery

    prefix = f"django_q:{name}:cluster"
    return KeyspaceDiscovery(client, prefix, f"{prefix}:index", False).scan_once()


def run(ctx) -> None:
    seconds = 2 if ctx.quick else 5
    scrapes = 10 if ctx.quick else 30
    res: dict = {}
    for label, extra in VARIANTS.items():
        with S.stack(database_url=ctx.db, **extra) as st:
            client = st.redis.client()
            exporter = st.exporter()
            st.qcluster()
            for n in (SMALL, LARGE):
                client.execute_command("DEBUG", "POPULATE", n, "unrelated")
                wait_for(lambda: S.http_get(exporter.url + "/healthz", 2)[0] == 200, 60,
                         what=f"/healthz 200 at {n:,} keys ({label})")
                S.wrk(exporter.url + "/healthz", 16, 1)  # warm-up, not counted
                point = S.wrk(exporter.url + "/healthz", 16, seconds)
                point["metrics"] = metrics_seconds(exporter.url, scrapes)
                point["keys"] = client.dbsize()
                if "SCAN" in label:
                    point["pass"] = scan_pass(client, st.env["DJANGO_Q_NAME"])
                res[(label, n)] = point
                print(f"  {label} {n:,}: /healthz p99 {ms(point['p99'])} ms, "
                      f"{point['non2xx']:.0f} non-2xx; /metrics {ms(point['metrics'])} ms",
                      flush=True)
    report(ctx, res, seconds, scrapes)


def report(ctx, res: dict, seconds: float, scrapes: int) -> None:
    rows = []
    flat = True
    for label in VARIANTS:
        small, large = res[(label, SMALL)], res[(label, LARGE)]
        p99_ratio = large["p99"] / small["p99"]
        metrics_ratio = large["metrics"] / small["metrics"]
        flat = flat and p99_ratio <= 2 and metrics_ratio <= 2
        flat = flat and small["non2xx"] + small["errors"] + large["non2xx"] + large["errors"] == 0
        for n, point in ((SMALL, small), (LARGE, large)):
            rows.append([label, f"{point['keys']:,}", ms(point["p99"]), f"{point['rps']:,.0f}",
                         f"{point['non2xx'] + point['errors']:.0f}", ms(point["metrics"]),
                         times(p99_ratio) if n == LARGE else "",
                         times(metrics_ratio) if n == LARGE else ""])
    ctx.report.table(
        "Keyspace size: /healthz and /metrics at 10^3 and 10^6 unrelated keys, per broker class",
        ["broker", "keys in Redis", "/healthz p99 ms (16 conn.)", "req/s", "non-2xx / errors",
         "/metrics median ms", "p99 10^6 ÷ 10^3", "/metrics 10^6 ÷ 10^3"], rows,
        f"wrk {seconds:g} s at 16 connections; /metrics: median of {scrapes} sequential "
        "scrapes, every collector_success 1. One 1-worker qcluster per broker class, "
        "its own redis-server filled with DEBUG POPULATE.")
    label = next(v for v in VARIANTS if "SCAN" in v)
    calls, took = res[(label, LARGE)]["pass"]
    keys = res[(label, LARGE)]["keys"]
    per_million = took / keys * 1e6
    grace_keys = 60.0 / took * keys
    old_limit = 0.5 / took * keys
    ctx.report.table(
        "Keyspace discovery pass (stock broker without the app)",
        ["keys in Redis", "SCAN calls", "pass s", "s per million keys",
         "keys per 60 s startup grace", "keys per 0.5 s (the former probe-path SCAN)"],
        [[f"{keys:,}", f"{calls:,}", f"{took:.2f}", f"{per_million:.2f}",
          f"{grace_keys / 1e6:,.0f} M", f"{old_limit / 1e6:.1f} M"]],
        "A cluster restarted under a new cluster_id is found within one pass; the last two "
        "columns extrapolate linearly where a pass outgrows the startup grace, and where the "
        "SCAN the probe path ran before (bounded by the 0.5 s health timeout) stopped working.")
    ctx.report.target("/healthz p99 and /metrics, 10^6 vs 10^3 keys, every broker class",
                      "≤ 2×", "see the keyspace table",
                      "flat" if flat else "not flat", flat)
    ctx.report.target("discovery pass at 10^6 keys (stock broker alone)", "",
                      f"{took:.2f} s", f"≈ {grace_keys / 1e6:,.0f} M keys per 60 s grace")
