"""Every metric family the project exposes, declared once.

The collectors, the runner's own families, the workers' instrumentation, the
README's metric reference and the tests all take names, types, labels and
help from here, so a family cannot drift apart between the code that fills
it, the dashboards and the documentation. Adding a metric = one ``_declare``
call below (in the group it belongs to) + the code that fills it; the README
table is regenerated with ``python -m djq_contract.catalogue --readme README.md``
(``--markdown`` prints it).

Scope says how N exporter replicas add up:

* ``cluster_wide``: read from the shared broker or cache, so every replica
  publishes the same value; aggregate with ``max by (...)``, never ``sum``.
* ``per_pod``: what this pod's processes counted (or the exporter's own
  state); a part of a whole, summed across pods.

Which exporter publishes a family follows from its scope (``published``): in
the per-pod layout each worker pod's exporter runs with ``--scope local`` and
publishes the per-pod families only (its own cluster's readiness, its own
counters), and one exporter with ``--scope cluster`` publishes the
cluster-wide ones once; ``--scope all`` (one exporter per pod, the default
for small deployments) publishes both. The families about the exporter
process itself (``EXPORTER_SELF``) come from every exporter whatever its scope.

Names follow Prometheus practice: prefix ``django_q_``, base units in the
name (``_seconds``), counters declared without ``_total`` (the exposition adds
it; ``FamilySpec.exposed`` is the name PromQL queries).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PER_POD = "per_pod"
CLUSTER_WIDE = "cluster_wide"
TYPES = ("gauge", "counter", "histogram")
_NAME = re.compile(r"^django_q_[a-z0-9_]+$")


@dataclass(frozen=True)
class FamilySpec:
    name: str  # family name; counters without the _total their samples carry
    type: str  # one of TYPES
    labels: tuple[str, ...]
    help: str
    scope: str  # PER_POD or CLUSTER_WIDE
    buckets: tuple[float, ...] | None = None  # histograms: default upper bounds (no +Inf)

    @property
    def exposed(self) -> str:
        """The name a PromQL query uses (histograms: the base of _bucket/_sum/_count)."""
        return self.name + "_total" if self.type == "counter" else self.name


@dataclass(frozen=True)
class LabelCap:
    """A per-pod cardinality budget (``PodStore.admit``): the first ``default`` values
    of ``label`` keep their name, the rest read "other". ``env`` overrides the size."""

    key: str  # PodStore.admit family key
    label: str
    env: str
    default: int

    def size(self, environ: Mapping[str, str] = os.environ) -> int:
        return int(environ.get(self.env) or self.default)


FAMILIES: dict[str, FamilySpec] = {}


def _declare(name: str, type_: str, labels: Sequence[str], help_: str, scope: str,
             buckets: Sequence[float] | None = None) -> FamilySpec:
    """Add a family; a malformed one fails at import, i.e. in every test run."""
    if not _NAME.match(name) or name in FAMILIES:
        raise ValueError(f"metric family {name!r}: bad or duplicate name")
    if type_ not in TYPES or scope not in (PER_POD, CLUSTER_WIDE):
        raise ValueError(f"metric family {name!r}: type {type_!r} or scope {scope!r}")
    if type_ == "counter" and name.endswith("_total"):
        raise ValueError(f"counter {name!r}: declare it without _total")
    if (type_ == "histogram") != (buckets is not None):
        raise ValueError(f"metric family {name!r}: buckets are for histograms only")
    spec = FamilySpec(name, type_, tuple(labels), help_, scope,
                      tuple(buckets) if buckets is not None else None)
    FAMILIES[name] = spec
    return spec


CLUSTER = ("cluster_name", "host")

# --- clusters (decoded Stats; every replica sees every host's cluster) -----------------
CLUSTER_UP = _declare(
    "django_q_cluster_up", "gauge", CLUSTER,
    "1 if the cluster has a fresh Stat with status starting, idle or working; 0 if "
    "stopping, stopped, stale or expected but missing (kept at 0 for the retention, then "
    "dropped)", CLUSTER_WIDE)
CLUSTER_STATUS = _declare(
    "django_q_cluster_status", "gauge", CLUSTER + ("status",),
    "1 for the cluster's current status (state set)", CLUSTER_WIDE)
CLUSTER_WORKERS = _declare(
    "django_q_cluster_workers", "gauge", CLUSTER,
    "Live worker processes of the cluster (0 when down)", CLUSTER_WIDE)
CLUSTER_REINCARNATIONS = _declare(
    "django_q_cluster_reincarnations", "counter", CLUSTER,
    "Worker reincarnations since the cluster started", CLUSTER_WIDE)
CLUSTER_START_TIME = _declare(
    "django_q_cluster_start_time_seconds", "gauge", CLUSTER,
    "Cluster start time, Unix time", CLUSTER_WIDE)
CLUSTER_LAST_SEEN = _declare(
    "django_q_cluster_last_seen_timestamp_seconds", "gauge", CLUSTER,
    "Time the cluster last saved its Stat, Unix time", CLUSTER_WIDE)
CLUSTER_INFO = _declare(
    "django_q_cluster_info", "gauge", CLUSTER + ("cluster_id", "django_q_version"),
    "Cluster identity (value always 1)", CLUSTER_WIDE)
STATS_REJECTED = _declare(
    "django_q_exporter_stats_rejected", "gauge", ("reason",),
    "Stats read but not usable in the last read: bad_signature means SECRET_KEY or "
    "cluster name differ from the workers'", PER_POD)

# --- this pod's own cluster (its readiness; the series leave with the pod) -------------
LOCAL_CLUSTER_READY = _declare(
    "django_q_local_cluster_ready", "gauge", CLUSTER,
    "1 if this exporter's own cluster is ready (the /readyz decision); published for the "
    "local host only", PER_POD)
READINESS_CHECK = _declare(
    "django_q_readiness_check", "gauge", CLUSTER + ("check",),
    "1 if the readiness check passes for this exporter's own cluster, 0 if it fails "
    "(reasons: /readyz?verbose=1)", PER_POD)

# --- broker and queue ------------------------------------------------------------------
BROKER_UP = _declare(
    "django_q_broker_up", "gauge", ("broker",),
    "1 if the broker answered a real round trip within the backend timeout", CLUSTER_WIDE)
QUEUE_SIZE = _declare(
    "django_q_queue_size", "gauge", ("queue",), "Tasks waiting in the broker", CLUSTER_WIDE)
QUEUE_IN_FLIGHT = _declare(
    "django_q_queue_in_flight", "gauge", ("queue",),
    "Tasks leased to a cluster, not yet acknowledged (ORM broker only; a failed "
    "task stays leased unless Q_CLUSTER ack_failures or max_attempts)", CLUSTER_WIDE)
QUEUE_OLDEST_AGE = _declare(
    "django_q_queue_oldest_task_age_seconds", "gauge", ("queue",),
    "Age of the task at the head of the queue, 0 if empty", CLUSTER_WIDE)

# --- task executions (written by this pod's monitor process) ---------------------------
TASK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                300.0, 600.0, 1800.0, 3600.0)
TASKS = _declare(
    "django_q_tasks", "counter", ("func",),
    "Tasks finished (success or failure), by function", PER_POD)
TASKS_FAILED = _declare(
    "django_q_tasks_failed", "counter", ("func",),
    "Tasks that failed (including timeouts), by function", PER_POD)
TASK_DURATION = _declare(
    "django_q_task_duration_seconds", "histogram", ("func",),
    "Task execution time in the worker", PER_POD, TASK_BUCKETS)
TASK_QUEUE_WAIT = _declare(
    "django_q_task_queue_wait_seconds", "histogram", ("func",),
    "Time from enqueue to execution start", PER_POD, TASK_BUCKETS)
LAST_TASK_FINISHED = _declare(
    "django_q_cluster_last_task_finished_timestamp_seconds", "gauge", CLUSTER,
    "Unix time the cluster last saved a finished task's result", PER_POD)
FUNC_CAP = LabelCap("django_q_task", "func", "DJANGO_Q_EXPORTER_FUNC_CAP", 200)

# --- schedules -------------------------------------------------------------------------
SCHEDULE_DELAY = _declare(
    "django_q_schedule_next_run_delay_seconds", "gauge", ("schedule",),
    "Seconds an active schedule is past its next_run (0 if not due)", CLUSTER_WIDE)

# --- unique tasks: state from the shared cache -----------------------------------------
UNIQUE_RUNNING = _declare(
    "django_q_unique_task_running", "gauge", ("task",),
    "1 while a run of the task is in progress (its holder record is present)", CLUSTER_WIDE)
UNIQUE_HEARTBEAT_AGE = _declare(
    "django_q_unique_task_heartbeat_age_seconds", "gauge", ("task",),
    "Seconds since the running holder's last heartbeat, on the clock the record was "
    "written with (Redis TIME); only while running", CLUSTER_WIDE)
UNIQUE_HEARTBEAT_TIMEOUT = _declare(
    "django_q_unique_task_heartbeat_timeout_seconds", "gauge", ("task",),
    "Heartbeat staleness limit (the lock expiry), so one alert rule fits all tasks",
    CLUSTER_WIDE)
UNIQUE_LAST_SUCCESS = _declare(
    "django_q_unique_task_last_success_timestamp_seconds", "gauge", ("task",),
    "End of the last run that completed without error, Unix time", CLUSTER_WIDE)
UNIQUE_LAST_DURATION = _declare(
    "django_q_unique_task_last_duration_seconds", "gauge", ("task",),
    "Length of the last completed run", CLUSTER_WIDE)

# --- unique tasks: lock outcomes counted by this pod's workers -------------------------
LOCK_OUTCOMES: dict[str, FamilySpec] = {
    outcome: _declare(f"django_q_unique_task_lock_{outcome}", "counter", ("task",), help_,
                      PER_POD)
    for outcome, help_ in (
        ("acquired", "Unique-task runs that took the lock"),
        ("contended", "Unique-task runs skipped because another holder had the lock"),
        ("lost", "Unique-task runs that lost the lock mid-run (expired or taken over)"),
        ("errors", "Unique-task lock backend errors"),
    )
}
UNIQUE_TASK_CAP = LabelCap("django_q_unique_task", "task",
                           "DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP", 500)

# --- the exporter itself ---------------------------------------------------------------
BUILD_INFO = _declare(
    "django_q_exporter_build_info", "gauge", ("version", "django_q_version", "python_version"),
    "Exporter build information (value always 1)", PER_POD)
COLLECTOR_SUCCESS = _declare(
    "django_q_exporter_collector_success", "gauge", ("collector",),
    "1 if the collector's last run succeeded", PER_POD)
COLLECTOR_DURATION = _declare(
    "django_q_exporter_collector_duration_seconds", "gauge", ("collector",),
    "Time the collector took in this scrape", PER_POD)


#: Families about the exporter process itself: every exporter publishes them, whatever
#: its scope (its build, its collectors, the Stats it could not use).
EXPORTER_SELF = frozenset({BUILD_INFO.name, COLLECTOR_SUCCESS.name, COLLECTOR_DURATION.name,
                           STATS_REJECTED.name})

#: ``--scope`` values: which families an exporter publishes.
SCOPE_ALL, SCOPE_LOCAL, SCOPE_CLUSTER = "all", "local", "cluster"
SCOPES = (SCOPE_ALL, SCOPE_LOCAL, SCOPE_CLUSTER)


def published(scope: str) -> frozenset[str]:
    """Names of the families an exporter running with ``--scope scope`` publishes."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    wanted = {SCOPE_ALL: (PER_POD, CLUSTER_WIDE), SCOPE_LOCAL: (PER_POD,),
              SCOPE_CLUSTER: (CLUSTER_WIDE,)}[scope]
    return frozenset(name for name, spec in FAMILIES.items()
                     if spec.scope in wanted or name in EXPORTER_SELF)


