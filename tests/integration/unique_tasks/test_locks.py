"""@unique_task under contention, crashes, long runs and lost locks (real Redis, real
processes)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

from tests.integration.unique_tasks.drivers import counter, driver, result, start_holder
from tests.procs import PYTHON, ROOT, RedisServer, wait_for


def test_no_overlap_under_contention(make_env, procs, redis_server):
    """8 processes x 200 attempts: never two holders; every attempt accounted for."""
    env = make_env("redis")
    name, detector = "contended", f"det-{uuid.uuid4().hex[:8]}"
    workers = [driver(env, "contend", name, "--attempts", 200, "--expiry", 5,
                      "--detector", detector) for _ in range(8)]
    outs = [result(w, timeout=120) for w in workers]
    r = redis_server.client()
    assert int(r.get(f"{detector}:overlaps") or 0) == 0
    acquired = sum(o["acquired"] for o in outs)
    contended = sum(o["contended"] for o in outs)
    assert acquired + contended == 1600
    assert acquired > 0 and contended > 0
    assert sum(o["errors"] + o["lost"] for o in outs) == 0
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "acquired", name) == acquired
    assert counter(exporter, "contended", name) == contended
    assert counter(exporter, "lost", name) == 0
    assert exporter.value("django_q_unique_task_running", task=name) == 0
    assert exporter.value("django_q_unique_task_heartbeat_timeout_seconds", task=name) == 5
    assert exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                          task=name) > time.time() - 120


def test_crashed_holder_frees_lock_after_one_expiry(make_env):
    env = make_env("redis")
    name = "crashy"
    expiry = 2.0
    holder, r = start_holder(env, name, "--seconds", 60, "--expiry", expiry, "--beat", 0.5)
    time.sleep(0.6)  # let at least one heartbeat land, so the kill is mid-run
    lock = f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:{name}:lock"
    holder.send_signal(signal.SIGKILL)
    killed_at = time.time()
    remaining = r.pttl(lock) / 1000
    assert 0 < remaining <= expiry
    poller = driver(env, "poll", name, "--expiry", expiry, "--interval", 0.02,
                    "--timeout", 10)
    out = result(poller)
    holder.wait()
    waited = out["acquired_at"] - killed_at
    # Not before the lock's expiry (20 ms tolerance for clock reads), within one expiry
    # (+0.5 s for process start-up and polling).
    assert remaining - 0.02 <= waited <= expiry + 0.5, (waited, remaining)


def test_long_run_keeps_lock(make_env):
    """A run of 4x the expiry keeps the lock: a competitor trying every 0.1 s from the
    start of the run until past 2x the expiry is skipped every time. (The run outlasts
    the competitor's 2.4 s by 1.6 s, so a competitor slow to start on a loaded machine
    still tries only while the run holds the lock.)"""
    env = make_env("redis")
    name = "long"
    holder, r = start_holder(env, name, "--seconds", 4, "--expiry", 1, "--beat", 0.25)
    competitor = driver(env, "contend", name, "--duration", 2.4, "--interval", 0.1,
                        "--expiry", 1)
    out = result(competitor)
    held = result(holder)
    assert held["acquired"] == 1 and held["lost"] == 0 and held["held_false_at"] is None
    assert held["results"] == ["'done'"]
    assert out["acquired"] == 0 and out["contended"] == len(out["attempts_at"]) >= 10
    started = held["started_at"]
    # Attempts cover the run well past twice the expiry (the competitor starts ~0.5 s late).
    assert out["attempts_at"][-1] - started > 2.0
    assert all(started < t < started + 4 for t in out["attempts_at"])


def test_key_taken_over_mid_run_is_lost(make_env, procs):
    env = make_env("redis")
    name = "takeover"
    holder, r = start_holder(env, name, "--seconds", 1.5, "--expiry", 1, "--beat", 0.2)
    lock = f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:{name}:lock"
    r.set(lock, "someone-else", px=10_000)
    out = result(holder)
    assert out["lost"] == 1 and out["results"][0].startswith("LockLost(")
    assert "taken over" in out["results"][0]
    assert r.get(lock) == b"someone-else"  # our release did not delete their lock
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "lost", name) == 1


def test_redis_down_mid_run_is_lost_then_recovers(make_env, procs, tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        env = make_env("redis", REDIS_URL=server.url)
        name = "outage"
        holder, _ = start_holder(env, name, "--seconds", 2, "--expiry", 1, "--beat", 0.2)
        server.stop()
        t0 = time.monotonic()
        out = result(holder, timeout=30)
        assert time.monotonic() - t0 < 10, "the run must not hang on a dead Redis"
        assert out["lost"] == 1 and "heartbeat failed" in out["results"][0]
        server.start()
        again = result(driver(env, "hold", name, "--seconds", 0, "--expiry", 1))
        assert again["acquired"] == 1 and again["lost"] == 0 and again["errors"] == 0
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        assert counter(exporter, "lost", name) == 1
        assert counter(exporter, "acquired", name) == 2
    finally:
        server.stop()


def test_frozen_holder_heartbeat_goes_stale(make_env, procs):
    env = make_env("redis")
    name = "frozen"
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    holder, _ = start_holder(env, name, "--seconds", 30, "--expiry", 1, "--beat", 0.2)
    try:
        assert exporter.value("django_q_unique_task_heartbeat_age_seconds", task=name) < 1
        holder.send_signal(signal.SIGSTOP)
        timeout = exporter.value("django_q_unique_task_heartbeat_timeout_seconds", task=name)
        assert timeout == 1
        wait_for(lambda: exporter.value("django_q_unique_task_heartbeat_age_seconds",
                                        task=name) > timeout, 10, what="age past timeout")
        assert exporter.value("django_q_unique_task_running", task=name) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_django_cache_backend(make_env, procs):
    """The embedded default (SQLite database cache): cache.add locks, records, metrics;
    a re-entrant call while holding the lock is skipped."""
    env = make_env("sqlite")
    code = ("import django; django.setup()\n"
            "from rsr_tasks.unique import unique_task, Skipped\n"
            "import json\n"
            "inner = []\n"
            "@unique_task('db-cache', expiry=5)\n"
            "def job():\n"
            "    inner.append(repr(job()))\n"  # re-entrant call while holding: skipped
            "    return 'ok'\n"
            "print(json.dumps([repr(job()), inner[0]]))\n")
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    outer, inner = json.loads(done.stdout.strip().splitlines()[-1])
    assert outer == "'ok'" and inner.startswith("Skipped(task='db-cache', reason='contended'")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "acquired", "db-cache") == 1
    assert counter(exporter, "contended", "db-cache") == 1
    assert exporter.value("django_q_unique_task_running", task="db-cache") == 0
    assert exporter.value("django_q_unique_task_last_duration_seconds", task="db-cache") >= 0
    assert exporter.value("django_q_unique_task_heartbeat_timeout_seconds",
                          task="db-cache") == 5


def test_django_cache_backend_no_overlap_across_processes(make_env, procs, redis_server):
    """cache.add on the SQLite database cache: 4 processes x 40 attempts never overlap
    (the overlap detector lives in a separate Redis; the locks do not)."""
    env = make_env("sqlite", DETECTOR_REDIS_URL=redis_server.url)
    assert "REDIS_URL" not in env
    name, detector = "db-contended", f"det-{uuid.uuid4().hex[:8]}"
    workers = [driver(env, "contend", name, "--attempts", 40, "--expiry", 10,
                      "--detector", detector) for _ in range(4)]
    outs = [result(w, timeout=120) for w in workers]
    r = redis_server.client()
    assert int(r.get(f"{detector}:overlaps") or 0) == 0
    acquired = sum(o["acquired"] for o in outs)
    contended = sum(o["contended"] for o in outs)
    assert acquired + contended == 160 and acquired > 0 and contended > 0
    assert sum(o["errors"] + o["lost"] for o in outs) == 0
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert counter(exporter, "acquired", name) == acquired
    assert counter(exporter, "contended", name) == contended
