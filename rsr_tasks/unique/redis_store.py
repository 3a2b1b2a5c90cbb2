"""Unique-task locks and records on Redis: atomic Lua scripts on Redis' own clock.

KEYS[1] is the lock (value = the holder's random token, expiry = ``PX``),
KEYS[2] the heartbeat record (one JSON string, so the exporter reads every
record with one MGET). Each script reads Redis ``TIME`` itself, so the
record's times and the lock's expiry share one clock whatever the hosts'
clocks say. Extend and release act only while the lock holds our token;
the record's holder fields are touched only while they carry our token, so
a late call from a holder that lost its lock never overwrites a successor's.
"""

from __future__ import annotations

import json

from djq_contract import keys
from djq_contract.records import Holder, num
from rsr_tasks.unique.store import Acquire

_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
_LOAD = ("local raw = redis.call('get', KEYS[2])\n"
         "local s = {}\nif raw then s = cjson.decode(raw) end\n")
_HOLDER = "tostring(s.host or ''), tostring(s.pid or ''), tostring(s.started or ''), " \
          "tostring(s.beat or '')"
# Acquire: SET NX PX; on success the record names the new holder (a previous
# holder that never finished is returned, for the log); else the current holder.
# Every attempt also (re)writes the task's registry entry (KEYS[3], ARGV[6]), so a
# registry lost to a restart, an eviction or a flush is back after one run, at no
# extra round trip.
_ACQUIRE = _NOW + _LOAD + """
redis.call('hset', KEYS[3], ARGV[7], ARGV[6])
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local prev = {'', '', '', ''}
  if s.token then prev = {""" + _HOLDER + """} end
  s.token = ARGV[1]; s.host = ARGV[3]; s.pid = tonumber(ARGV[4])
  s.started = now; s.beat = now; s.expiry = tonumber(ARGV[5])
  redis.call('set', KEYS[2], cjson.encode(s))
  return {1, tostring(now), prev[1], prev[2], prev[3], prev[4]}
end
return {0, tostring(now), """ + _HOLDER + """}
"""
# Extend: compare-and-pexpire; a missing or foreign key is never (re)created.
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
# Finish: compare-and-delete, and move our holder fields to last_* in the record.
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


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _holder(host, pid, started, beat) -> Holder | None:
    if not _s(host) and not _s(started):
        return None
    return Holder(_s(host), int(num(_s(pid)) or 0), num(_s(started)), num(_s(beat)))


class RedisUniqueStore:
    """``client``: a bounded client (djq_contract.redisconn); scripts run by EVALSHA
    (loaded on first use, and again after a Redis restart flushed the script cache)."""

    def __init__(self, client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._finish = client.register_script(_FINISH)

    def _keys(self, name: str) -> list[str]:
        return [keys.lock_key(self.prefix, name), keys.state_key(self.prefix, name)]

    def register(self, name: str, expiry: float) -> None:
        self.client.hset(keys.registry_key(self.prefix), name, json.dumps({"expiry": expiry}))

    def acquire(self, name, token, expiry, host, pid) -> Acquire:
        names = [*self._keys(name), keys.registry_key(self.prefix)]
        got = self._acquire(keys=names, args=[token, max(1, int(expiry * 1000)), host, pid,
                                             expiry, json.dumps({"expiry": expiry}), name])
        return Acquire(int(got[0]) == 1, _holder(*got[2:6]), float(_s(got[1])))

    def extend(self, name, token, expiry) -> bool:
        return bool(self._extend(keys=self._keys(name),
                                 args=[token, max(1, int(expiry * 1000))]))

    def finish(self, name, token, outcome) -> bool:
        return bool(self._finish(keys=self._keys(name), args=[token, outcome]))
