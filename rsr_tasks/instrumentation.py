"""django-q2 signal receivers that record task executions in the per-pod store.

Where each number is recorded, and why:

* ``pre_execute`` (worker process, just before the call): the start instant
  (monotonic and wall clock) is stashed in the task dict itself (no process
  state needed); nothing is written yet.
* ``post_execute_in_worker`` (same worker, after the call, also just before a
  timed-out worker is destroyed): execution duration on the monotonic clock
  and queue wait = start - ``task["started"]`` (django-q's *enqueue* time,
  set by async_task), both histograms in one transaction.
* ``post_execute`` (the single monitor process, after the result is saved):
  ``tasks_total`` / ``tasks_failed_total`` from the final result (a timeout
  is a failure there) and the last-finished time of this cluster. Counting
  where results are saved makes the counts agree with django-q's own
  results, and lets a hung monitor show up as "no task finished" (the
  stuck-cluster readiness check), which worker-side counting would hide.

Why the counts are exact across recycling and timeouts: a worker recycled
after ``recycle`` tasks leaves its loop only after ``post_execute_in_worker``
returned and the result was queued, and a timed-out task is turned into a
failed result *inside* the worker (``TimeoutException``) before the guard
destroys the process, so the monitor receives every one of them exactly
once, with ``success`` False for a timeout. The monitor is never recycled
(if it dies, results still queued die with it, and are not counted, like
django-q's own results). Counting in the worker would be as exact for
recycling, but a hung monitor would go on counting "finished" tasks whose
results are never saved.

A worker killed outright (OOM killer, or the guard's hard kill 3 s after a
timeout the task did not honour, e.g. blocked in C code) sends nothing:
that task is missing from all families, as it is from django-q's results.
While the monitor lags, the histograms' ``_count`` runs ahead of
``tasks_total``. A task the ORM broker hands out again after its lease
expired runs (and is counted) again; its queue wait still starts at the
first enqueue.

Every write is one SQLite transaction in the pod store, committed before
the process can be recycled, so no count is lost when workers come and go.
Recording never breaks a task: every receiver catches everything and logs
the first failure of each kind once per process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from functools import lru_cache

from exporter.podstore import PodStore, Update, histogram_updates, labels_of

log = logging.getLogger("rsr_tasks.instrumentation")

DEFAULT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                   300.0, 600.0, 1800.0, 3600.0)
DEFAULT_FUNC_CAP = 200
_T0 = "_django_q_exporter_t0"

TASKS = "django_q_tasks"
FAILED = "django_q_tasks_failed"
DURATION = "django_q_task_duration_seconds"
WAIT = "django_q_task_queue_wait_seconds"
LAST_FINISHED = "django_q_cluster_last_task_finished_timestamp_seconds"


def _setting(name: str, default):
    """``DJANGO_Q_EXPORTER_<name>`` from the environment, else the Django setting."""
    env = os.environ.get(f"DJANGO_Q_EXPORTER_{name}")
    if env:
        return env
    from django.conf import settings

    return getattr(settings, f"DJANGO_Q_EXPORTER_{name}", default)


def buckets() -> tuple[float, ...]:
    raw = _setting("BUCKETS", DEFAULT_BUCKETS)
    if isinstance(raw, str):
        raw = [float(x) for x in raw.split(",") if x.strip()]
    values = tuple(sorted(float(x) for x in raw))
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"DJANGO_Q_EXPORTER_BUCKETS must be positive numbers, got {raw!r}")
    return values


@lru_cache(maxsize=1)
def _recorder() -> _Recorder:
    return _Recorder(PodStore(), buckets(), int(_setting("FUNC_CAP", DEFAULT_FUNC_CAP)))


class _Recorder:
    def __init__(self, store: PodStore, buckets: tuple[float, ...], cap: int) -> None:
        self.store = store
        self.buckets = buckets
        self.cap = cap
        store.declare(TASKS, "counter", "Tasks finished (success or failure), by function")
        store.declare(FAILED, "counter", "Tasks that failed (including timeouts), by function")
        store.declare(DURATION, "histogram", "Task execution time in the worker", buckets)
        store.declare(WAIT, "histogram", "Time from enqueue to execution start", buckets)
        store.declare(LAST_FINISHED, "gauge",
                      "Unix time the cluster last saved a finished task's result")

    def func(self, task: dict) -> str:
        return self.store.admit("django_q_task", "func", func_name(task.get("func")), self.cap)

    def started(self, task: dict) -> None:
        """Only stash the start: both histograms are written in one transaction later."""
        task[_T0] = (time.monotonic(), dt.datetime.now(dt.UTC))

    def executed(self, task: dict) -> None:
        mark = task.pop(_T0, None)  # not carried on to the monitor and the cached result
        if mark is None:
            return
        t0, started_at = mark
        labels = {"func": self.func(task)}
        updates = histogram_updates(DURATION, labels, time.monotonic() - t0, self.buckets)
        enqueued = task.get("started")
        if isinstance(enqueued, dt.datetime):
            if enqueued.tzinfo is None:  # USE_TZ = False: naive local time
                enqueued = enqueued.astimezone()
            wait = max(0.0, (started_at - enqueued).total_seconds())
            updates += histogram_updates(WAIT, labels, wait, self.buckets)
        self.store.apply(updates)

    def finished(self, task: dict) -> None:
        from django_q.conf import Conf

        func = self.func(task)
        failed = 0.0 if task.get("success") else 1.0
        self.store.apply([
            Update(TASKS, "_total", labels_of(func=func), 1.0),
            Update(FAILED, "_total", labels_of(func=func), failed),
            Update(LAST_FINISHED, "", labels_of(cluster_name=str(Conf.PREFIX),
                                                host=socket.gethostname()), time.time(), "max"),
        ])


def func_name(func) -> str:
    """Dotted path of a task function (string paths pass through)."""
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", None) or "unknown"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qualname}"


_failed_once: set[str] = set()


def _safely(what: str, task) -> None:
    try:
        getattr(_recorder(), what)(task)
    except Exception as exc:
        if what not in _failed_once:
            _failed_once.add(what)
            log.error("task metrics: %s not recorded: %s: %s", what, type(exc).__name__, exc)


def on_pre_execute(sender, func=None, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely("started", task)


def on_post_execute_in_worker(sender, func=None, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely("executed", task)


def on_post_execute(sender, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely("finished", task)


def connect() -> None:
    """Connect the receivers (idempotent: dispatch_uid).

    ``DJANGO_Q_EXPORTER_INSTRUMENT=0`` (or the Django setting) leaves them
    unconnected, e.g. to measure the instrumentation's overhead.
    """
    from django_q import signals

    if str(_setting("INSTRUMENT", "1")).lower() in ("0", "false", "no", "off"):
        return
    signals.pre_execute.connect(on_pre_execute, dispatch_uid="django_q_exporter.pre_execute")
    signals.post_execute_in_worker.connect(on_post_execute_in_worker,
                                           dispatch_uid="django_q_exporter.post_execute_in_worker")
    signals.post_execute.connect(on_post_execute, dispatch_uid="django_q_exporter.post_execute")
