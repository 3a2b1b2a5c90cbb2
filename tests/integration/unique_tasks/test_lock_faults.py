"""Lock safety under faults (issue 7, item 4), with real Redis servers and processes:
a Redis restart that keeps its data, a failover to a server without the lock, a
blackholed (frozen) Redis, and hosts whose wall clocks disagree."""

from __future__ import annotations

import glob
import signal
import subprocess
import time

import pytest

from tests.integration.unique_tasks.drivers import counter, driver, result, start_holder
from tests.procs import PYTHON, ROOT, RedisServer


def lock_key(env, name):
    return f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:{name}:lock"


@pytest.fixture
def private_redis(tmp_path):
    servers = []

    def start(*extra_args: str) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", extra_args=extra_args).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.proc and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()


def test_redis_restart_keeping_data_mid_run_keeps_lock(make_env, procs, private_redis):
    """Redis restarts (data kept, AOF) for less than the expiry: the failed beats are
    retried, the run keeps its lock and is not lost; errors are counted."""
    server = private_redis("--appendonly", "yes", "--appendfsync", "always")
    env = make_env("redis", REDIS_URL=server.url)
    name = "restart-kept"
    holder, r = start_holder(env, name, "--seconds", 4, "--expiry", 3, "--beat", 0.3)
    server.stop()
    time.sleep(0.7)  # the outage: at least two beats fail
    server.start()
    assert r.get(lock_key(env, name)) is not None, "the restart kept the lock key"
    competitor = result(driver(env, "contend", name, "--attempts", 3, "--expiry", 3))
    assert competitor["contended"] == 3 and competitor["acquired"] == 0
    out = result(holder)
    assert out["results"] == ["'done'"] and out["lost"] == 0
    assert out["held_false_at"] is None
    assert r.get(lock_key(env, name)) is None, "released at the end"
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "errors", name) >= 1
    assert counter(exporter, "lost", name) == 0
    assert counter(exporter, "acquired", name) == 1


def test_failover_to_server_without_the_lock_is_noticed_within_one_beat(make_env,
                                                                         private_redis):
    """Redis comes back empty (a restart without persistence, or a failover to a replica
    that never received the lock): the holder's next beat finds the lock gone and the run
    is lost within one beat, long before its expiry; a new holder acquires, and the old
    holder's release leaves the new holder's lock alone."""
    server = private_redis()
    env = make_env("redis", REDIS_URL=server.url)
    name = "failover"
    beat = 0.25
    holder, r = start_holder(env, name, "--seconds", 3, "--expiry", 2, "--beat", beat)
    server.stop()
    server.start()
    back_at = time.time()
    successor, _ = start_holder(env, name, "--seconds", 3, "--expiry", 2, "--beat", beat)
    out = result(holder)
    assert out["lost"] == 1 and "taken over" in out["results"][0]
    assert out["held_false_at"] is not None
    assert out["held_false_at"] - back_at < beat + 0.5
    assert r.get(lock_key(env, name)) is not None, "the successor's lock survives"
    nxt = result(successor)
    assert nxt["lost"] == 0 and nxt["results"] == ["'done'"]


def test_blackholed_redis_mid_run_is_bounded_and_lost(make_env, procs, private_redis):
    """Redis frozen (SIGSTOP: connections hang, nothing answers) past the expiry: every
    lock call is bounded by the timeout, lock_held() turns False one expiry after the
    last good beat (not sooner), the run finishes on time and reports the loss; once
    Redis answers again the next run acquires normally."""
    server = private_redis()
    env = make_env("redis", REDIS_URL=server.url, RSR_UNIQUE_TASKS_TIMEOUT="0.3")
    name = "blackhole"
    expiry, beat = 1.0, 0.25
    holder, _ = start_holder(env, name, "--seconds", 3, "--expiry", expiry, "--beat", beat)
    server.proc.send_signal(signal.SIGSTOP)
    frozen_at = time.time()
    try:
        out = result(holder, timeout=30)
        assert time.time() - frozen_at < 6, "the run must not hang on a blackholed Redis"
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert out["lost"] == 1 and "heartbeat failed for longer than the expiry" in \
        out["results"][0]
    lost_after = out["held_false_at"] - frozen_at
    assert expiry - beat - 0.1 < lost_after < expiry + 0.2, lost_after
    again = result(driver(env, "hold", name, "--seconds", 0, "--expiry", expiry))
    assert again["acquired"] == 1 and again["lost"] == 0 and again["errors"] == 0
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "lost", name) == 1
    assert counter(exporter, "errors", name) >= 2  # failed beats and the failed release
    assert counter(exporter, "acquired", name) == 2


def faketime(offset: str) -> dict[str, str]:
    """libfaketime shifts every wall-clock call of a process (time(), gettimeofday,
    clock_gettime(CLOCK_REALTIME)): a host whose clock is wrong. Monotonic time stays
    real, as on such a host."""
    libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    assert libs, "libfaketime missing: run scripts/bootstrap --test (Debian package faketime)"
    return {"LD_PRELOAD": libs[0], "FAKETIME": offset, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_hosts_with_skewed_clocks_agree(make_env, procs):
    """A holder an hour ahead, a competitor half an hour behind and an exporter an hour
    behind: lock decisions, ages, durations and timestamps all come from Redis TIME."""
    env = make_env("redis")
    shifted = subprocess.run([PYTHON, "-c", "import time; print(time.time())"], cwd=ROOT,
                             env={**env, **faketime("-1h")}, capture_output=True, text=True)
    assert abs(float(shifted.stdout) - (time.time() - 3600)) < 60, "faketime is in effect"
    exporter = procs.exporter({**env, **faketime("-1h")})
    exporter.wait_ready_to_serve()
    name = "skewed"
    holder, _ = start_holder({**env, **faketime("+1h")}, name, "--seconds", 1.5,
                             "--expiry", 1, "--beat", 0.2)
    competitor = result(driver({**env, **faketime("-30m")}, "contend", name,
                               "--attempts", 5, "--expiry", 1))
    assert competitor["contended"] == 5
    age = exporter.value("django_q_unique_task_heartbeat_age_seconds", task=name)
    assert age is not None and 0 <= age < 1.0
    out = result(holder)
    assert out["lost"] == 0 and out["acquired"] == 1 and out["held_false_at"] is None
    assert out["started_at"] - time.time() > 3000, "the holder's clock was an hour ahead"
    duration = exporter.value("django_q_unique_task_last_duration_seconds", task=name)
    assert 1.4 < duration < 3.0
    success = exporter.value("django_q_unique_task_last_success_timestamp_seconds", task=name)
    assert abs(success - time.time()) < 30, "Redis' clock, not the holder's or the exporter's"
