"""Decode django-q2's signed pickles (Stats and task packages).

Uses django-q2's own signing module with the configured key and salt, so a
SECRET_KEY or cluster name that differs from the workers' shows up as a
``BadSignature`` count instead of silently empty results.
"""

from __future__ import annotations

import datetime as dt
import io
import pickle
from functools import lru_cache

from django.utils import functional
from django_q import core_signing

from exporter.model import ClusterStat
from exporter.statusmap import normalise

BadSignature = core_signing.BadSignature


@lru_cache(maxsize=64)
def _proxy_class(func, resultclasses: tuple):
    return functional.lazy(func, *resultclasses)


def _lazy_proxy_unpickle(func, args, kwargs, *resultclasses):
    """What Django's own ``_lazy_proxy_unpickle`` returns (a lazy proxy, e.g. the
    Stat's translated status), but the proxy class is built once per (func, result
    classes) instead of once per object: rebuilding it was ~60 µs a Stat, more than
    half of decoding one."""
    return _proxy_class(func, resultclasses)(*args, **kwargs)


_CLASSES: dict[tuple[str, str], object] = {
    ("django.utils.functional", "_lazy_proxy_unpickle"): _lazy_proxy_unpickle}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        """Globals looked up once per process, not once per Stat (8 per Stat)."""
        found = _CLASSES.get((module, name))
        if found is None:
            found = _CLASSES[(module, name)] = super().find_class(module, name)
        return found


class _PickleSerializer:
    """django_q.signing.PickleSerializer's loads, through ``_Unpickler``."""

    @staticmethod
    def loads(data: bytes):
        return _Unpickler(io.BytesIO(data)).load()


def loads(payload: bytes | str, secret_key: str, salt: str):
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    return core_signing.loads(payload, key=secret_key, salt=salt, serializer=_PickleSerializer)


def epoch(value) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def to_cluster_stat(stat, cluster_name: str) -> ClusterStat:
    """Translate a django_q.status.Stat object into a ClusterStat."""
    workers = tuple(int(p) for p in (getattr(stat, "workers", None) or ()))
    return ClusterStat(
        cluster_name=cluster_name,
        host=str(getattr(stat, "host", "") or "unknown"),
        cluster_id=str(getattr(stat, "cluster_id", "")),
        status=normalise(getattr(stat, "status", "")),
        workers=workers,
        pid=int(getattr(stat, "pid", 0) or 0),
        sentinel_pid=int(getattr(stat, "sentinel", 0) or 0),
        monitor_pid=int(getattr(stat, "monitor", 0) or 0),
        pusher_pid=int(getattr(stat, "pusher", 0) or 0),
        reincarnations=int(getattr(stat, "reincarnations", 0) or 0),
        started_at=epoch(getattr(stat, "tob", None)),
        timestamp=epoch(getattr(stat, "timestamp", None)) or 0.0,
        task_q_size=int(getattr(stat, "task_q_size", 0) or 0),
        done_q_size=int(getattr(stat, "done_q_size", 0) or 0),
    )


def task_enqueued_at(payload, secret_key: str, salt: str) -> float | None:
    """Enqueue time of a task package (``task["started"]`` is set by async_task)."""
    task = loads(payload, secret_key, salt)
    if isinstance(task, dict):
        return epoch(task.get("started"))
    return None
