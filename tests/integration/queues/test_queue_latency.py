"""Queue latency: the right head task's age on all three broker set-ups, and O(1) on
Redis (100 000 queued tasks cost the same commands per scrape as one)."""

from __future__ import annotations

import json
import time

import pytest

from tests.procs import run_py


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_oldest_age_is_the_head_tasks_enqueue_age(kind, make_env, procs):
    """Two tasks enqueued 2 s apart: the age follows the first, then (after a real broker
    dequeue took the first) the second, then reads 0 on an empty queue."""
    env = make_env(kind)
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    out = run_py(env, "import json, time\n"
                      "from django_q.tasks import async_task\n"
                      "marks = [time.time()]\n"
                      "async_task('math.floor', 1.5)\n"
                      "marks += [time.time()]\n"
                      "time.sleep(2)\n"
                      "marks += [time.time()]\n"
                      "async_task('math.floor', 2.5)\n"
                      "marks += [time.time()]\n"
                      "print(json.dumps(marks))\n")
    a0, a1, b0, b1 = json.loads(out.strip().splitlines()[-1])

    def age_within(since_lo: float, since_hi: float) -> float:
        before = time.time()
        age = exporter.value("django_q_queue_oldest_task_age_seconds")
        after = time.time()
        assert before - since_hi - 0.05 <= age <= after - since_lo + 0.05, (age, kind)
        return age

    assert exporter.value("django_q_queue_size") == 2
    age_within(a0, a1)  # the first task, not the newest
    dequeue = ("from django_q.brokers import get_broker\n"
               "assert len(get_broker().dequeue()) == 1\n")
    run_py(env, dequeue)
    assert exporter.value("django_q_queue_size") == 1
    if kind != "redis":
        assert exporter.value("django_q_queue_in_flight") == 1  # leased: not the head
    age_within(b0, b1)
    run_py(env, dequeue)
    assert exporter.value("django_q_queue_size") == 0
    assert exporter.value("django_q_queue_oldest_task_age_seconds") == 0


def _commandstats(client) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}


def _scrape_commands(exporter, client) -> dict[str, int]:
    client.config_resetstat()
    exporter.metrics_text()
    stats = _commandstats(client)
    # Connection set-up (a new pool connection in another thread) is not per-scrape work.
    return {k: v for k, v in stats.items()
            if k not in ("config|resetstat", "info", "hello") and not k.startswith("client|")}


def test_oldest_age_and_constant_cost_with_100k_backlog(make_env, procs, tmp_path):
    from tests.procs import RedisServer

    server = RedisServer(tmp_path / "redis").start()  # private: command counts are ours only
    try:
        env = make_env("redis", REDIS_URL=server.url)
        client = server.client()
        # A live entry in the Stat index, as workers keep it: no background keyspace
        # discovery pass runs, so the counts below are the scrape's own commands.
        prefix = f"django_q:{env['DJANGO_Q_NAME']}:cluster"
        client.zadd(f"{prefix}:index", {f"{prefix}:absent": time.time() + 3600})
        # Cluster scope: the scrape reads only cluster-wide series. With the default
        # scope the local readiness collector re-reads the probes' observation when its
        # cache has expired, adding probe commands to one scrape and not the other.
        exporter = procs.exporter(env, "--scope", "cluster")
        exporter.wait_ready_to_serve()
        enqueued_at = time.time()
        run_py(env, "from django_q.tasks import async_task\n"
                    "async_task('math.floor', 1.5)\n")
        key = f"django_q:{env['DJANGO_Q_NAME']}:q"
        one = _scrape_commands(exporter, client)
        age = exporter.value("django_q_queue_oldest_task_age_seconds")
        assert 0 <= age <= time.time() - enqueued_at + 0.5
        # Grow the backlog to 100 000 behind the real head task (copies of it).
        payload = client.lindex(key, 0)
        pipe = client.pipeline(transaction=False)
        for _ in range(99_999):
            pipe.rpush(key, payload)
        pipe.execute()
        assert exporter.value("django_q_queue_size") == 100_000
        many = _scrape_commands(exporter, client)
        assert many == one, (one, many)
        assert "lrange" not in many and "keys" not in many and "scan" not in many
        assert many["llen"] == 1 and many["lindex"] == 1
        later = exporter.value("django_q_queue_oldest_task_age_seconds")
        assert later >= age and later <= time.time() - enqueued_at + 0.5
    finally:
        server.stop()
