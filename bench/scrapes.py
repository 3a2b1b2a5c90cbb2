"""2. Scrape cost and its growth: /metrics time, size and Redis commands per scrape
as one dimension grows, each curve on a fresh stack, with django-q2's own
``Stat.get_all()`` as the baseline where it reads the same data."""

from __future__ import annotations

import http.client
import re
import statistics
import time
from urllib.parse import urlsplit

from bench import stack as S
from bench.report import ms, plot, times

#: name: (writer in bench.writers, quick sizes, full sizes, smoke sizes)
CURVES = {
    "clusters": ("stats", [1, 10, 100, 1000], [1, 10, 100, 1000], [1, 10]),
    "unique tasks": ("unique", [10, 100, 1000], [10, 100, 1000], None),
    "functions": ("funcs", [10, 100, 500], [10, 100, 500], None),
    "unrelated keys": ("populate", [1000, 100_000], [1000, 10_000, 100_000, 1_000_000], None),
    "queue backlog": ("backlog", [0, 100_000], [0, 1000, 100_000, 1_000_000], None),
}
#: Curves that django-q2's own ``Stat.get_all()`` (KEYS + MGET + unpickle) also reads.
BASELINE_CURVES = ("clusters", "unrelated keys")
#: Every name its own series (worst case): the per-pod caps on function and
#: unique-task label values (default 200 and 500) would fold the rest into "other".
UNCAPPED = {"DJANGO_Q_EXPORTER_FUNC_CAP": "100000", "DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP": "100000"}
_IGNORED = ("cmdstat_config|resetstat", "cmdstat_info", "cmdstat_hello", "cmdstat_ping")


def scrape_cost(exporter, client, scrapes: int) -> dict:
    """Median /metrics time (over one keep-alive connection), response size, Redis
    commands per scrape by command (INFO commandstats delta), and the last body."""
    host = urlsplit(exporter.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)

    def get() -> bytes:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, resp.status
        return body

    get()  # warm-up: connections, lazy stores, first-seen bookkeeping
    client.config_resetstat()
    samples, body = [], b""
    for _ in range(scrapes):
        t0 = time.perf_counter()
        body = get()
        samples.append(time.perf_counter() - t0)
    conn.close()
    stats = client.info("commandstats")
    commands = {k.removeprefix("cmdstat_"): v["calls"] / scrapes for k, v in stats.items()
                if k not in _IGNORED and not k.startswith("cmdstat_client")}
    return {"seconds": statistics.median(samples), "bytes": len(body),
            "commands": sum(commands.values()), "by_command": commands, "body": body}


def get_all_seconds(env: dict[str, str], repeats: int) -> float:
    """Median time of django-q2's ``Stat.get_all()`` in a process with Django set up."""
    out = S.run_child(env, "import statistics, time\n"
                           "from django_q.status import Stat\n"
                           "Stat.get_all()\n"
                           "ts = []\n"
                           f"for _ in range({repeats}):\n"
                           "    t0 = time.perf_counter(); Stat.get_all()\n"
                           "    ts.append(time.perf_counter() - t0)\n"
                           "print(statistics.median(ts))\n")
    return float(out.strip().splitlines()[-1])


def grow(st, client, writer: str, done: int, n: int) -> None:
    if writer == "populate":
        # DEBUG POPULATE adds keys "unrelated:<i>" up to n; existing ones are kept.
        client.execute_command("DEBUG", "POPULATE", n, "unrelated")
    elif n > done:
        S.run_child(st.env, f"from bench import writers\nwriters.{writer}({done}, {n})\n")


def series(body: bytes, prefix: bytes) -> int:
    return sum(1 for line in body.splitlines() if line.startswith(prefix))


def check(name: str, n: int, point: dict) -> None:
    """The synthetic load is really in the scrape (a writer that silently failed
    would make a flat curve)."""
    body = point["body"]
    want = {"clusters": (b"django_q_cluster_up{", n),
            "unique tasks": (b"django_q_unique_task_running{", n),
            "functions": (b"django_q_tasks_total{", n)}.get(name)
    if want and series(body, want[0]) < want[1]:
        raise AssertionError(f"{name} {n}: only {series(body, want[0])} {want[0]!r} series")
    if name == "queue backlog":
        m = re.search(rb"^django_q_queue_size\{[^}]*\} (\S+)$", body, re.M)
        if not m or float(m.group(1)) != n:
            raise AssertionError(f"queue backlog {n}: exporter says {m and m.group(1)!r}")


