"""Remember clusters between reads: grace for blinking Stats, retention for dead ones.

A Stat lives 3 s after its last save and can blink out when the sentinel
lags, so a cluster only reads down after ``stat_grace`` seconds without a
Stat. A cluster that is gone keeps reading 0 for ``retention`` seconds so
alerts see the drop, then its series disappear (bounded cardinality across
restarts). Expected hosts are pre-seeded and never dropped.

Pure bookkeeping: the caller passes the clock. Each tracker has one writer
(the scrapes keep one, the probes another), so what health sees depends only
on the probes' own reads; the lock covers overlapping calls of that writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.model import UP_STATUSES, ClusterStat


@dataclass(frozen=True)
class ClusterView:
    cluster_name: str
    host: str
    stat: ClusterStat | None  # last Stat seen (None: expected, never seen)
    present: bool  # a Stat was in the latest read
    last_seen: float | None  # local clock of the last read that had a Stat
    up: bool

    @property
    def status(self) -> str | None:
        return self.stat.status if self.stat else None


@dataclass
class _Entry:
    stat: ClusterStat | None
    last_seen: float | None
    expected: bool = False


class ClusterTracker:
    def __init__(self, cluster_name: str, grace: float, retention: float,
                 expected_hosts: Iterable[str] = ()) -> None:
        self.cluster_name = cluster_name
        self.grace = grace
        self.retention = retention
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {
            (cluster_name, host): _Entry(None, None, expected=True) for host in expected_hosts
        }

    def update(self, stats: Iterable[ClusterStat], now: float) -> list[ClusterView]:
        """Fold in a fresh read and return the views for every tracked cluster."""
        newest: dict[tuple[str, str], ClusterStat] = {}
        for stat in stats:
            key = (stat.cluster_name, stat.host)
            if key not in newest or stat.timestamp > newest[key].timestamp:
                newest[key] = stat
        with self._lock:
            for key, stat in newest.items():
                entry = self._entries.get(key)
                if entry is None:
                    self._entries[key] = _Entry(stat, now)
                else:
                    entry.stat, entry.last_seen = stat, now
            views = []
            for key, entry in list(self._entries.items()):
                present = key in newest
                age = None if entry.last_seen is None else now - entry.last_seen
                if not entry.expected and age is not None and age > self.retention:
                    del self._entries[key]
                    continue
                fresh = age is not None and age <= self.grace
                up = bool(fresh and entry.stat and entry.stat.status in UP_STATUSES)
                views.append(ClusterView(key[0], key[1], entry.stat, present,
                                         entry.last_seen, up))
        views.sort(key=lambda v: (v.cluster_name, v.host))
        return views
