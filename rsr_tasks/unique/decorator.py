"""The ``unique_task`` decorator and its result markers."""

from __future__ import annotations

import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rsr_tasks.heartbeat import CacheHeartbeat
from rsr_tasks.unique import counters

log = logging.getLogger("rsr_tasks.unique")

#: name -> expiry of every decorated task in this process.
_REGISTRY: dict[str, float] = {}


@dataclass(frozen=True)
class Skipped:
    """Result of a run that did not take the lock. Falsy, so ``if result:`` reads
    "did work"; its repr names the task and the holder in django-q's admin."""

    task: str
    reason: str  # "contended" or "error"
    detail: str = ""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Skipped(task={self.task!r}, reason={self.reason!r}, detail={self.detail!r})"


@dataclass(frozen=True)
class LockLost:
    """Result of a run that finished its work without owning the lock to the end."""

    task: str
    reason: str
    result: Any = None

    def __repr__(self) -> str:
        return f"LockLost(task={self.task!r}, reason={self.reason!r}, result={self.result!r})"


def registered() -> dict[str, float]:
    """Unique task names decorated in this process, with their lock expiry."""
    return dict(_REGISTRY)


@functools.lru_cache(maxsize=1)
def _store():
    from django.conf import settings

    from rsr_tasks.unique import store

    conf = getattr(settings, "Q_CLUSTER", {}) or {}
    options = getattr(settings, "RSR_UNIQUE_TASKS", {}) or {}
    return store.build(options.get("cache", conf.get("cache", "default")),
                       conf.get("name", "default"), float(options.get("timeout", 2.0)))


def register(name: str, expiry: float) -> None:
    """Write the name to the shared registry; failures are logged and retried at run time."""
    try:
        _store().register(name, expiry)
        counters.seed(name)
    except Exception as exc:
        log.warning("could not register unique task %s: %s", name, exc)


def unique_task(name: str, *, expiry: float = 300.0, beat: float | None = None,
                on_skip: Callable[[Skipped], Any] | None = None,
                register_on_import: bool = True) -> Callable:
    """Run the decorated function at most once at a time across all workers.

    ``expiry``: lock lifetime in seconds without a heartbeat (a dead holder frees
    the lock within this time; also the heartbeat staleness limit). ``beat``:
    seconds between heartbeats (default expiry / 3). ``on_skip``: called with the
    ``Skipped`` marker; its return value becomes the skipped run's result
    (default: the marker itself).
    """
    if not name or expiry <= 0:
        raise ValueError("unique_task needs a name and a positive expiry")

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
            return _run(name, expiry, beat, on_skip, func, args, kwargs)

        wrapper.unique_task_name = name  # type: ignore[attr-defined]
        wrapper.unique_task_expiry = expiry  # type: ignore[attr-defined]
        return wrapper

    return decorate


_registered_here: set[str] = set()


def _skip(marker: Skipped, on_skip):
    return on_skip(marker) if on_skip is not None else marker


def _run(name, expiry, beat, on_skip, func, args, kwargs):
    store = _store()
    if name not in _registered_here:
        register(name, expiry)
        _registered_here.add(name)
    token = uuid.uuid4().hex
    try:
        acquired, holder = store.acquire(name, token, expiry, socket.gethostname(), os.getpid())
    except Exception as exc:
        counters.count(name, "errors")
        log.error("unique task %s skipped: lock backend error: %s: %s", name,
                  type(exc).__name__, exc)
        return _skip(Skipped(name, "error", f"{type(exc).__name__}: {exc}"), on_skip)
    if not acquired:
        counters.count(name, "contended")
        detail = f"held by {holder.host}:{holder.pid}" if holder and holder.host else "held"
        log.info("unique task %s skipped: %s", name, detail)
        return _skip(Skipped(name, "contended", detail), on_skip)
    counters.count(name, "acquired")
    outcome = "failure"
    heartbeat = CacheHeartbeat(store, name, token, expiry, beat)
    try:
        with heartbeat:
            result = func(*args, **kwargs)
            outcome = "success"
    finally:
        try:
            store.finish(name, token, outcome)
        except Exception as exc:
            counters.count(name, "errors")
            log.error("unique task %s: could not release the lock: %s: %s", name,
                      type(exc).__name__, exc)
        if heartbeat.lost:
            counters.count(name, "lost")
            log.warning("unique task %s lost its lock mid-run: %s", name, heartbeat.lost_reason)
    if heartbeat.lost:
        return LockLost(name, heartbeat.lost_reason or "lost", result)
    return result
