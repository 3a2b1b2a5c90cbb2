"""The ``unique_task`` decorator, its result markers and ``lock_held()``."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from djq_contract.forgetting import forget_after
from djq_contract.keys import unique_location
from rsr_tasks.heartbeat import CacheHeartbeat, check_timing
from rsr_tasks.unique import counters

log = logging.getLogger("rsr_tasks.unique")

#: name -> expiry of every decorated task in this process.
_REGISTRY: dict[str, float] = {}
#: Names this process has written to the shared registry.
_registered_here: set[str] = set()
#: Whether this process has pruned the shared registry (once per process is enough:
#: workers are respawned often, and the exporter hides stale tasks in between).
_pruned_here = False
_local = threading.local()  # .heartbeat: the CacheHeartbeat of the run on this thread

DEFAULT_TIMEOUT = 2.0  # seconds, every lock backend call


@dataclass(frozen=True)
class Skipped:
    """Result of a run that did not take the lock (it did none of its work).

    Falsy, so ``if result:`` reads "did work"; django-q stores it as the task's
    result, where its repr names the task and why (``reason`` "contended": the
    holder is in ``detail``; "error": the lock backend failed)."""

    task: str
    reason: str
    detail: str = ""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Skipped(task={self.task!r}, reason={self.reason!r}, detail={self.detail!r})"


@dataclass(frozen=True)
class LockLost:
    """Result of a run that did its work but did not own the lock to the end
    (``result`` is the function's return value)."""

    task: str
    reason: str
    result: Any = None

    def __repr__(self) -> str:
        return f"LockLost(task={self.task!r}, reason={self.reason!r}, result={self.result!r})"


def registered() -> dict[str, float]:
    """Unique task names decorated in this process, with their lock expiry."""
    return dict(_REGISTRY)


def lock_held() -> bool:
    """Inside a unique-task run: True while its lock is still ours (see
    ``CacheHeartbeat.held``). Long runs can check it between steps and stop
    early once another holder may have taken over. Outside a run: False."""
    heartbeat = getattr(_local, "heartbeat", None)
    return heartbeat is not None and heartbeat.held


def _settings() -> dict:
    from django.conf import settings

    return getattr(settings, "RSR_UNIQUE_TASKS", {}) or {}


def _options() -> tuple[str, str, float]:
    """(cache alias, key prefix, backend timeout) from settings.

    ``RSR_UNIQUE_TASKS = {"cache": alias, "timeout": s}`` (default: django-q's
    cache and 2 s; ``$RSR_UNIQUE_TASKS_TIMEOUT`` overrides the timeout). Alias and
    prefix follow the rule the exporter reads by (``djq_contract.keys``)."""
    from django.conf import settings

    options = _settings()
    where = unique_location(getattr(settings, "Q_CLUSTER", {}) or {}, options)
    timeout = os.environ.get("RSR_UNIQUE_TASKS_TIMEOUT") or options.get("timeout",
                                                                        DEFAULT_TIMEOUT)
    return where.cache_alias, where.prefix, float(timeout)


@functools.lru_cache(maxsize=1)
def _store():
    from rsr_tasks.unique import store

    return store.build(*_options())


def register(name: str, expiry: float) -> None:
    """Write the name to the shared registry and make its counters exist at 0; the
    first registration of a process also forgets tasks unseen for
    ``RSR_UNIQUE_TASKS["forget_after"]`` (``djq_contract.forgetting``). Failures are
    logged; the first run registers again."""
    global _pruned_here
    try:
        _store().register(name, expiry)
        _registered_here.add(name)
        if not _pruned_here:
            _pruned_here = True
            gone = _store().forget_stale(forget_after(_settings()))
            if gone:
                log.info("unique tasks forgotten (not seen for %g s): %s",
                         forget_after(_settings()), ", ".join(sorted(gone)))
    except Exception as exc:
        log.warning("could not register unique task %s: %s: %s", name, type(exc).__name__, exc)
    counters.seed(name)


def unique_task(name: str, *, expiry: float = 300.0, beat: float | None = None,
                on_skip: Callable[[Skipped], Any] | None = None,
                register_on_import: bool = True) -> Callable:
    """Run the decorated function at most once at a time across all workers.

    ``expiry``: lock lifetime in seconds without a heartbeat (a dead holder frees
    the lock within this time; also the heartbeat staleness limit the exporter
    publishes). ``beat``: seconds between heartbeats (default expiry / 3).
    ``on_skip``: called with the ``Skipped`` marker; its return value becomes
    the skipped run's result (default: the marker itself).

    Returns the function's result; ``Skipped`` when another holder had the lock
    or the lock backend failed (the function did not run); ``LockLost(result)``
    when the run lost its lock mid-way. Exceptions from the function propagate.
    """
    if not name or expiry <= 0:
        raise ValueError("unique_task needs a name and a positive expiry")
    beat_every = check_timing(float(expiry), beat)

    def decorate(func: Callable) -> Callable:
        _REGISTRY[name] = expiry
        if register_on_import:
            try:
                from django.apps import apps

                if apps.ready:
                    register(name, expiry)
            except Exception as exc:  # settings not configured at import: register at run
                log.debug("deferred registration of %s: %s", name, exc)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return _run(name, float(expiry), beat_every, on_skip, func, args, kwargs)

        wrapper.unique_task_name = name  # type: ignore[attr-defined]
        wrapper.unique_task_expiry = expiry  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _skip(marker: Skipped, on_skip):
    return on_skip(marker) if on_skip is not None else marker


def _run(name, expiry, beat, on_skip, func, args, kwargs):
    if name not in _registered_here:
        register(name, expiry)
    token = uuid.uuid4().hex
    sent = time.monotonic()
    try:
        store = _store()
        got = store.acquire(name, token, expiry, socket.gethostname(), os.getpid())
    except Exception as exc:
        counters.count(name, "errors")
        log.error("unique task %s skipped: lock backend error: %s: %s", name,
                  type(exc).__name__, exc)
        return _skip(Skipped(name, "error", f"{type(exc).__name__}: {exc}"), on_skip)
    if not got.ok:
        counters.count(name, "contended")
        other = got.other
        detail = f"held by {other.host}:{other.pid}" if other and other.host else "held"
        log.info("unique task %s skipped: %s", name, detail)
        return _skip(Skipped(name, "contended", detail), on_skip)
    counters.count(name, "acquired")
    if got.other is not None:
        prev = got.other
        since = f", last beat {got.now - prev.beat:.1f} s ago" if prev.beat else ""
        log.warning("unique task %s: took over from %s:%s, whose run never finished "
                    "(killed, crashed or lost its lock%s)", name, prev.host, prev.pid, since)
    outcome = "failure"
    heartbeat = CacheHeartbeat(store, name, token, expiry, beat, acquired_at=sent,
                               on_error=lambda exc: counters.count(name, "errors"))
    outer = getattr(_local, "heartbeat", None)
    _local.heartbeat = heartbeat
    try:
        with heartbeat:
            result = func(*args, **kwargs)
            outcome = "success"
    finally:
        _local.heartbeat = outer
        try:
            store.finish(name, token, outcome)
        except Exception as exc:
            counters.count(name, "errors")
            log.error("unique task %s: could not release the lock (it expires by itself "
                      "within %g s): %s: %s", name, expiry, type(exc).__name__, exc)
        if heartbeat.lost:
            counters.count(name, "lost")
            log.warning("unique task %s lost its lock mid-run: %s", name, heartbeat.lost_reason)
    if heartbeat.lost:
        return LockLost(name, heartbeat.lost_reason or "lost", result)
    return result
