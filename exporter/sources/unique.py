"""Read unique-task state (the registry and every task's heartbeat record); read-only.

The keys and records are those rsr_tasks writes (``djq_contract.keys`` and
``djq_contract.records``, the one place both sides take them from); this
module reads them itself and never writes. Round trips are bounded whatever the number of tasks:

* Redis cache: one pipeline (``TIME`` + ``HGETALL`` of the registry) and one
  ``MGET`` of all records. Ages are computed against Redis ``TIME``, the
  clock the records were written with, so neither the exporter's nor the
  workers' wall clock matters (hosts may disagree by minutes).
* Other Django caches: one ``get`` (registry) and one ``get_many``; records
  carry the writing host's clock and ages use this host's clock, so there
  the hosts' clocks must agree.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from djq_contract import keys
from djq_contract.forgetting import last_seen
from djq_contract.records import Holder, num
from exporter.djangoenv import QSetup
from exporter.memo import LastRead


@dataclass(frozen=True)
class TaskState:
    """One unique task as its record says. Times are Unix seconds."""

    name: str
    timeout: float  # the lock expiry = heartbeat staleness limit
    holder: Holder | None  # a run in progress (its holder fields are present)
    last_end: float | None
    last_duration: float | None
    last_outcome: str | None
    last_success: float | None
    seen: float | None = None  # last registration or run (djq_contract.forgetting)

    @property
    def running(self) -> bool:
        return self.holder is not None


@dataclass(frozen=True)
class Snapshot:
    now: float  # the clock the ages are measured on (Redis TIME, or this host's)
    clock: str  # "redis" or "local"
    tasks: tuple[TaskState, ...]
    round_trips: int


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse(name: str, meta: dict, record: dict) -> TaskState:
    """A TaskState from a registry entry and a record (either may be empty or partial)."""
    return TaskState(
        name=name, timeout=num(record.get("expiry")) or num(meta.get("expiry")) or 0.0,
        holder=Holder.of(record), last_end=num(record.get("last_end")),
        last_duration=num(record.get("last_duration")),
        last_outcome=record.get("last_outcome") or None,
        last_success=num(record.get("last_success")), seen=last_seen(meta, record))


def _json(raw) -> dict:
    """A Redis value as a dict; anything unreadable reads as no record."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_raw(key: tuple[str, bytes | None, bytes | None]) -> TaskState:
    name, meta, record = key
    return parse(name, _json(meta), _json(record))


def read_redis(client, prefix: str, memo: LastRead[TaskState] | None = None) -> Snapshot:
    """``memo`` keeps the states parsed by the previous read: an unchanged registry entry
    and record (the same bytes) are not decoded again. Without one, every state is
    parsed (a throwaway cache)."""
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.hgetall(keys.registry_key(prefix))
    (secs, micros), registry = pipe.execute()
    metas = sorted((_text(k), v) for k, v in registry.items())
    raws = client.mget([keys.state_key(prefix, n) for n, _ in metas]) if metas else []
    memo = memo if memo is not None else LastRead()
    tasks = tuple(memo.get((n, meta, raw), _parse_raw)
                  for (n, meta), raw in zip(metas, raws, strict=True))
    memo.rotate()
    return Snapshot(secs + micros / 1e6, "redis", tasks, 2 if metas else 1)


def read_cache(cache, prefix: str, clock=time.time) -> Snapshot:
    registry = cache.get(keys.registry_key(prefix)) or {}
    names = sorted(registry)
    states = {n: keys.state_key(prefix, n) for n in names}
    raws = cache.get_many(list(states.values())) if names else {}
    tasks = tuple(parse(n, registry[n] or {}, raws.get(states[n]) or {}) for n in names)
    return Snapshot(clock(), "local", tasks, 2 if names else 1)


class UniqueTaskSource:
    """Connects on first read, so a bad cache setting fails this collector (and is
    reported) instead of the exporter's start. Every Redis call is bounded by
    ``timeout``; database-cache calls by the exporter's database timeouts."""

    def __init__(self, setup: QSetup, timeout: float) -> None:
        self.setup = setup
        self.timeout = timeout
        self._read = None

    def _reader(self):
        """The cache the workers write to, chosen by the rule they follow
        (``djq_contract.keys.unique_location``), for the watched cluster name."""
        from django.conf import settings
        from django.core.cache import caches

        from djq_contract.redisconn import client_for_cache

        where = keys.unique_location(getattr(settings, "Q_CLUSTER", {}) or {},
                                     getattr(settings, "RSR_UNIQUE_TASKS", {}) or {},
                                     self.setup.cluster_name)
        alias, prefix = where.cache_alias, where.prefix
        client = client_for_cache(alias, self.timeout)
        if client is not None:
            memo: LastRead[TaskState] = LastRead()
            return lambda: read_redis(client, prefix, memo)
        from exporter.sources.dbconn import read_db

        cache = caches[alias]
        # A database cache: dead connections dropped, one reconnect (see dbconn).
        return lambda: read_db(lambda: read_cache(cache, prefix))

    def read(self) -> Snapshot:
        if self._read is None:
            self._read = self._reader()
        return self._read()