def by_exposed_name() -> dict[str, FamilySpec]:
    """The families keyed by the name PromQL uses (counters with _total)."""
    return {spec.exposed: spec for spec in FAMILIES.values()}


def markdown() -> str:
    """The README's metric reference table."""
    rows = ["| metric | type | labels | scope | meaning |", "|---|---|---|---|---|"]
    for spec in FAMILIES.values():
        scope = "per pod" if spec.scope == PER_POD else "cluster-wide"
        meaning = spec.help.replace("|", "\\|")
        rows.append(f"| `{spec.exposed}` | {spec.type} | {', '.join(spec.labels)} | {scope} "
                    f"| {meaning} |")
    return "\n".join(rows) + "\n"


#: The README's generated table sits between these two lines.
BEGIN, END = "<!-- metrics:begin -->", "<!-- metrics:end -->"


def table_in(text: str) -> str:
    """The table between the markers of ``text`` (ValueError without them)."""
    head, sep, rest = text.partition(BEGIN + "\n")
    table, sep2, _ = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"no {BEGIN} ... {END} section")
    return table


def splice(text: str) -> str:
    """``text`` with the table between the markers replaced by the current one."""
    old = table_in(text)
    start = text.index(BEGIN + "\n") + len(BEGIN) + 1
    return text[:start] + markdown() + text[start + len(old):]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m djq_contract.catalogue",
                                     description="Print the metric catalogue.")
    parser.add_argument("--markdown", action="store_true",
                        help="print the README's metric reference table (the default)")
    parser.add_argument("--readme", metavar="PATH",
                        help=f"rewrite the table between {BEGIN} and {END} in PATH")
    args = parser.parse_args(argv)
    if args.readme:
        with open(args.readme, encoding="utf-8") as fh:
            text = fh.read()
        try:
            new = splice(text)
        except ValueError as exc:
            parser.error(f"{args.readme}: {exc}")
        with open(args.readme, "w", encoding="utf-8") as fh:
            fh.write(new)
        return 0
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
