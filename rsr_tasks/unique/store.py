"""Where unique-task locks, heartbeat records and the task registry are written.

Two backends behind one interface (``UniqueStore``), picked by ``build()``
from the Django cache that django-q uses:

* ``RedisUniqueStore`` (the cache is Redis): a token-owned key set with
  ``SET NX PX``; extend (compare-and-pexpire) and release
  (compare-and-delete) are Lua scripts, as is every record update, so "only
  while the token is still ours" is atomic, and every time comes from Redis
  ``TIME``: expiry and ages never depend on the hosts' wall clocks.
* ``CacheUniqueStore`` (any other shared Django cache, e.g. the database
  cache of the embedded default): weaker, see its docstring.

Key layout and record fields: ``rsr_tasks.unique.contract``. The exporter
reads the same keys with its own client (``exporter.sources.unique``);
``read_all()`` here reuses that reader for operators and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rsr_tasks.unique import contract


@dataclass(frozen=True)
class Holder:
    """A run that holds (or held) a lock. Times are Unix seconds on the store's clock."""

    host: str
    pid: int
    started: float | None
    beat: float | None = None


@dataclass(frozen=True)
class Acquire:
    """Outcome of one acquire attempt.

    ``ok``: the lock is ours. ``other``: when not ok, the current holder (as its
    record says); when ok, a previous holder whose run never finished (killed,
    crashed, or lost its lock) and whose record this run replaced. ``now``: the
    store's clock at the attempt."""

    ok: bool
    other: Holder | None
    now: float


class UniqueStore(Protocol):
    def register(self, name: str, expiry: float) -> None: ...
    def acquire(self, name: str, token: str, expiry: float, host: str,
                pid: int) -> Acquire: ...
    def extend(self, name: str, token: str, expiry: float) -> bool: ...
    def finish(self, name: str, token: str, outcome: str) -> bool: ...
    def read_all(self): ...


def num(value) -> float | None:
    """A record field as a float, or None when absent or malformed."""
    if value in (None, "", b""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build(cache_alias: str, cluster_name: str, timeout: float) -> UniqueStore:
    """The store for a Django cache alias: Lua scripts when the cache is Redis.

    ``timeout`` bounds every Redis call (connect and read)."""
    from rsr_tasks.unique.redisconn import client_for_cache

    prefix = contract.prefix(cluster_name)
    client = client_for_cache(cache_alias, timeout)
    if client is not None:
        from rsr_tasks.unique.redis_store import RedisUniqueStore

        return RedisUniqueStore(client, prefix)
    from django.core.cache import caches

    from rsr_tasks.unique.cache_store import CacheUniqueStore

    return CacheUniqueStore(caches[cache_alias], prefix)
