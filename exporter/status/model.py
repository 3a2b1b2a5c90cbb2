"""The status page's data: plain values, the same for the HTML page and the JSON form.

Times are ages in seconds at ``StatusModel.generated_at`` (a Unix time), so
the page never needs the reader's clock; names are the users' strings, raw
(escaping is the renderers' job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from exporter.health import CheckResult as Check  # one readiness check, as /readyz judged it

T = TypeVar("T")


@dataclass(frozen=True)
class Section(Generic[T]):
    """One table's rows, or why they could not be read (``error``: rows are empty), or
    why this exporter does not show them at all (``note``: not a failure)."""

    rows: tuple[T, ...] = ()
    error: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Cluster:
    cluster_name: str
    host: str
    local: bool  # the cluster /readyz judges
    up: bool
    status: str | None  # one of exporter.model.STATUSES or "unknown"; None: never seen
    workers: int  # live workers (0 when down)
    last_seen_age: float | None  # since a read last found its Stat; None: never
    reincarnations: int | None
    uptime: float | None  # since the cluster started


@dataclass(frozen=True)
class Queue:
    queue: str
    size: int
    oldest_age: float | None  # of the task at the head; None when empty or unknown
    in_flight: int | None  # leased, not acknowledged; None where the broker has no leases


#: Unique-task states, worst first: the page lists the tasks in this order.
UNIQUE_STATES = ("stale", "running", "idle", "never run")


@dataclass(frozen=True)
class UniqueTask:
    name: str
    state: str  # one of UNIQUE_STATES
    holder_host: str | None
    holder_pid: int | None
    heartbeat_age: float | None  # while running
    timeout: float  # heartbeat staleness limit (= the lock's expiry)
    run_age: float | None  # since the run in progress started
    last_success_age: float | None
    last_outcome: str | None  # "success" or "failure" of the last completed run
    last_duration: float | None
    contended: int | None  # this pod's counts; None: the pod store was unreadable
    lost: int | None


@dataclass(frozen=True)
class Schedule:
    name: str
    next_run_in: float | None  # seconds until next_run, negative when overdue
    delay: float  # seconds past next_run (0 if not due), as the metric reports


@dataclass(frozen=True)
class Function:
    func: str
    finished: int  # since this pod's store began
    failed: int
    rate_per_minute: float | None  # over ``StatusModel.rate_window``; None: first reading
    failure_ratio: float | None  # failed / finished; None when nothing finished
    p50: float | None  # duration quantiles, seconds; None when nothing finished
    p95: float | None
    p50_over: bool = False  # the quantile lies past the largest finite bucket
    p95_over: bool = False


@dataclass(frozen=True)
class Identity:
    version: str
    django_q_version: str
    python_version: str
    broker: str  # password masked
    cluster_name: str
    host: str


@dataclass(frozen=True)
class StatusModel:
    generated_at: float
    identity: Identity
    ready: bool
    checks: tuple[Check, ...]
    clusters: Section[Cluster]
    queues: Section[Queue]
    unique_tasks: Section[UniqueTask]
    schedules: Section[Schedule]
    functions: Section[Function]
    rate_window: float | None = None  # seconds between the two readings of the rates
    refresh: int = 5  # seconds between page reloads (0: never)
