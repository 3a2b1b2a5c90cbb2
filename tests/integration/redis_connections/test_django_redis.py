"""Q_CLUSTER["django_redis"]: the broker, the cache and the unique-task locks reached
through django-redis (real redis-server with a password, qcluster and exporter); and
the settings that stop the start with one line."""

from __future__ import annotations

import subprocess

import pytest
import redis

from djq_contract import keys
from tests.procs import PYTHON, ROOT, RedisServer, free_port, wait_for


def test_broker_cache_and_locks_through_django_redis(make_env, procs, tmp_path):
    secret = "dj4ngo-r3dis-pw"
    server = RedisServer(tmp_path / "auth-redis", extra_args=("--requirepass", secret)).start()
    try:
        env = make_env("redis", DJANGO_SETTINGS_MODULE="tests.settings_variants",
                       TEST_DJANGO_REDIS="1", Q_WORKERS="1",
                       REDIS_URL=f"redis://:{secret}@127.0.0.1:{server.port}/0")
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        cluster = procs.qcluster(env)
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 30, what="/healthz 200")
        code = ("import django; django.setup()\nfrom django_q.tasks import async_task\n"
                "async_task('tests.unique_jobs.sleeper', 0.05)\n")
        subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, timeout=60,
                       capture_output=True)
        wait_for(lambda: exporter.value("django_q_unique_task_last_success_timestamp_seconds",
                                        task="dq-sleeper"), 30, what="the unique task's run")
        assert exporter.value("django_q_broker_up") == 1
        r = redis.Redis(port=server.port, password=secret, socket_timeout=2)
        registry = keys.registry_key(keys.unique_prefix(env["DJANGO_Q_NAME"]))
        assert r.type(registry) == b"hash", "the locks took the Redis store, not cache.add"
        status, page, _ = exporter.get("/")
        assert status == 200
        assert f"redis://:***@127.0.0.1:{server.port}/0 (django-redis &#x27;default&#x27;)" \
            in page, "the broker as django-q2 reaches it, password masked (HTML-escaped)"
        for text in (page, exporter.metrics_text(), exporter.get("/healthz?verbose=1")[1],
                     exporter.output()):
            assert secret not in text
        cluster.stop()  # before Redis, or qcluster hangs on its shutdown writes
    finally:
        server.stop()


@pytest.mark.parametrize("extra, expect", [
    ({"TEST_Q_DJANGO_REDIS": "nosuch"},
     "Q_CLUSTER['django_redis'] names cache 'nosuch', which is not in CACHES"),
    ({"TEST_Q_DJANGO_REDIS": "default"},
     "Q_CLUSTER['django_redis'] names cache 'default', whose BACKEND "
     "'django.core.cache.backends.redis.RedisCache' is not 'django_redis.cache.RedisCache'"),
    ({"TEST_UNIQUE_FORGET_AFTER": "-5"},
     "RSR_UNIQUE_TASKS['forget_after'] = -5.0: expected a positive number of seconds"),
])
def test_bad_settings_stop_the_start_with_one_line(make_env, extra, expect):
    env = make_env("redis", DJANGO_SETTINGS_MODULE="tests.settings_variants", **extra)
    result = subprocess.run([PYTHON, "-m", "exporter", "serve", "--listen-address",
                             f"127.0.0.1:{free_port()}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("django-q-exporter: configuration error: ")
    assert expect in lines[0]
