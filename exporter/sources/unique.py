"""Read unique-task state (the registry and every task's heartbeat record); read-only.

The keys are those rsr_tasks writes (layout in ``rsr_tasks.unique.contract``,
the one place both sides take it from); this module reads them itself and
never writes. Round trips are bounded whatever the number of tasks:

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

from exporter.djangoenv import QSetup
from exporter.memo import LastRead


@dataclass(frozen=True)
class Holder:
    """The run in progress, as its record says. Times are Unix seconds."""

    host: str
    pid: int
    started: float
    last_beat: float | None


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

    @property
    def running(self) -> bool:
        return self.holder is not None


@dataclass(frozen=True)
class Snapshot:
    now: float  # the clock the ages are measured on (Redis TIME, or this host's)
    clock: str  # "redis" or "local"
    tasks: tuple[TaskState, ...]
    round_trips: int


def _num(value) -> float | None:
    if value in (None, "", b""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse(name: str, meta: dict, record: dict) -> TaskState:
    """A TaskState from a registry entry and a record (either may be empty or partial)."""
    holder = None
    started = _num(record.get("started"))
    if record.get("token") and started is not None:
        holder = Holder(str(record.get("host", "")), int(_num(record.get("pid")) or 0), started,
                        _num(record.get("beat")))
    return TaskState(
        name=name, timeout=_num(record.get("expiry")) or _num(meta.get("expiry")) or 0.0,
        holder=holder, last_end=_num(record.get("last_end")),
        last_duration=_num(record.get("last_duration")),
        last_outcome=record.get("last_outcome") or None,
        last_success=_num(record.get("last_success")))


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
    from rsr_tasks.unique import contract

    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.hgetall(contract.registry_key(prefix))
    (secs, micros), registry = pipe.execute()
    metas = sorted((_text(k), v) for k, v in registry.items())
    raws = client.mget([contract.state_key(prefix, n) for n, _ in metas]) if metas else []
    memo = memo if memo is not None else LastRead()
    tasks = tuple(memo.get((n, meta, raw), _parse_raw)
                  for (n, meta), raw in zip(metas, raws, strict=True))
    memo.rotate()
    return Snapshot(secs + micros / 1e6, "redis", tasks, 2 if metas else 1)


def read_cache(cache, prefix: str, clock=time.time) -> Snapshot:
    from rsr_tasks.unique import contract

    registry = cache.get(contract.registry_key(prefix)) or {}
    names = sorted(registry)
    keys = {n: contract.state_key(prefix, n) for n in names}
    raws = cache.get_many(list(keys.values())) if names else {}
    tasks = tuple(parse(n, registry[n] or {}, raws.get(keys[n]) or {}) for n in names)
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
        """The cache the workers write to: ``RSR_UNIQUE_TASKS["cache"]`` if set, else
        django-q's cache (as rsr_tasks.unique.decorator picks it)."""
        from django.conf import settings
        from django.core.cache import caches

        from rsr_tasks.unique import contract
        from rsr_tasks.unique.redisconn import client_for_cache

        options = getattr(settings, "RSR_UNIQUE_TASKS", {}) or {}
        alias = options.get("cache", self.setup.cache_alias)
        prefix = contract.prefix(self.setup.cluster_name)
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
