"""django-q2 signal receivers that record task executions in the per-pod store.

Where each number is taken and where it is written, and why:

* ``pre_execute`` (worker process, just before the call): the start instant
  (monotonic and wall clock) is stashed in the task dict itself.
* ``post_execute_in_worker`` (same worker, after the call, also just before a
  timed-out worker is destroyed): execution duration on the monotonic clock
  and queue wait = start - ``task["started"]`` (django-q's *enqueue* time,
  set by async_task) are computed and carried on in the task dict (two
  floats) to the monitor. The worker writes nothing, so a task never pays
  for a transaction nor waits for SQLite's write lock, which the monitor
  held (1 µs a task instead of 40 µs, and +0.35 % instead of +1.8 % end to
  end on 10 ms tasks; see bench/overheads.py).
* ``post_execute`` (the single monitor process, after the result is saved):
  ``tasks_total`` / ``tasks_failed_total`` from the final result (a timeout
  is a failure there), both histograms and the last-finished time of this
  cluster, in one transaction. Counting where results are saved makes the
  counts agree with django-q's own results, and lets a hung monitor show up
  as "no task finished" (the stuck-cluster readiness check), which
  worker-side counting would hide; the histograms' ``_count`` always equals
  ``tasks_total``.

Why the counts are exact across recycling and timeouts: a worker recycled
after ``recycle`` tasks leaves its loop only after ``post_execute_in_worker``
returned and the result was queued, and a timed-out task is turned into a
failed result *inside* the worker (``TimeoutException``) before the guard
destroys the process, so the monitor receives every one of them exactly
once, with ``success`` False for a timeout and its measured times. The
monitor is never recycled (if it dies, results still queued die with it,
and are not counted, like django-q's own results).

A worker killed outright (OOM killer, or the guard's hard kill 3 s after a
timeout the task did not honour, e.g. blocked in C code) sends nothing:
that task is missing from all families, as it is from django-q's results.
A task the ORM broker hands out again after its lease expired runs (and is
counted) again; its queue wait still starts at the first enqueue. The two
floats also travel into a cached result (``cached=True``), which pickles
the whole task dict.

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

from djq_contract import catalogue
from djq_contract.podstore import PodStore, Update, histogram_updates, labels_of

log = logging.getLogger("rsr_tasks.instrumentation")

DEFAULT_BUCKETS = catalogue.TASK_BUCKETS
DEFAULT_FUNC_CAP = catalogue.FUNC_CAP.default
_T0 = "_django_q_exporter_t0"  # (monotonic, wall clock) at the start, worker only
_TIMING = "_django_q_exporter_timing"  # (duration, queue wait or None), worker -> monitor

TASKS = catalogue.TASKS.name
FAILED = catalogue.TASKS_FAILED.name
DURATION = catalogue.TASK_DURATION.name
WAIT = catalogue.TASK_QUEUE_WAIT.name
LAST_FINISHED = catalogue.LAST_TASK_FINISHED.name


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


_FAMILIES = (catalogue.TASKS, catalogue.TASKS_FAILED, catalogue.TASK_DURATION,
             catalogue.TASK_QUEUE_WAIT, catalogue.LAST_TASK_FINISHED)


class _Recorder:
    def __init__(self, store: PodStore, buckets: tuple[float, ...], cap: int) -> None:
        self.store = store
        self.buckets = buckets
        self.cap = cap
        for spec in _FAMILIES:
            store.declare(spec.name, spec.type, spec.help,
                          buckets if spec.type == "histogram" else None)

    def func(self, task: dict) -> str:
        return self.store.admit(catalogue.FUNC_CAP.key, catalogue.FUNC_CAP.label,
                                func_name(task.get("func")), self.cap)

    def finished(self, task: dict) -> None:
        """Everything about one task in one transaction, in the monitor."""
        from django_q.conf import Conf

        func = self.func(task)
        labels = {"func": func}
        failed = 0.0 if task.get("success") else 1.0
        updates = [
            Update(TASKS, "_total", labels_of(func=func), 1.0),
            Update(FAILED, "_total", labels_of(func=func), failed),
            Update(LAST_FINISHED, "", labels_of(cluster_name=str(Conf.PREFIX),
                                                host=socket.gethostname()), time.time(), "max"),
        ]
        timing = task.pop(_TIMING, None)
        if isinstance(timing, tuple) and len(timing) == 2:
            duration, wait = timing
            updates += histogram_updates(DURATION, labels, duration, self.buckets)
            if wait is not None:
                updates += histogram_updates(WAIT, labels, wait, self.buckets)
        self.store.apply(updates)


def started(task: dict) -> None:
    """Only stash the start (no I/O in the worker)."""
    task[_T0] = (time.monotonic(), time.time())


def executed(task: dict) -> None:
    """Duration and queue wait, carried on to the monitor in the task dict."""
    mark = task.pop(_T0, None)
    if mark is None:
        return
    t0, started_at = mark
    duration = time.monotonic() - t0
    wait = None
    enqueued = task.get("started")
    if isinstance(enqueued, dt.datetime):
        # naive (USE_TZ = False) is local time, which .timestamp() assumes
        wait = max(0.0, started_at - enqueued.timestamp())
    task[_TIMING] = (duration, wait)


def func_name(func) -> str:
    """Dotted path of a task function (string paths pass through)."""
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", None) or "unknown"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{qualname}"


_failed_once: set[str] = set()


def _safely(step, task) -> None:
    try:
        step(task)
    except Exception as exc:
        what = step.__name__
        if what not in _failed_once:
            _failed_once.add(what)
            log.error("task metrics: %s not recorded: %s: %s", what, type(exc).__name__, exc)


def finished(task: dict) -> None:
    _recorder().finished(task)


def on_pre_execute(sender, func=None, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely(started, task)


def on_post_execute_in_worker(sender, func=None, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely(executed, task)


def on_post_execute(sender, task=None, **kwargs) -> None:
    if isinstance(task, dict):
        _safely(finished, task)


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