def run(ctx) -> None:
    scrapes = 3 if ctx.smoke else 10 if ctx.quick else 30
    repeats = 2 if ctx.smoke else 3 if ctx.quick else 5
    combined(ctx, scrapes)
    curves: dict[str, list[dict]] = {}
    baselines: dict[str, dict] = {}
    for name, (writer, quick, full, smoke) in CURVES.items():
        sizes = smoke if ctx.smoke else quick if ctx.quick else full
        if not sizes:
            continue
        with S.stack(database_url=ctx.db, **UNCAPPED) as st:
            # The local readiness series answer from the probes' observation, which is
            # refreshed every --health-cache whoever asks: a constant few commands per
            # interval, not per scrape. A long cache keeps that read out of the counts,
            # so "commands / scrape" is what grows with n, if anything.
            exporter = st.exporter("--health-cache", "3600")
            client = st.redis.client()
            if name != "clusters":  # one cluster, as in any real set-up
                S.run_child(st.env, "from bench import writers\nwriters.stats(0, 1)\n")
            done, points, base = 0, [], []
            for n in sizes:
                grow(st, client, writer, done, n)
                done = n
                point = scrape_cost(exporter, client, scrapes)
                check(name, n, point)
                point["n"] = n
                points.append(point)
                line = (f"  {name} {n:,}: {ms(point['seconds'])} ms, {point['bytes']:,} B, "
                        f"{point['commands']:.1f} Redis commands")
                if name in BASELINE_CURVES:
                    base.append(get_all_seconds(st.env, repeats))
                    line += f"; Stat.get_all() {ms(base[-1])} ms"
                print(line, flush=True)
            curves[name] = points
            if base:
                baselines[name] = {"label": "django-q2 Stat.get_all()", "seconds": base}
    report(ctx, curves, baselines, scrapes)


def report(ctx, curves: dict, baselines: dict, scrapes: int) -> None:
    rows = []
    for name, points in curves.items():
        first = points[0]
        base = baselines.get(name, {}).get("seconds")
        for i, p in enumerate(points):
            grew = p["n"] / first["n"] if first["n"] else None
            rows.append([name, f"{p['n']:,}", ms(p["seconds"]),
                         f"{p['seconds'] / first['seconds']:.2f}×" +
                         (f" for {grew:,.0f}× n" if grew and i else ""),
                         f"{p['bytes']:,}", f"{p['commands']:.0f}",
                         f"{ms(base[i])} ({times(base[i] / p['seconds'])})" if base else ""])
    if not rows:
        return
    commands = sorted({c for pts in curves.values() for p in pts for c in p["by_command"]})
    ctx.report.table(
        f"Scrape cost (/metrics over keep-alive, median of {scrapes} scrapes; each curve on a "
        "fresh stack with one cluster, growing one dimension)",
        ["grows", "n", "ms", "vs smallest", "bytes", "Redis commands / scrape",
         "baseline: django-q2 `Stat.get_all()` ms (÷ scrape)"], rows,
        "Redis commands per scrape (all curves): " + ", ".join(commands) + ". `LLEN` + "
        "`LINDEX` and `TIME` + `HGETALL` go in one pipelined round trip each. Function and "
        "unique-task caps raised so every name is its own series (worst case). "
        "`Stat.get_all()` is only the Stat read (`KEYS` + `MGET` + unpickling), not a "
        "whole scrape, and `KEYS` blocks Redis while it runs. Plot: "
        f"`{ctx.report.plot_name}`.")
    for name in ("clusters", "unique tasks", "functions"):
        pts = curves.get(name)
        if pts and len(pts) > 1:
            a, b = pts[0], pts[-1]
            # Linear or better: the cost per added item in the last step is not more
            # than twice that of the step before (quadratic growth would be ~10×).
            per_item = [(q["seconds"] - p["seconds"]) / (q["n"] - p["n"])
                        for p, q in zip(pts, pts[1:], strict=False)]
            ok = None if len(per_item) < 2 else (
                per_item[-1] <= 2 * max(per_item[-2], 1e-6)
                and a["commands"] == b["commands"])
            ctx.report.target(f"scrape cost in {name}", "linear or better, commands constant",
                              f"{ms(a['seconds'])} → {ms(b['seconds'])} ms for n {a['n']:,} → "
                              f"{b['n']:,}; {a['commands']:.0f} → {b['commands']:.0f} "
                              "commands", f"{b['seconds'] / a['seconds']:.1f}× for "
                              f"{b['n'] / a['n']:,.0f}× n; per added item "
                              + " → ".join(f"{x * 1e6:.0f}" for x in per_item) + " µs", ok)
    for name in ("unrelated keys", "queue backlog"):
        pts = curves.get(name)
        if pts and len(pts) > 1:
            lo = min(p["seconds"] for p in pts)
            hi = max(p["seconds"] for p in pts)
            base = baselines.get(name, {}).get("seconds")
            extra = (f"; `Stat.get_all()` {ms(base[0])} → {ms(base[-1])} ms "
                     f"({base[-1] / base[0]:.0f}×)") if base else ""
            ctx.report.target(f"scrape cost in {name}", "flat (within 2×)",
                              f"{ms(pts[0]['seconds'])} → {ms(pts[-1]['seconds'])} ms for "
                              f"n {pts[0]['n']:,} → {pts[-1]['n']:,}",
                              f"max/min {hi / lo:.2f}×{extra}", hi / lo <= 2)
    path = plot(curves, baselines, ctx.report.out / ctx.report.plot_name,
                ("clusters", "unique tasks", "functions"))
    if path:
        ctx.report.plot = path.name
        print(f"wrote {path}", flush=True)


