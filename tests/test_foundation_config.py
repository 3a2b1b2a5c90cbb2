"""Bad input stops at start with one line; an unreachable broker gives a running,
red server that recovers by itself; misconfigurations are named, not silent."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.procs import PYTHON, ROOT, RedisServer, free_port, wait_for


def _serve(env, *flags, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "exporter", "serve", *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("flags, extra_env, expect", [
    (["--listen-address", "127.0.0.1:99999"], {}, "--listen-address: port 99999 is outside"),
    (["--listen-address", "127.0.0.1:http"], {}, "--listen-address: port 'http' is not a number"),
    (["--backend-timeout", "zero"], {}, "--backend-timeout: 'zero' is not a number"),
    (["--stat-grace", "-3"], {}, "--stat-grace: '-3' must be a positive number"),
    (["--log-level", "LOUD"], {}, "--log-level: 'LOUD' is not one of"),
    ([], {"DJANGO_Q_EXPORTER_SCRAPE_TIMEOUT": "soon"},
     "DJANGO_Q_EXPORTER_SCRAPE_TIMEOUT: 'soon' is not a number"),
    (["--health-timeout", "2"], {}, "health-timeout must stay under 1 s"),
    (["--django-settings", "no.such.settings"], {}, "Django settings 'no.such.settings'"),
    ([], {"DJANGO_SETTINGS_MODULE": "tests.settings_variants",
          "TEST_Q_BROKER_CLASS": "django_q.brokers.mongo.Mongo"},
     "Q_CLUSTER['broker_class'] 'django_q.brokers.mongo.Mongo'"),
    ([], {"DJANGO_SETTINGS_MODULE": "tests.settings_variants",
          "TEST_Q_BROKER_CLASS": "no.such.Broker"}, "cannot be imported"),
])
def test_bad_configuration_is_one_line_exit_2(make_env, flags, extra_env, expect):
    env = make_env("sqlite", **extra_env)
    result = _serve(env, "--listen-address", f"127.0.0.1:{free_port()}", *flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("django-q-exporter: configuration error: ")
    assert expect in lines[0]
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line(make_env, procs):
    env = make_env("sqlite")
    first = procs.exporter(env)
    first.wait_ready_to_serve()
    result = _serve(env, "--listen-address", f"127.0.0.1:{first.port}")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr


def test_unreachable_redis_at_start_then_recovery(make_env, procs, tmp_path):
    port = free_port()
    env = make_env("redis", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    t0 = time.monotonic()
    status, body, _ = exporter.get("/healthz")
    assert (status, body) == (503, "false")
    assert time.monotonic() - t0 < 1.0
    assert exporter.get("/livez")[0] == 200  # a broker outage never fails liveness
    assert exporter.value("django_q_broker_up", broker="redis") == 0
    assert exporter.value("django_q_exporter_collector_success", collector="queue") == 0
    _, verbose, _ = exporter.get("/healthz?verbose=1")
    broker = next(c for c in json.loads(verbose)["checks"] if c["name"] == "broker")
    assert not broker["ok"] and "broker did not answer" in broker["reason"]

    server = RedisServer(tmp_path / "late-redis", port=port).start()
    try:
        wait_for(lambda: exporter.value("django_q_broker_up", broker="redis") == 1, 10,
                 what="broker_up 1 after Redis came up")
        procs.qcluster(env)
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 30, what="/healthz 200")
    finally:
        server.stop()
    assert "Traceback" not in exporter.output()


def test_password_masked_on_page_metrics_and_log(make_env, procs, tmp_path):
    secret = "s3cr3t-pa55"
    server = RedisServer(tmp_path / "auth-redis", extra_args=("--requirepass", secret)).start()
    try:
        env = make_env("redis", REDIS_URL=f"redis://:{secret}@127.0.0.1:{server.port}/0")
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        procs.qcluster(env)
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 30, what="/healthz 200")
        page = exporter.get("/")[1]
        assert f"redis://:***@127.0.0.1:{server.port}/0" in page
        for text in (page, exporter.metrics_text(), exporter.get("/healthz?verbose=1")[1],
                     exporter.output()):
            assert secret not in text
    finally:
        server.stop()


@pytest.mark.parametrize("variant, expect", [
    ({"TEST_Q_CACHE_BACKEND": "locmem"}, "is a per-process LocMemCache"),
    ({"TEST_Q_CACHE_ALIAS": "stats"}, "names cache 'stats', which is not in CACHES"),
])
def test_cache_misconfiguration_is_named(make_env, procs, variant, expect):
    env = make_env("sqlite", DJANGO_SETTINGS_MODULE="tests.settings_variants", **variant)
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    status, body, _ = exporter.get("/healthz?verbose=1")
    config = next(c for c in json.loads(body)["checks"] if c["name"] == "config")
    assert status == 503 and not config["ok"] and expect in config["reason"]
    wait_for(lambda: expect in exporter.output(), 5, what="the problem in the log")
    logged = [line for line in exporter.output().splitlines() if expect in line]
    assert len(logged) == 1 and "misconfiguration" in logged[0]


def test_secret_key_mismatch_is_named(make_env, procs):
    env = make_env("redis")
    procs.qcluster(env)
    exporter = procs.exporter(dict(env, DJANGO_SECRET_KEY="not-the-workers-key"))
    exporter.wait_ready_to_serve()
    wait_for(lambda: exporter.value("django_q_exporter_stats_rejected",
                                    reason="bad_signature") >= 1, 30,
             what="bad_signature count")

    def config_check():
        status, body, _ = exporter.get("/healthz?verbose=1")
        config = next(c for c in json.loads(body)["checks"] if c["name"] == "config")
        return status == 503 and "failed the signature check" in config["reason"]

    wait_for(config_check, 10, what="the config check to name the signature problem")
    wait_for(lambda: "failed the signature check" in exporter.output(), 5,
             what="the mismatch in the log")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_server_within_one_second(make_env, procs, sig):
    env = make_env("sqlite")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    assert exporter.get("/metrics")[0] == 200  # pool threads exist; must not block exit
    t0 = time.monotonic()
    exporter.signal(sig)
    exporter.proc.wait(5)
    elapsed = time.monotonic() - t0
    assert exporter.proc.returncode == 0
    assert elapsed < 1.0, f"stopped in {elapsed:.2f}s"
