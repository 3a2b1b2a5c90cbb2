"""Plain values passed from sources to collectors and health.

Nothing here imports django-q2: sources translate its objects into these.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Stable English status label values, in lifecycle order.
STATUSES = ("starting", "idle", "working", "stopping", "stopped")
UP_STATUSES = frozenset({"starting", "idle", "working"})
READY_STATUSES = frozenset({"idle", "working"})


@dataclass(frozen=True)
class ClusterStat:
    """One cluster's self-reported status (a decoded django-q2 Stat)."""

    cluster_name: str
    host: str
    cluster_id: str
    status: str  # one of STATUSES, or "unknown"
    workers: tuple[int, ...]
    pid: int  # qcluster main process
    sentinel_pid: int
    monitor_pid: int
    pusher_pid: int
    reincarnations: int
    started_at: float | None  # Unix time
    timestamp: float  # Unix time the Stat was saved
    task_q_size: int
    done_q_size: int


@dataclass(frozen=True)
class StatsReading:
    stats: tuple[ClusterStat, ...]
    bad_signatures: int = 0
    undecodable: int = 0
    round_trips: int = 0


@dataclass(frozen=True)
class QueueReading:
    queue: str
    size: int
    in_flight: int | None  # None where the broker has no leases (Redis)
    oldest_enqueued_at: float | None  # Unix time; None when empty or unknown
    round_trips: int = 0
