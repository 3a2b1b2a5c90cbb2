"""Where unique-task locks, heartbeat records and the task registry live.

Two backends with one interface:

* ``RedisUniqueStore`` (the Django cache is Redis): the lock is a token-owned
  key set with ``SET NX PX``; extend, release and the heartbeat record (one
  JSON string per task) are small Lua scripts, so "only if the token is
  still ours" is atomic. Every
  timestamp comes from Redis ``TIME``, so expiry and ages never depend on
  the wall clocks of the hosts (which may disagree).
* ``CacheUniqueStore`` (any other shared Django cache, e.g. the database
  cache of the embedded default): acquire is ``cache.add`` (atomic on the
  database and memcached backends), but extend and release are
  get-then-set/delete, so a holder whose lock expired can, in a window of
  one round trip, extend or delete a successor's lock. Timestamps come from
  the writing host's clock. Good enough for a single node; use Redis across
  nodes.

Keys live under ``django_q_exporter:{Q_CLUSTER name}:unique:``.
The exporter reads the same records through ``read_all()`` (read-only).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("rsr_tasks.unique")

# The record is one JSON string per task (cjson inside the scripts), so the
# exporter reads every record with a single MGET.
_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
_LOAD = ("local raw = redis.call('get', KEYS[2])\n"
         "local s = {}\nif raw then s = cjson.decode(raw) end\n")
_ACQUIRE = _NOW + _LOAD + """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  s.token = ARGV[1]; s.host = ARGV[3]; s.pid = tonumber(ARGV[4])
  s.started = now; s.beat = now; s.expiry = tonumber(ARGV[5])
  redis.call('set', KEYS[2], cjson.encode(s))
  return {1, tostring(now)}
end
return {0, tostring(s.host or ''), tostring(s.pid or ''), tostring(s.started or '')}
"""
_EXTEND = _NOW + """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
""" + _LOAD + """
  if s.token == ARGV[1] then
    s.beat = now
    redis.call('set', KEYS[2], cjson.encode(s))
  end
  return 1
end
return 0
"""
_FINISH = _NOW + _LOAD + """
local released = 0
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  released = 1
end
if s.token == ARGV[1] then
  s.last_end = now
  s.last_duration = now - s.started
  s.last_outcome = ARGV[2]
  if ARGV[2] == 'success' then s.last_success = now end
  s.token = nil; s.host = nil; s.pid = nil; s.started = nil; s.beat = nil
  redis.call('set', KEYS[2], cjson.encode(s))
