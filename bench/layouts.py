"""Cost of the two deployment layouts against the number of worker pods.

Default layout: every worker pod's exporter runs with ``--scope all``. Per-pod
layout: every worker pod's exporter runs with ``--scope local`` and one
exporter with ``--scope cluster``. For 10 and 200 pods, in one run:

* series Prometheus stores: each target's samples of one scrape plus the 5
  series Prometheus adds per target (``up``, ``scrape_*``), summed over the
  targets (each target's series carry its own ``instance``, so they add up);
* broker work per scrape interval: Redis ``INFO commandstats`` call deltas and
  ``total_net_output_bytes`` while each exporter answers what one pod's probes
  and Prometheus ask in one interval (``k8s/``: readiness every 5 s, a scrape
  every 30 s, so 6 ``/healthz`` + 1 ``/metrics``).

Pods are simulated as ``bench/writers.py`` does (a django-q2 ``Stat`` per host
saved through the broker's own ``set_stat``, real Redis), with 5 unique tasks
and 5 functions in the pod store. No qcluster runs, so every command Redis
counts comes from the exporters. Exporters are real processes, each with its
own ``--hostname``; ``SAMPLE`` of them per layout, not 200: an exporter's work
depends only on what the broker holds (all N Stats are there) and on its own
scope, not on the other exporters, so N pods cost N times the sampled mean
(the table shows the sample size; at 10 pods the sample is every pod).
"""

from __future__ import annotations

import time

from bench import stack as S
from bench.report import times

PODS = (10, 200)
SAMPLE = 10
PROBES_PER_INTERVAL = 6  # readinessProbe periodSeconds 5 within a 30 s scrape interval
#: up, scrape_duration_seconds, scrape_samples_scraped, ..._post_metric_relabeling,
#: scrape_series_added
AUTO_SERIES = 5
GAP = 1.1  # seconds between probe rounds: past 4 x --health-cache, so each probe reads


def _counters(client) -> tuple[dict[str, int], int, int]:
    """Calls per command, bytes sent and µs Redis spent in commands other than INFO."""
    stats = client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    usec = sum(v["usec"] for k, v in stats.items() if k != "cmdstat_info")
    return calls, int(client.info("stats")["total_net_output_bytes"]), usec


