"""7. The status page: ``/`` and ``/status.json`` for 100 clusters and 1 000 unique tasks,
beside ``/metrics`` for the same data in the same run, and the probes' p99 while the
page is loaded in a loop against their p99 at rest (measured before and after, which
shows the run's own noise)."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from urllib.parse import urlsplit

from bench import stack as S
from bench.report import ms, times
from bench.scrapes import UNCAPPED
from exporter.status.builder import SHARE_WINDOW

#: (clusters, unique tasks) written before the exporter starts.
SIZES = {"full": (100, 1000), "quick": (100, 1000), "smoke": (10, 50)}
PAGE = "/?refresh=0"


def _connection(url: str) -> http.client.HTTPConnection:
    host = urlsplit(url)
    return http.client.HTTPConnection(host.hostname, host.port, timeout=30)


def cost(url: str, path: str, n: int) -> dict:
    """Median and max time of ``n`` GETs of ``path`` on one keep-alive connection
    (after one warm-up), and the response size. Requests are spaced by more than the
    window in which page loads share a build, so each one pays a whole build."""
    conn = _connection(url)

    def get() -> bytes:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (path, resp.status)
        return body

    body = get()
    samples = []
    for _ in range(n):
        time.sleep(SHARE_WINDOW + 0.05)
        t0 = time.perf_counter()
        body = get()
        samples.append(time.perf_counter() - t0)
    conn.close()
    return {"median": statistics.median(samples), "max": max(samples), "bytes": len(body),
            "body": body}


class PageLoop:
    """``clients`` threads loading the page back to back until the block ends."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.loads = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True)
                         for _ in range(clients)]

    def _run(self) -> None:
        conn = _connection(self.url)
        while not self._stop.is_set():
            conn.request("GET", PAGE)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            self.loads += 1
        conn.close()

    def __enter__(self) -> PageLoop:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def run(ctx) -> None:
    clusters, tasks = SIZES[ctx.report.mode]
    requests = 5 if ctx.smoke else 10 if ctx.quick else 30
    seconds = 2 if ctx.smoke else 4 if ctx.quick else 10
    res: dict = {}
    with S.stack(database_url=ctx.db, **UNCAPPED) as st:
        S.run_child(st.env, "from bench import writers\n"
                            f"writers.stats(0, {clusters})\nwriters.unique(0, {tasks})\n")
        exporter = st.exporter()
        st.qcluster()
        S.wait_healthy(exporter)
        for path in (PAGE, "/status.json", "/metrics"):
            res[path] = cost(exporter.url, path, requests)
        check(res, clusters, tasks)
        probe = exporter.url + "/healthz"
        res["idle before"] = S.wrk(probe, 4, seconds)
        started = time.perf_counter()
        with PageLoop(exporter.url, 2) as loop:
            res["page loop"] = S.wrk(probe, 4, seconds)
        res["loads per second"] = loop.loads / (time.perf_counter() - started)
        res["idle after"] = S.wrk(probe, 4, seconds)
    report(ctx, res, clusters, tasks, requests, seconds)


def check(res: dict, clusters: int, tasks: int) -> None:
    """The synthetic load is really on the page (a writer that silently failed would
    make a cheap page)."""
    import json

    doc = json.loads(res["/status.json"]["body"])
    found = (len(doc["clusters"]["rows"]), len(doc["unique_tasks"]["rows"]))
    if found[0] < clusters or found[1] < tasks:
        raise AssertionError(f"status.json has {found} clusters/unique tasks, wanted "
                             f"{clusters}/{tasks}")


def report(ctx, res: dict, clusters: int, tasks: int, requests: int, seconds: int) -> None:
    metrics = res["/metrics"]["median"]
    rows = [[label, ms(res[path]["median"]), ms(res[path]["max"]),
             f"{res[path]['bytes']:,}", times(res[path]["median"] / metrics)]
            for label, path in (("`/` (HTML)", PAGE), ("`/status.json`", "/status.json"),
                                ("`/metrics` (baseline)", "/metrics"))]
    ctx.report.table(
        f"Status page: {clusters} clusters + {tasks:,} unique tasks",
        ["request", "median ms", "max ms", "bytes", "time vs /metrics"], rows,
        f"{requests} requests each on one keep-alive connection, after one warm-up, spaced "
        f"by more than the {SHARE_WINDOW:g} s in which page loads share a build (each pays "
        "a whole build); the same stack (plus the local qcluster) for all three. The page "
        "reads every source /metrics reads, plus the schedules and the pod store's rows.")
    idle = [res["idle before"], res["idle after"]]
    busy = res["page loop"]
    rows = [[label, ms(r["p50"]), ms(r["p99"]), f"{r['rps']:,.0f}",
             f"{r['non2xx'] + r['errors']:.0f}"]
            for label, r in (("at rest, before", idle[0]), ("page loaded in a loop", busy),
                             ("at rest, after", idle[1]))]
    ctx.report.table(
        "Probes while the status page is loaded", ["`/healthz`", "p50 ms", "p99 ms",
                                                   "requests/s", "errors"], rows,
        f"wrk, 4 connections, {seconds} s each; two clients load `/` back to back meanwhile "
        f"({res['loads per second']:,.0f} page loads/s, against one load every 5 s per open "
        f"tab; loads within {SHARE_WINDOW:g} s of a build share it). The two runs at rest "
        "show the noise.")
    rest = max(r["p99"] for r in idle)
    noise = max(r["p99"] for r in idle) / min(r["p99"] for r in idle)
    ratio = busy["p99"] / rest
    ctx.report.target("probe p99 while the page loads in a loop",
                      "within the noise of the runs at rest",
                      f"{ms(busy['p99'])} ms vs {ms(rest)} ms at rest",
                      f"{times(ratio)} (rest runs differ {times(noise)})",
                      ratio <= max(noise, 1.0) * 1.5)