end
return released
"""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: float | None  # Unix time (store clock)


@dataclass(frozen=True)
class TaskState:
    """What the exporter publishes for one unique task. Times are Unix seconds."""

    name: str
    timeout: float  # the lock expiry: beats older than this mean the lock is lost
    holder: Holder | None  # a run in progress (not yet finished)
    last_beat: float | None
    last_end: float | None
    last_duration: float | None
    last_outcome: str | None
    last_success: float | None


@dataclass(frozen=True)
class Snapshot:
    now: float  # the store's clock (Redis TIME, or this host's clock)
    tasks: tuple[TaskState, ...]
    round_trips: int


class UniqueStore(Protocol):
    def register(self, name: str, expiry: float) -> None: ...
    def acquire(self, name: str, token: str, expiry: float, host: str,
                pid: int) -> tuple[bool, Holder | None]: ...
    def extend(self, name: str, token: str, expiry: float) -> bool: ...
    def finish(self, name: str, token: str, outcome: str) -> bool: ...
    def read_all(self) -> Snapshot: ...


def _f(value) -> float | None:
    if value in (None, "", b""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _state(name: str, meta: dict, raw: dict) -> TaskState:
    holder = None
    if raw.get("started") and raw.get("token"):
        holder = Holder(str(raw.get("host", "")), int(_f(raw.get("pid")) or 0),
                        _f(raw.get("started")))
    timeout = _f(raw.get("expiry")) or _f(meta.get("expiry")) or 0.0
    return TaskState(name, timeout, holder, _f(raw.get("beat")) if holder else None,
                     _f(raw.get("last_end")), _f(raw.get("last_duration")),
                     raw.get("last_outcome") or None, _f(raw.get("last_success")))


class RedisUniqueStore:
    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._finish = client.register_script(_FINISH)

    def _keys(self, name: str) -> list[str]:
        return [f"{self.prefix}:{name}:lock", f"{self.prefix}:{name}:state"]

    def register(self, name: str, expiry: float) -> None:
        self.client.hset(f"{self.prefix}:registry", name, json.dumps({"expiry": expiry}))

    def acquire(self, name, token, expiry, host, pid):
        got = self._acquire(keys=self._keys(name),
                            args=[token, int(expiry * 1000), host, pid, expiry])
        if int(got[0]) == 1:
            return True, None
        return False, Holder(_s(got[1]), int(_f(_s(got[2])) or 0), _f(_s(got[3])))

    def extend(self, name, token, expiry):
        return bool(self._extend(keys=self._keys(name), args=[token, int(expiry * 1000)]))

    def finish(self, name, token, outcome):
        return bool(self._finish(keys=self._keys(name), args=[token, outcome]))

    def read_all(self) -> Snapshot:
        pipe = self.client.pipeline(transaction=False)
        pipe.time()
        pipe.hgetall(f"{self.prefix}:registry")
        (secs, micros), registry = pipe.execute()
        names = sorted(_s(k) for k in registry)
        metas = {_s(k): json.loads(_s(v)) for k, v in registry.items()}
        trips = 1
        states = []
        if names:
            raws = self.client.mget([self._keys(name)[1] for name in names])
            trips += 1
            for name, raw in zip(names, raws, strict=True):
                states.append(_state(name, metas[name], json.loads(raw) if raw else {}))
        return Snapshot(secs + micros / 1e6, tuple(states), trips)


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CacheUniqueStore:
    """Django cache API only; see the module docstring for the weaker guarantee."""

    def __init__(self, cache, prefix: str, clock=time.time) -> None:
        self.cache = cache
        self.prefix = prefix
        self.clock = clock

    def _lock(self, name: str) -> str:
        return f"{self.prefix}:{name}:lock"

    def _statekey(self, name: str) -> str:
        return f"{self.prefix}:{name}:state"

    def register(self, name: str, expiry: float) -> None:
        key = f"{self.prefix}:registry"
        registry = self.cache.get(key) or {}
        if registry.get(name) != {"expiry": expiry}:
            registry[name] = {"expiry": expiry}
            self.cache.set(key, registry, None)

    def acquire(self, name, token, expiry, host, pid):
        if self.cache.add(self._lock(name), token, expiry):
            now = self.clock()
            state = self.cache.get(self._statekey(name)) or {}
            state.update(token=token, host=host, pid=pid, started=now, beat=now, expiry=expiry)
            self.cache.set(self._statekey(name), state, None)
            return True, None
        state = self.cache.get(self._statekey(name)) or {}
        return False, Holder(str(state.get("host", "")), int(state.get("pid") or 0),
                             _f(state.get("started")))

    def extend(self, name, token, expiry):
        if self.cache.get(self._lock(name)) != token:
            return False
        self.cache.set(self._lock(name), token, expiry)
        state = self.cache.get(self._statekey(name)) or {}
        if state.get("token") == token:
            state["beat"] = self.clock()
            self.cache.set(self._statekey(name), state, None)
        return True

    def finish(self, name, token, outcome):
        released = False
        if self.cache.get(self._lock(name)) == token:
            self.cache.delete(self._lock(name))
            released = True
        state = self.cache.get(self._statekey(name)) or {}
        if state.get("token") == token:
            now = self.clock()
            state.update(last_end=now, last_duration=now - float(state["started"]),
                         last_outcome=outcome)
            if outcome == "success":
                state["last_success"] = now
            for field in ("token", "host", "pid", "started", "beat"):
                state.pop(field, None)
            self.cache.set(self._statekey(name), state, None)
        return released

    def read_all(self) -> Snapshot:
        registry = self.cache.get(f"{self.prefix}:registry") or {}
        names = sorted(registry)
        raws = self.cache.get_many([self._statekey(n) for n in names]) if names else {}
        states = tuple(_state(n, registry[n], raws.get(self._statekey(n)) or {}) for n in names)
        return Snapshot(self.clock(), states, 2 if names else 1)


def build(cache_alias: str, cluster_name: str, timeout: float) -> UniqueStore:
    """The store for a Django cache alias: Redis scripts when the cache is Redis."""
    from django.conf import settings
    from django.core.cache import caches

    prefix = f"django_q_exporter:{cluster_name}:unique"
    conf = settings.CACHES[cache_alias]
    if conf.get("BACKEND", "").endswith("RedisCache"):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        location = conf["LOCATION"]
        url = location[0] if isinstance(location, (list, tuple)) else location.split(",")[0]
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                      retry=Retry(NoBackoff(), 0))
        return RedisUniqueStore(client, prefix)
    return CacheUniqueStore(caches[cache_alias], prefix)
