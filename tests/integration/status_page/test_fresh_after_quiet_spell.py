"""The status page shows what the sources say now, not what an earlier read saw.

Every load reads the Stats afresh into the page's own tracker. Before, the page
rendered the scrapes' tracker's last view: after a quiet spell longer than the Stat
grace it called a healthy cluster "down".
"""

from __future__ import annotations

import json
import socket
import time

from tests.procs import wait_for

HOST = socket.gethostname()


def test_status_page_is_fresh_after_a_quiet_spell(make_env, procs):
    env = make_env("redis", Q_WORKERS="1")
    exporter = procs.exporter(env, "--stat-grace", "1")
    procs.qcluster(env)
    exporter.wait_ready_to_serve()
    wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 30, what="/healthz 200")
    time.sleep(2.5)  # the precondition itself: no request for longer than the grace
    status, body, _ = exporter.get("/status.json")
    assert status == 200
    rows = [c for c in json.loads(body)["clusters"]["rows"] if c["host"] == HOST]
    assert len(rows) == 1 and rows[0]["local"], rows
    assert rows[0]["up"] and rows[0]["status"] in ("idle", "working"), rows
    assert rows[0]["last_seen_age"] < 1.0, rows
