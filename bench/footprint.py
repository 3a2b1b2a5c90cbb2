"""4. Start-up and footprint: process start to the first 200 on /livez and to the
first complete /metrics, next to `manage.py qinfo`; resident memory and open
file descriptors idle and after many scrapes."""

from __future__ import annotations

import http.client
import time

from bench import stack as S
from tests.procs import PYTHON, Exporter, wait_for


def run(ctx) -> None:
    scrapes = 200 if ctx.smoke else 1000 if ctx.quick else 10_000
    with S.stack(database_url=ctx.db) as st:
        st.qcluster()
        # The cluster's first Stat, so "complete" /metrics has something to show.
        S.run_child(st.env, "import time\nfrom django_q.status import Stat\n"
                            "deadline = time.time() + 60\n"
                            "while not Stat.get_all() and time.time() < deadline:\n"
                            "    time.sleep(0.05)\n")
        t0 = time.monotonic()
        exporter = Exporter(st.env, st.workdir / "footprint.log", "--log-level", "WARNING")
        st.procs.append(exporter)
        wait_for(lambda: exporter.get("/livez", timeout=1)[0] == 200, 30, 0.005,
                 what="first /livez")
        first_livez = time.monotonic() - t0
        wait_for(lambda: b"django_q_cluster_up{" in S.http_get(exporter.url + "/metrics")[1],
                 30, 0.005, what="first complete /metrics")
        first_metrics = time.monotonic() - t0
        S.wait_healthy(exporter)
        rss_idle, fds_idle = S.rss_kib(exporter.pid), S.fds(exporter.pid)
        conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=10)
        marks = {}
        for i in range(1, scrapes + 1):
            conn.request("GET", "/metrics")
            conn.getresponse().read()
            if i in (scrapes // 10, scrapes // 2, scrapes):
                marks[i] = (S.rss_kib(exporter.pid), S.fds(exporter.pid))
        conn.close()
        qinfo = S.time_command([PYTHON, "manage.py", "qinfo"], st.env, 3)["median"]
    first = min(marks)
    growth = (marks[scrapes][0] - marks[first][0]) / 1024
    fds_first, fds_after = marks[first][1], marks[scrapes][1]
    rows = [["process start → first 200 on /livez", f"{first_livez * 1000:.0f} ms",
             f"{first_livez / qinfo:.2f}× one `manage.py qinfo` (paid once, not per probe)"],
            ["process start → first complete /metrics", f"{first_metrics * 1000:.0f} ms",
             f"{first_metrics / qinfo:.2f}× one `manage.py qinfo`"],
            ["`manage.py qinfo` (baseline, median of 3)", f"{qinfo * 1000:.0f} ms", ""],
            ["RSS idle (cluster up, before scraping)", f"{rss_idle / 1024:.1f} MiB", ""]]
    rows += [[f"RSS, open file descriptors after {i:,} scrapes", f"{kib / 1024:.1f} MiB, {n}",
              ""] for i, (kib, n) in sorted(marks.items())]
    rows.append(["open file descriptors idle", f"{fds_idle}", "(the first scrapes open the "
                 "collector threads' database connections, one per thread: bounded by the "
                 "pool)"])
    ctx.report.table("Start-up and footprint", ["what", "measured", "ratio"], rows)
    ctx.report.target("start → first 200 on /livez", "", f"{first_livez * 1000:.0f} ms",
                      f"{first_livez / qinfo:.2f}× one `manage.py qinfo` ({qinfo * 1000:.0f} ms)")
    ctx.report.target(f"RSS after {scrapes:,} scrapes", "no growth",
                      f"{marks[first][0] / 1024:.1f} → {marks[scrapes][0] / 1024:.1f} MiB, "
                      f"fds {fds_first} → {fds_after} (scrape {first:,} → {scrapes:,})",
                      f"{growth:+.1f} MiB", growth < 2.0 and fds_after <= fds_first + 1)
