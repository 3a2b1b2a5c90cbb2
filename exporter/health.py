"""Health decisions: pure functions of observations, a clock and the config.

Each check is a small object with a name and one method returning
``(ok, reason)``; readiness and liveness are lists of checks. A new
condition is a new class in a list, not a branch in a long function. No I/O
here: the caller gathers a ``HealthObservation`` (see ``exporter.probe``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from exporter.config import Config
from exporter.model import READY_STATUSES
from exporter.tracker import ClusterView


@dataclass(frozen=True)
class HealthObservation:
    now: float
    process_started: float
    local_host: str
    cluster_name: str
    local: ClusterView | None  # the local cluster's view, if tracked
    clusters: tuple[ClusterView, ...] = ()  # every cluster the probes track
    stats_error: str | None = None  # Stats could not be read
    broker_error: str | None = None  # None: the broker answered in time
    problems: tuple[str, ...] = ()  # misconfigurations found at start
    bad_signatures: int = 0
    undecodable: int = 0  # Stats of an incompatible django-q2 in the last read
    other_names: tuple[str, ...] = ()
    sentinel_alive: bool | None = None  # None: no local sentinel known
    queue_size: int | None = None
    last_task_finished: float | None = None
    pending_since: float | None = None
    task_timeout: float | None = None
    stats_read_at: float | None = None  # last read of the Stats that worked (None: none yet)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


class Check:
    name = "check"

    def evaluate(self, obs: HealthObservation, cfg: Config) -> tuple[bool, str]:
        raise NotImplementedError


class ConfigCheck(Check):
    name = "config"

    def evaluate(self, obs, cfg):
        lines = list(obs.problems)
        if obs.bad_signatures:
            lines.append(f"{obs.bad_signatures} cluster Stat(s) failed the signature check: "
                         "SECRET_KEY or Q_CLUSTER name differs from the workers'")
        if lines:
            return False, "; ".join(lines)
        return True, "configuration consistent"


class StatsReadableCheck(Check):
    name = "stats"

    def evaluate(self, obs, cfg):
        if obs.stats_error:
            return False, f"cluster Stats unreadable: {obs.stats_error}"
        return True, "cluster Stats readable"


class BrokerCheck(Check):
    name = "broker"

    def evaluate(self, obs, cfg):
        if obs.broker_error:
            return False, f"broker did not answer: {obs.broker_error}"
        return True, "broker answered"


class StatFreshCheck(Check):
    """The local cluster saved a Stat lately.

    While the Stats cannot be read (broker or cache outage) the verdict is the one of
    the last read that worked: the outage fails readiness through the ``stats`` and
    ``broker`` checks, not by claiming the cluster died.
    """

    name = "cluster_seen"

    def evaluate(self, obs, cfg):
        view = obs.local
        if obs.stats_error and obs.stats_read_at is None:
            return True, "not judged: the Stats have been unreadable since start"
        if view is not None and view.last_seen is not None:
            if obs.stats_error:
                # Judged as of the last read that worked: an outage of the Stats' store
                # says nothing new about the cluster, so the verdict (and an alert built
                # on it) neither flips to down nor resolves while the store is away.
                age = obs.stats_read_at - view.last_seen
                since = f" (last known: Stats unreadable for {obs.now - obs.stats_read_at:.0f}s)"
            else:
                age, since = obs.now - view.last_seen, ""
            if age <= cfg.stat_grace:
                return True, f"Stat of {obs.local_host} seen {age:.1f}s ago{since}"
            return False, (f"no Stat from {obs.local_host} for {age:.1f}s "
                           f"(grace {cfg.stat_grace:g}s): cluster stopped or hung{since}")
        if obs.stats_error:
            return False, ("no Stat of the local cluster seen before the Stats became "
                           "unreadable (last known)")
        waited = obs.now - obs.process_started
        hint = ""
        if obs.other_names:
            hint = f"; Stats exist for cluster name(s) {', '.join(obs.other_names)}"
        if waited < cfg.startup_grace:
            return False, (f"waiting for the first Stat of cluster {obs.cluster_name!r} on "
                           f"host {obs.local_host} ({cfg.startup_grace - waited:.0f}s of "
                           f"startup grace left){hint}")
        return False, (f"no Stat of cluster {obs.cluster_name!r} for host {obs.local_host} "
                       f"since start ({waited:.0f}s){hint}")


class StatusCheck(Check):
    name = "status"

    def evaluate(self, obs, cfg):
        status = obs.local.status if obs.local else None
        if status in READY_STATUSES:
            return True, f"status {status}"
        return False, f"status {status or 'unknown'} (ready needs idle or working)"


class WorkersCheck(Check):
    name = "workers"

    def evaluate(self, obs, cfg):
        stat = obs.local.stat if obs.local else None
        count = len(stat.workers) if stat else 0
        if count >= 1:
            return True, f"{count} worker(s)"
        return False, "no worker processes"


class SentinelAliveCheck(Check):
    name = "sentinel_process"

    def evaluate(self, obs, cfg):
        if obs.sentinel_alive is False:
            pid = obs.local.stat.sentinel_pid if obs.local and obs.local.stat else "?"
            return False, f"sentinel process {pid} of the local cluster is gone"
        if obs.sentinel_alive is None:
            return True, "no local sentinel seen alive from this process yet (not judged)"
        return True, "sentinel process alive"


class ProgressCheck(Check):
    """Work pending and nothing finished for too long: a stuck cluster.

    django-q2 keeps saying Working while its monitor hangs, and Idle only
    means its in-memory queues are empty, so status alone cannot tell.
    """

    name = "progress"

    def evaluate(self, obs, cfg):
        stat = obs.local.stat if obs.local else None
        queued = obs.queue_size or 0
        task_q = stat.task_q_size if stat else 0
        done_q = stat.done_q_size if stat else 0
        if not (queued or task_q or done_q):
            return True, "no work pending"
        limit = cfg.progress_limit or ((obs.task_timeout or 300.0) + cfg.progress_margin)
        marks = [t for t in (obs.last_task_finished, obs.pending_since,
                             stat.started_at if stat else None) if t is not None]
        if not marks:
            return True, "work pending, waiting for a first finished task"
        idle = obs.now - max(marks)
        pending = f"queue {queued}, task_q {task_q}, done_q {done_q}"
        if idle > limit:
            hint = ""
            if obs.last_task_finished is None:
                hint = ("; none recorded in the pod store yet (if tasks do finish, the "
                        "workers and the exporter use different DJANGO_Q_EXPORTER_POD_STORE)")
            return False, (f"work pending ({pending}) and no task finished for {idle:.0f}s "
                           f"(limit {limit:g}s): monitor or workers stuck{hint}")
        return True, f"work pending ({pending}), last progress {idle:.0f}s ago"


READINESS: tuple[Check, ...] = (
    ConfigCheck(), StatsReadableCheck(), BrokerCheck(), StatFreshCheck(), StatusCheck(),
    WorkersCheck(), SentinelAliveCheck(), ProgressCheck(),
)
LIVENESS: tuple[Check, ...] = (SentinelAliveCheck(),)
#: ``--scope cluster``: no local cluster to judge; ready means the Stats and the broker
#: can be read with this configuration.
CLUSTER_READINESS: tuple[Check, ...] = (ConfigCheck(), StatsReadableCheck(), BrokerCheck())


def evaluate(checks: tuple[Check, ...], obs: HealthObservation, cfg: Config) -> HealthReport:
    results = []
    for check in checks:
        ok, reason = check.evaluate(obs, cfg)
        results.append(CheckResult(check.name, ok, reason))
    return HealthReport(all(r.ok for r in results), tuple(results))


def readiness(obs: HealthObservation, cfg: Config) -> HealthReport:
    return evaluate(CLUSTER_READINESS if cfg.scope == "cluster" else READINESS, obs, cfg)


def liveness(obs: HealthObservation, cfg: Config) -> HealthReport:
    return evaluate(LIVENESS, obs, cfg)
