"""1 + 5. Probe latency: /healthz and /livez under wrk, next to the manage.py
baselines and the django-q2 documentation's Django-view health check (peer)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import stack as S
from bench.report import ms, times
from tests.procs import PYTHON, ROOT, free_port, wait_for

CONNECTIONS = (1, 16, 64)
#: A manage.py-based probe: what a probe does without a probe server (RSR's
#: original fallback): load Django, ask django-q2 for the Stats, exit 0 if one is
#: Idle or Working.
PROBE_CODE = ("from django_q.status import Stat; from django_q.conf import Conf; import sys; "
              "sys.exit(0 if any(s.status in (Conf.IDLE, Conf.WORKING) "
              "for s in Stat.get_all()) else 1)")
#: The exec probe's client (``python -m exporter check``, urllib), and the same client
#: with requests imported first: the least a requests-based client would cost.
CHECK_CODE = ("import sys; from exporter.__main__ import main; "
              "sys.exit(main(['check', sys.argv[1]]))")
CHECK_WITH_REQUESTS = "import requests; " + CHECK_CODE


def run(ctx) -> None:
    seconds = 2 if ctx.quick else 5
    runs = 3 if ctx.quick else 10
    res: dict = {}
    with S.stack(database_url=ctx.db) as st:
        exporter = st.exporter()
        st.qcluster()
        S.wait_healthy(exporter)
        for path in ("/healthz", "/livez"):
            for conns in CONNECTIONS:
                res[(path, conns)] = S.wrk(exporter.url + path, conns, seconds)
        res.update(peer(st, seconds))
        res["qinfo"] = S.time_command([PYTHON, "manage.py", "qinfo"], st.env, runs)
        res["probe"] = S.time_command([PYTHON, "manage.py", "shell", "-c", PROBE_CODE],
                                      st.env, runs)
        url = exporter.url + "/healthz"
        for key, code in (("check", CHECK_CODE), ("check+requests", CHECK_WITH_REQUESTS)):
            res[key] = S.time_command([PYTHON, "-c", code, url], st.env, 3 * runs)
    report(ctx, res, runs)


def peer(st, seconds: float) -> dict:
    """The documented ``Stat.get_all()`` health view under gunicorn (2 sync workers,
    one per core), on the same cluster."""
    port = free_port()
    env = dict(st.env, DJANGO_SETTINGS_MODULE="bench.peer.settings")
    out: dict = {}
    with open(st.workdir / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen([str(Path(PYTHON).parent / "gunicorn"), "-w", "2", "-b",
                                 f"127.0.0.1:{port}", "rsr_tasks.demo.wsgi:application"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/health/"
            wait_for(lambda: S.http_get(url, 2)[0] == 200, 60, what="peer view answering 200")
            for conns in CONNECTIONS:
                out[("peer", conns)] = S.wrk(url, conns, seconds)
        finally:
            proc.terminate()
            proc.wait(10)
    return out


def report(ctx, res: dict, runs: int) -> None:
    probe, qinfo = res["probe"]["median"], res["qinfo"]["median"]
    rows = []
    labels = {"/healthz": "`/healthz` exporter", "/livez": "`/livez` exporter",
              "peer": "peer: Django view `Stat.get_all()`, gunicorn -w 2"}
    for key in ("/healthz", "/livez", "peer"):
        for conns in CONNECTIONS:
            r = res[(key, conns)]
            rows.append([labels[key], str(conns), ms(r["p50"]), ms(r["p99"]), f"{r['rps']:,.0f}",
                         f"{r['non2xx'] + r['errors']:.0f}", times(probe / r["p50"]),
                         times(probe / r["p99"])])
    for key, label in (("qinfo", "`manage.py qinfo`"),
                       ("probe", "`manage.py shell -c <Stat probe>`")):
        t = res[key]
        rows.append([label, f"1 (sequential, {runs} runs)", ms(t["median"]),
                     f"{ms(t['max'])} (max)", f"{1 / t['median']:.1f}", "0", "", ""])
    h16, peer16 = res[("/healthz", 16)], res[("peer", 16)]
    h1 = res[("/healthz", 1)]
    ctx.report.table(
        "Probe latency (wrk --latency, loopback; a healthy 2-worker cluster on Redis + "
        "PostgreSQL)",
        ["target", "connections", "p50 ms", "p99 ms", "req/s", "errors / non-2xx",
         "manage.py probe ÷ p50", "manage.py probe ÷ p99"], rows,
        f"Baselines measured in this run: the manage.py probe takes {ms(probe)} ms per "
        f"invocation (median of {runs}, after one warm-up), `qinfo` {ms(qinfo)} ms. "
        f"The peer's p99 at 16 connections is {times(peer16['p99'] / h16['p99'])} the "
        f"exporter's, and it serves {times(h16['rps'] / peer16['rps'])} fewer requests/s.")
    ctx.report.target("/healthz p99 at 16 connections", "< 5 ms", f"{ms(h16['p99'])} ms",
                      f"{times(probe / h16['p99'])} faster than the manage.py probe "
                      f"({ms(probe)} ms; goal ≥ 200×)",
                      h16["p99"] < 0.005 and probe / h16["p99"] >= 200)
    ctx.report.target("/healthz, one probe at a time (kubelet)", "", f"p50 {ms(h1['p50'])} ms, "
                      f"p99 {ms(h1['p99'])} ms", f"{times(probe / h1['p50'])} / "
                      f"{times(probe / h1['p99'])} faster than the manage.py probe")
    check, with_requests = res["check"]["median"], res["check+requests"]["median"]
    ctx.report.table(
        "Exec probe client start (`python -m exporter check`, one probe of a healthy "
        "/healthz)", ["client", "median ms", "min ms", "max ms"],
        [[label, ms(res[key]["median"]), ms(res[key]["min"]), ms(res[key]["max"])]
         for key, label in (("check", "urllib (as shipped)"),
                            ("check+requests", "the same + `import requests`"))],
        f"Importing requests would make every exec probe {times(with_requests / check)} as "
        f"slow ({ms(with_requests - check)} ms more, median of {3 * runs}): the probe client "
        "stays on the standard library.")
    ctx.report.target("peer: Django-view health check", "", f"p99 {ms(peer16['p99'])} ms at "
                      "16 connections", f"{times(peer16['p99'] / h16['p99'])} the exporter's "
                      "p99")
