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
# Every attempt also writes the task's registry entry (KEYS[3], field ARGV[6], seen now)
# when it is missing, so a registry lost to a restart, an eviction or a flush is back
# after one run, at no extra round trip. Only when missing: a present entry costs one
# lookup instead of a write replicated on every run (the record's run times already say
# the task was seen; a worker's start rewrites the entry, with a changed expiry).
_ACQUIRE = _NOW + _LOAD + """
if redis.call('hexists', KEYS[3], ARGV[6]) == 0 then
  redis.call('hset', KEYS[3], ARGV[6], cjson.encode({expiry = tonumber(ARGV[5]), seen = now}))
end
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
# Register: the task's registry entry, stamped with the time it was seen.
_REGISTER = _NOW + """
redis.call('hset', KEYS[1], ARGV[1], cjson.encode({expiry = tonumber(ARGV[2]), seen = now}))
"""
# Forget: every entry not seen for ARGV[2] seconds (djq_contract.forgetting: the entry's
# ``seen`` and the record's run times) leaves the registry with its record, unless its
# lock is held; an entry with no time at all is stamped now. ARGV[1] is the key prefix
# (the lock and record keys are built here as djq_contract.keys builds them: a site's
# keys live on one server). Returns the forgotten names.
_FORGET = _NOW + """
local gone = {}
local all = redis.call('hgetall', KEYS[1])
local function decode(raw)
  if not raw then return {} end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return {}
end
for i = 1, #all, 2 do
  local name = all[i]
  local entry = decode(all[i + 1])
  local state = ARGV[1] .. ':' .. name .. ':state'
  local s = decode(redis.call('get', state))
  local times = {entry.seen, s.started, s.beat, s.last_end}
  local seen = nil
  for k = 1, 4 do
    local x = tonumber(times[k])
    if x and (seen == nil or x > seen) then seen = x end
  end
  if seen == nil then
    entry.seen = now
    redis.call('hset', KEYS[1], name, cjson.encode(entry))
  elseif now - seen > tonumber(ARGV[2])
      and redis.call('exists', ARGV[1] .. ':' .. name .. ':lock') == 0 then
    redis.call('hdel', KEYS[1], name)
    redis.call('del', state)
    gone[#gone + 1] = name
  end
end
return gone
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
        self._register = client.register_script(_REGISTER)
        self._forget = client.register_script(_FORGET)

    def _keys(self, name: str) -> list[str]:
        return [keys.lock_key(self.prefix, name), keys.state_key(self.prefix, name)]

    def register(self, name: str, expiry: float) -> None:
        self._register(keys=[keys.registry_key(self.prefix)], args=[name, expiry])

    def forget_stale(self, period: float) -> list[str]:
        gone = self._forget(keys=[keys.registry_key(self.prefix)], args=[self.prefix, period])
        return [_s(n) for n in gone]

    def acquire(self, name, token, expiry, host, pid) -> Acquire:
        names = [*self._keys(name), keys.registry_key(self.prefix)]
        got = self._acquire(keys=names, args=[token, max(1, int(expiry * 1000)), host, pid,
                                             expiry, name])
        return Acquire(int(got[0]) == 1, _holder(*got[2:6]), float(_s(got[1])))

    def extend(self, name, token, expiry) -> bool:
        return bool(self._extend(keys=self._keys(name),
                                 args=[token, max(1, int(expiry * 1000))]))

    def finish(self, name, token, outcome) -> bool:
        return bool(self._finish(keys=self._keys(name), args=[token, outcome]))
