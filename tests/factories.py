"""Plain values for the pure tests (no I/O): a decoded cluster Stat with defaults."""

from __future__ import annotations

from exporter.model import ClusterStat


def stat(host="h1", status="idle", workers=(11, 12), ts=1000.0, sentinel=10, cid="c1",
         task_q=0) -> ClusterStat:
    return ClusterStat("rsr", host, cid, status, tuple(workers), 9, sentinel, 13, 14, 0,
                       900.0, ts, task_q, 0)
