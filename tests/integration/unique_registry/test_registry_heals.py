"""A unique-task registry lost to a Redis restart, an eviction or a flush is back after
one run of each task (real Redis; the SQLite database cache in a real process)."""

from __future__ import annotations

import json
import subprocess
import uuid

from djq_contract import keys
from rsr_tasks.unique.redis_store import RedisUniqueStore
from tests.procs import PYTHON, ROOT


def test_redis_acquire_rewrites_a_lost_registry_entry_in_the_same_round_trip(redis_server):
    client = redis_server.client()
    store = RedisUniqueStore(client, keys.unique_prefix(f"r{uuid.uuid4().hex[:6]}"))
    registry = keys.registry_key(store.prefix)
    store.register("job", 7.0)
    assert store.acquire("warm-up", "tok", 1.0, "h", 1).ok  # loads the script into Redis
    client.delete(registry)
    calls_before = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert store.acquire("job", "tok", 7.0, "h", 1).ok
    stats = client.info("commandstats")
    entry = json.loads(client.hget(registry, "job"))
    assert entry["expiry"] == 7.0 and abs(entry["seen"] - client.time()[0]) < 5, \
        "re-registered, seen now on Redis' clock"
    # One EVALSHA did it (no separate HSET from the client).
    assert stats["cmdstat_evalsha"]["calls"] - calls_before == 1
    client.delete(registry)
    assert not store.acquire("job", "other", 7.0, "h2", 2).ok  # contended
    assert json.loads(client.hget(registry, "job"))["expiry"] == 7.0


def test_django_cache_store_reregisters_on_the_next_run(make_env):
    env = make_env("sqlite")
    code = ("import django, json; django.setup()\n"
            "from django.core.cache import caches\n"
            "from rsr_tasks.unique import unique_task\n"
            "from djq_contract import keys\n"
            "from rsr_tasks.unique.decorator import _options\n"
            "alias, prefix, _ = _options()\n"
            "key = keys.registry_key(prefix)\n"
            "@unique_task('healing', expiry=5)\n"
            "def job():\n"
            "    return 'ok'\n"
            "job()\n"
            "before = caches[alias].get(key)\n"
            "caches[alias].delete(key)\n"
            "gone = caches[alias].get(key)\n"
            "job()\n"
            "print(json.dumps([before, gone, caches[alias].get(key)]))\n")
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    before, gone, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(before) == ["healing"] and before["healing"]["expiry"] == 5 and gone is None
    assert list(after) == ["healing"] and after["healing"]["expiry"] == 5
