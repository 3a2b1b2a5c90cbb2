"""The landing page shows what a probe would see now, not what the last read saw.

Scrapes and probes each keep their own cluster tracker; the page takes a fresh
observation like /healthz does. Before, it rendered the shared tracker's last view:
after a quiet spell longer than the Stat grace it called a healthy cluster "down".
"""

from __future__ import annotations

import re
import socket
import time

from tests.procs import wait_for

HOST = socket.gethostname()


def test_landing_page_is_fresh_after_a_quiet_spell(make_env, procs):
    env = make_env("redis", Q_WORKERS="1")
    exporter = procs.exporter(env, "--stat-grace", "1")
    procs.qcluster(env)
    exporter.wait_ready_to_serve()
    wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 30, what="/healthz 200")
    time.sleep(2.5)  # the precondition itself: no request for longer than the grace
    status, page, _ = exporter.get("/")
    assert status == 200
    row = re.search(rf"<tr><td>[^<]*</td><td>{re.escape(HOST)}</td>(.*?)</tr>", page)
    assert row, page
    cells = re.findall(r"<td>([^<]*)</td>", row.group(1))
    assert cells[0] == "up" and cells[1] in ("idle", "working"), cells
    age = float(cells[-1].removesuffix("s ago"))
    assert age < 1.0, cells