def combined(ctx, scrapes: int) -> None:
    """The target case: 100 clusters + 1 000 unique tasks in one scrape (smoke: 2 + 10),
    with every task's lock counters its own series (judged), and as shipped (the
    default cap of 500 task label values per pod; the rest count under "other")."""
    clusters, tasks = (2, 10) if ctx.smoke else (100, 1000)
    rows, results = [], {}
    for label, caps in (("caps raised", UNCAPPED), ("default caps", {})):
        with S.stack(database_url=ctx.db, **caps) as st:
            exporter = st.exporter()
            client = st.redis.client()
            S.run_child(st.env, f"from bench import writers\nwriters.stats(0, {clusters})\n"
                                f"writers.unique(0, {tasks})\n")
            point = scrape_cost(exporter, client, scrapes)
            check("clusters", clusters, point)
            check("unique tasks", tasks, point)
            base = get_all_seconds(st.env, 3)
        took = re.findall(rb'^django_q_exporter_collector_duration_seconds\{collector="'
                          rb'([^"]+)"\} (\S+)$', point["body"], re.M)
        parts = ", ".join(f"{k.decode()} {float(v) * 1000:.1f}" for k, v in took)
        results[label] = point
        rows.append([f"{clusters} clusters + {tasks:,} unique tasks, {label}",
                     ms(point["seconds"]), f"{point['bytes']:,}",
                     f"{series(point['body'], b'django_q_'):,}", f"{point['commands']:.0f}",
                     ms(base), parts])
        if ctx.smoke:
            break
    ctx.report.table(
        "Target case", ["case", "ms", "bytes", "series", "Redis commands / scrape",
                        "django-q2 `Stat.get_all()` ms (Stats only)",
                        "collector ms (parallel threads)"], rows,
        "Collector times are each collector's own, taken from the last scrape's "
        "`django_q_exporter_collector_duration_seconds`; they run in parallel threads "
        "under one GIL, so they overlap and inflate each other. The rest of a scrape is "
        "the text encoding and HTTP.")
    point = results["caps raised"]
    t = point["seconds"]
    shipped = results.get("default caps")
    ctx.report.target(f"/metrics, {clusters} clusters + {tasks:,} unique tasks", "< 50 ms",
                      f"{ms(t)} ms, {point['commands']:.0f} Redis commands"
                      + (f" ({ms(shipped['seconds'])} ms with the default label caps)"
                         if shipped else ""),
                      f"`Stat.get_all()` alone: {rows[0][5]} ms", t < 0.05)
