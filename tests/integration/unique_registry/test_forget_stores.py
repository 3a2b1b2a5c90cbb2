"""Both lock stores forget registry entries not seen for the period, against real
backends: the Redis store's Lua script on a private redis-server, the cache store on
the SQLite database cache of the embedded set-up (in a Django process)."""

from __future__ import annotations

import json
import subprocess
import uuid

from djq_contract import keys
from rsr_tasks.unique.redis_store import RedisUniqueStore
from tests.procs import PYTHON, ROOT

PERIOD = 60.0


def test_redis_store_forgets_unseen_tasks_keeps_the_rest(redis_server):
    r = redis_server.client()
    prefix = keys.unique_prefix(f"forget-{uuid.uuid4().hex[:6]}")
    reg = keys.registry_key(prefix)
    store = RedisUniqueStore(r, prefix)
    store.register("fresh", 5)
    secs, _ = r.time()
    old = secs - 2 * PERIOD
    # Entries as workers of an earlier deployment left them.
    r.hset(reg, mapping={
        "retired": json.dumps({"expiry": 5, "seen": old}),
        "ran-lately": json.dumps({"expiry": 5, "seen": old}),
        "held": json.dumps({"expiry": 5, "seen": old}),
        "unstamped": json.dumps({"expiry": 5}),
        "garbage": "not json",
    })
    r.set(keys.state_key(prefix, "retired"), json.dumps({"last_end": old, "last_success": old}))
    r.set(keys.state_key(prefix, "ran-lately"), json.dumps({"last_end": secs - 1}))
    r.set(keys.lock_key(prefix, "held"), "token", px=60_000)

    assert store.forget_stale(PERIOD) == ["retired"]
    assert sorted(x.decode() for x in r.hkeys(reg)) == ["fresh", "garbage", "held",
                                                         "ran-lately", "unstamped"]
    assert r.get(keys.state_key(prefix, "retired")) is None, "its record goes with it"
    assert r.get(keys.state_key(prefix, "ran-lately")) is not None
    stamped = json.loads(r.hget(reg, "unstamped"))
    assert stamped["expiry"] == 5 and abs(stamped["seen"] - secs) < 5, \
        "an entry with no time is stamped, so it is forgotten one period later"
    fresh = json.loads(r.hget(reg, "fresh"))
    assert fresh["expiry"] == 5 and abs(fresh["seen"] - secs) < 5
    assert store.forget_stale(PERIOD) == [], "nothing else is stale"


CACHE_SCRIPT = """
import django, json, sys
django.setup()
from django.core.cache import caches
from djq_contract import keys
from rsr_tasks.unique.cache_store import CacheUniqueStore
now = [1_000_000.0]
prefix = keys.unique_prefix(sys.argv[1])
cache = caches["default"]
store = CacheUniqueStore(cache, prefix, clock=lambda: now[0])
store.register("retired", 5)
store.register("held", 5)
cache.set(keys.registry_key(prefix), {**cache.get(keys.registry_key(prefix)),
                                      "unstamped": {"expiry": 5}}, None)
assert store.acquire("held", "tok", 600, "h", 1).ok
now[0] += 100
store.register("fresh", 5)
out = {"early": store.forget_stale(150.0)}
now[0] += 100
out["late"] = store.forget_stale(150.0)
out["registry"] = cache.get(keys.registry_key(prefix))
out["retired_record"] = cache.get(keys.state_key(prefix, "retired"))
print(json.dumps(out))
"""


def test_cache_store_forgets_unseen_tasks(make_env):
    env = make_env("sqlite")
    done = subprocess.run([PYTHON, "-c", CACHE_SCRIPT, f"forget-{uuid.uuid4().hex[:6]}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["early"] == [], "no entry is older than the period yet"
    assert out["late"] == ["retired"], "held keeps its lock; fresh and unstamped are recent"
    registry = out["registry"]
    assert sorted(registry) == ["fresh", "held", "unstamped"]
    assert registry["unstamped"]["seen"] == 1_000_100.0, "stamped at the first pass"
    assert out["retired_record"] is None