def series(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def interval(client, exporters) -> tuple[float, float, float, float, dict[str, int]]:
    """One scrape interval of every exporter in ``exporters``; per exporter: series of
    its scrape, Redis commands, bytes and µs; and the command mix of the whole set."""
    (c0, b0, _), (c1, b1, u1) = _counters(client), _counters(client)
    own = {"info": c1.get("info", 0) - c0.get("info", 0)}  # our INFO calls, as measured
    overhead = b1 - b0  # bytes of one pair of INFO replies
    for _ in range(PROBES_PER_INTERVAL):
        for e in exporters:
            S.http_get(e.url + "/healthz")
        time.sleep(GAP)
    total_series = 0
    for e in exporters:
        status, body = S.http_get(e.url + "/metrics")
        assert status == 200, status
        total_series += series(body) + AUTO_SERIES
    c2, b2, u2 = _counters(client)
    mix = {k: v - c1.get(k, 0) for k, v in c2.items() if v - c1.get(k, 0)}
    mix["info"] = mix.get("info", 0) - own["info"]
    mix = {k: v for k, v in mix.items() if v > 0}
    n = len(exporters)
    return (total_series / n, sum(mix.values()) / n, max(0, b2 - b1 - overhead) / n,
            (u2 - u1) / n, mix)


def _populate(st, start: int, end: int) -> None:
    S.run_child(st.env, f"from bench import writers\nwriters.stats({start}, {end})\n")


def _warm(exporters) -> None:
    for e in exporters:  # the local scope's first read looks its key up: not counted
        S.http_get(e.url + "/healthz")
        S.http_get(e.url + "/metrics")
    time.sleep(GAP)


def measure(ctx, scope: str, pods) -> dict[int, dict]:
    out: dict[int, dict] = {}
    with S.stack(database_url=ctx.db) as st:
        client = st.redis.client()
        S.run_child(st.env, "from bench import writers\nwriters.unique(0, 5)\n"
                            "writers.funcs(0, 5)\n")
        sample = min(SAMPLE, min(pods))
        _populate(st, 0, pods[0])
        exporters = [st.exporter("--scope", scope, "--hostname", f"bench-host-{i}")
                     for i in range(sample)]
        cluster = st.exporter("--scope", "cluster") if scope == "local" else None
        done = pods[0]
        for n in pods:
            _populate(st, done, n)
            done = n
            _warm(exporters + ([cluster] if cluster else []))
            per_series, per_cmds, per_bytes, per_usec, mix = interval(client, exporters)
            point = {"sample": sample, "series": per_series * n, "commands": per_cmds * n,
                     "bytes": per_bytes * n, "usec": per_usec * n, "mix": mix,
                     "per_pod": (per_series, per_cmds, per_bytes)}
            if cluster is not None:
                c_series, c_cmds, c_bytes, c_usec, _ = interval(client, [cluster])
                point["series"] += c_series
                point["commands"] += c_cmds
                point["bytes"] += c_bytes
                point["usec"] += c_usec
                point["cluster"] = (c_series, c_cmds, c_bytes)
            out[n] = point
    return out


def run(ctx) -> None:
    pods = PODS[:1] if ctx.smoke else PODS
    res = {"all": measure(ctx, "all", pods), "local": measure(ctx, "local", pods)}
    rows = []
    for n in pods:
        a, p = res["all"][n], res["local"][n]
        for label, point in (("every pod --scope all", a),
                             ("per pod --scope local + 1 --scope cluster", p)):
            pod = point["per_pod"]
            cluster = point.get("cluster")
            rows.append([f"{n}", label, f"{point['sample']}",
                         f"{pod[0]:,.0f}" + (f" + {cluster[0]:,.0f}" if cluster else ""),
                         f"{point['series']:,.0f}",
                         f"{pod[1]:,.1f}" + (f" + {cluster[1]:,.1f}" if cluster else ""),
                         f"{point['commands']:,.0f}",
                         f"{point['bytes'] / 1024:,.0f}",
                         f"{point['usec'] / 1000:,.1f}"])
        rows.append([f"{n}", "default ÷ per-pod", "", "", times(a["series"] / p["series"]),
                     "", times(a["commands"] / p["commands"]),
                     times(a["bytes"] / p["bytes"]), times(a["usec"] / p["usec"])])
    ctx.report.table(
        "Deployment layouts: series in Prometheus and Redis work per 30 s scrape interval",
        ["pods", "layout", "exporters sampled", "series per target (pod + cluster)",
         "series in Prometheus", "Redis commands per target", "Redis commands per interval",
         "KiB sent by Redis per interval", "Redis command ms per interval"], rows,
        f"Per interval each pod's exporter answers {PROBES_PER_INTERVAL} /healthz and one "
        f"/metrics; series include the {AUTO_SERIES} Prometheus adds per target. Totals = "
        "pods × the sampled exporters' mean (+ the cluster exporter, measured). Synthetic "
        "pods (Stats saved through django-q2's set_stat), 5 unique tasks, 5 functions; no "
        "qcluster, so Redis counts the exporters' commands only.")
    big = pods[-1]
    a, p = res["all"][big], res["local"][big]
    ctx.report.table(
        f"Redis commands of the sampled exporters in one interval, {big} pods",
        ["layout", "exporters", "commands (calls)"],
        [[label, f"{point['sample']}",
          ", ".join(f"{k} {v}" for k, v in sorted(point["mix"].items(), key=lambda kv: -kv[1]))]
         for label, point in (("--scope all", a), ("--scope local", p))],
        "Pipelined LLEN/LINDEX count one call each; GET is the local scope's one-key read.")
    if len(pods) > 1:
        small = pods[0]
        growth_all = a["series"] / res["all"][small]["series"]
        growth_local = p["series"] / res["local"][small]["series"]
        ctx.report.target(f"series, {small} → {big} pods, per-pod layout", "linear "
                          f"(≤ {big / small:.0f}×)", f"{growth_local:.1f}×",
                          f"default layout {growth_all:.0f}×", growth_local <= big / small)
    ctx.report.target(f"Redis bytes per interval at {big} pods", "per-pod below default",
                      f"{p['bytes'] / 1024:,.0f} KiB vs {a['bytes'] / 1024:,.0f} KiB",
                      times(a["bytes"] / p["bytes"]), p["bytes"] < a["bytes"])
