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

Key layout and record fields: ``djq_contract.keys`` and
``djq_contract.records``; the exporter reads the same keys with its own client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from djq_contract.records import Holder


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
    def forget_stale(self, period: float) -> list[str]: ...
    def acquire(self, name: str, token: str, expiry: float, host: str,
                pid: int) -> Acquire: ...
    def extend(self, name: str, token: str, expiry: float) -> bool: ...
    def finish(self, name: str, token: str, outcome: str) -> bool: ...


def build(cache_alias: str, prefix: str, timeout: float) -> UniqueStore:
    """The store for a Django cache alias and key prefix (``djq_contract.keys``): Lua
    scripts when the cache is Redis. ``timeout`` bounds every Redis call."""
    from djq_contract.redisconn import client_for_cache

    client = client_for_cache(cache_alias, timeout)
    if client is not None:
        from rsr_tasks.unique.redis_store import RedisUniqueStore

        return RedisUniqueStore(client, prefix)
    from django.core.cache import caches

    from rsr_tasks.unique.cache_store import CacheUniqueStore

    return CacheUniqueStore(caches[cache_alias], prefix)
