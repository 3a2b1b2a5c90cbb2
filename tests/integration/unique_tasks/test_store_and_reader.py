"""Unique-task records and heartbeats against a real Redis: the reader survives garbage and
reuses what did not change, the heartbeat never resurrects a key nor outlives its run, and
the exporter shows registered tasks' lock counters at 0."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from djq_contract import catalogue, keys
from djq_contract.podstore import PodStore
from exporter.sources.unique import read_redis
from rsr_tasks.heartbeat import CacheHeartbeat
from rsr_tasks.unique.redis_store import RedisUniqueStore
from tests.procs import wait_for


def test_reader_survives_garbage_values(redis_server):
    r = redis_server.client()
    prefix = keys.unique_prefix(f"units-{uuid.uuid4().hex[:6]}")
    r.hset(keys.registry_key(prefix), mapping={"a": "not json", "b": json.dumps({"expiry": 3})})
    r.set(keys.state_key(prefix, "a"), b"\xff\x00")
    snap = read_redis(r, prefix)
    assert [t.name for t in snap.tasks] == ["a", "b"] and snap.round_trips == 2
    assert snap.tasks[1].timeout == 3 and not any(t.running for t in snap.tasks)
    assert abs(snap.now - time.time()) < 30  # Redis TIME


def test_reader_cache_sees_every_change(redis_server):
    """With the scrape-to-scrape cache, an unchanged task is not parsed again (the same
    state object), a changed record or registry entry is, and a removed task is gone."""
    from exporter.memo import LastRead

    r = redis_server.client()
    prefix = keys.unique_prefix(f"units-{uuid.uuid4().hex[:6]}")
    r.hset(keys.registry_key(prefix), mapping={n: json.dumps({"expiry": 3}) for n in "abc"})
    for n in "abc":
        r.set(keys.state_key(prefix, n), json.dumps({"last_end": 1.0}))
    memo = LastRead()
    first = {t.name: t for t in read_redis(r, prefix, memo).tasks}
    r.set(keys.state_key(prefix, "a"), json.dumps({"last_end": 2.0}))
    r.hset(keys.registry_key(prefix), "b", json.dumps({"expiry": 7}))
    r.hdel(keys.registry_key(prefix), "c")
    second = {t.name: t for t in read_redis(r, prefix, memo).tasks}
    assert sorted(second) == ["a", "b"]
    assert second["a"].last_end == 2.0 and second["b"].timeout == 7
    r.set(keys.state_key(prefix, "a"), json.dumps({"last_end": 1.0}))  # back as before
    third = {t.name: t for t in read_redis(r, prefix, memo).tasks}
    assert third["a"].last_end == 1.0 and third["a"] is not first["a"]  # forgotten, reparsed
    assert third["b"] is second["b"]  # unchanged since the last read: reused


@pytest.fixture
def store(redis_server):
    return RedisUniqueStore(redis_server.client(), keys.unique_prefix(f"u{uuid.uuid4().hex[:6]}"))


def test_heartbeat_never_resurrects_a_deleted_key(store):
    token, lock = "tok", keys.lock_key(store.prefix, "t")
    assert store.acquire("t", token, 1.0, "h", 1).ok
    with CacheHeartbeat(store, "t", token, 1.0, 0.05) as hb:
        wait_for(lambda: hb.beats >= 2, 5, 0.01, what="two beats")
        store.client.delete(lock)  # e.g. an operator, or a release racing the beat
        wait_for(lambda: hb.lost, 5, 0.01, what="loss noticed")
        assert not hb.held
        time.sleep(0.2)  # four beat intervals: nothing may write the key again
        assert not store.client.exists(lock)
    assert "taken over" in hb.lost_reason


def test_heartbeat_stops_before_release_and_never_beats_after(store):
    token, lock = "tok", keys.lock_key(store.prefix, "t")
    before = threading.active_count()
    assert store.acquire("t", token, 1.0, "h", 1).ok
    with CacheHeartbeat(store, "t", token, 1.0, 0.05) as hb:
        wait_for(lambda: hb.beats >= 2, 5, 0.01, what="two beats")
        assert hb.held and store.client.pttl(lock) > 900
    assert threading.active_count() == before, "the beat thread ended with the run"
    assert store.finish("t", token, "success")
    time.sleep(0.2)
    assert not store.client.exists(lock) and not hb.lost
    record = json.loads(store.client.get(keys.state_key(store.prefix, "t")))
    assert record["last_outcome"] == "success" and "token" not in record


def test_finish_by_a_former_holder_leaves_the_successor_alone(store):
    lock = keys.lock_key(store.prefix, "t")
    assert store.acquire("t", "old", 0.05, "h", 1).ok
    wait_for(lambda: not store.client.exists(lock), 5, 0.01, what="old lock expired")
    got = store.acquire("t", "new", 5, "h2", 2)
    assert got.ok and got.other is not None and got.other.pid == 1  # unfinished record
    assert not store.extend("t", "old", 5) and not store.finish("t", "old", "success")
    assert store.client.get(lock) == b"new"
    record = json.loads(store.client.get(keys.state_key(store.prefix, "t")))
    assert record["token"] == "new" and "last_outcome" not in record


def test_exporter_seeds_lock_counters_for_registered_tasks(make_env, procs, redis_server):
    """A task registered by some other pod, never run here, reads 0 on this pod."""
    env = make_env("redis")
    r = redis_server.client()
    r.hset(keys.registry_key(keys.unique_prefix(env["DJANGO_Q_NAME"])), "elsewhere",
           json.dumps({"expiry": 60}))
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    for outcome in catalogue.LOCK_OUTCOMES:
        wait_for(lambda o=outcome: exporter.value(f"django_q_unique_task_lock_{o}_total",
                                                  task="elsewhere") == 0, 5,
                 what=f"{outcome} counter at 0")
    assert exporter.value("django_q_unique_task_running", task="elsewhere") == 0
    assert exporter.value("django_q_unique_task_heartbeat_timeout_seconds",
                          task="elsewhere") == 60
    store = PodStore(env["DJANGO_Q_EXPORTER_POD_STORE"])
    assert store.value(catalogue.LOCK_OUTCOMES["acquired"].name, "_total",
                       {"task": "elsewhere"}) is None, "the zeros come from memory"
