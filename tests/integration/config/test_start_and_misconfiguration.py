"""Bad input stops at start with one line; an unreachable broker gives a running,
red server that recovers by itself; misconfigurations are named, not silent."""

from __future__ import annotations

import json
import signal
import socket
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
    (["--health-timeout", "2"], {}, "--health-timeout: 2 must stay under 1 s"),
    ([], {"DJANGO_Q_EXPORTER_SCRAPE_TIMEOUT": "0.5"},
     "DJANGO_Q_EXPORTER_SCRAPE_TIMEOUT: 0.5 must be at least the backend timeout"),
    (["--max-connections", "many"], {}, "--max-connections: 'many' is not an integer"),
    (["--listen-address", "a b:9847"], {}, "--listen-address: 'a b' is not an IP address"),
    (["--listen-address", "192.0.2.1:9847"], {},
     "--listen-address: cannot listen on 192.0.2.1:9847: Cannot assign requested address"),
    (["--listen-address", "no-such-host.invalid:9847"], {},
     "--listen-address: cannot listen on no-such-host.invalid:9847"),
    ([], {"REDIS_URL": "redis://:pw@127.0.0.1:six/0"},
     "Q_CLUSTER['redis'] <unparseable url>: Port could not be cast"),
    ([], {"REDIS_URL": "http://127.0.0.1:6379/0"}, "Redis URL must specify one of"),
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


def test_unknown_flag_and_management_command_are_one_line(make_env):
    env = make_env("sqlite")
    result = _serve(env, "--listen-adress", "127.0.0.1:9847")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "usage error: unrecognized arguments: --listen-adress" in result.stderr
    command = subprocess.run([PYTHON, "manage.py", "django_q_probettp", "--listen-address",
                              "127.0.0.1:70000"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
    assert command.returncode == 2, command.stderr
    assert command.stderr.strip().splitlines() == [
        "CommandError: configuration error: --listen-address: port 70000 is outside 0-65535"]


def test_port_in_use_is_one_line(make_env, procs):
    env = make_env("sqlite")
    first = procs.exporter(env)
    first.wait_ready_to_serve()
    result = _serve(env, "--listen-address", f"127.0.0.1:{first.port}")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr


def _check(exporter, path: str, name: str) -> dict:
    _, body, _ = exporter.get(f"{path}?verbose=1")
    return next(c for c in json.loads(body)["checks"] if c["name"] == name)


def test_unreachable_redis_at_start_outage_and_recovery(make_env, procs, tmp_path):
    """Redis down at start: the server runs, red but alive. Redis up: green without a
    restart. Redis down again under a running cluster: readiness fails, liveness never."""
    port = free_port()  # nobody listens here until the test starts a redis-server on it
    env = make_env("redis", REDIS_URL=f"redis://127.0.0.1:{port}/0", Q_WORKERS="1")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    t0 = time.monotonic()
    status, body, _ = exporter.get("/healthz")
    assert (status, body) == (503, "false")
    assert time.monotonic() - t0 < 1.0
    assert exporter.get("/livez")[0] == 200  # a broker outage never fails liveness
    assert exporter.value("django_q_broker_up", broker="redis") == 0
    assert exporter.value("django_q_exporter_collector_success", collector="queue") == 0
    broker = _check(exporter, "/healthz", "broker")
    assert not broker["ok"] and "broker did not answer" in broker["reason"]

    server = RedisServer(tmp_path / "late-redis", port=port).start()
    cluster = None
    try:
        wait_for(lambda: exporter.value("django_q_broker_up", broker="redis") == 1, 10,
                 what="broker_up 1 after Redis came up")
        cluster = procs.qcluster(env)
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 30, what="/healthz 200")

        server.stop()  # an outage under a running cluster (its processes stay up)
        wait_for(lambda: exporter.get("/healthz")[:2] == (503, "false"), 3,
                 what="/healthz 503 during the outage")
        # The outage fails readiness through the stats check; cluster_seen keeps the
        # verdict of the last read that worked (an outage says nothing new about the
        # cluster, so an alert built on it neither flips nor resolves); liveness holds.
        wait_for(lambda: not _check(exporter, "/healthz", "stats")["ok"], 15,
                 what="the stats check to fail during the outage")
        seen = _check(exporter, "/healthz", "cluster_seen")
        assert seen["ok"] and "last known: Stats unreadable" in seen["reason"], seen
        assert exporter.get("/livez")[:2] == (200, "true")
        sentinel = _check(exporter, "/livez", "sentinel_process")
        assert sentinel["ok"] and sentinel["reason"] == "sentinel process alive"
        assert exporter.value("django_q_broker_up", broker="redis") == 0

        server = RedisServer(tmp_path / "late-redis", port=port).start()
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 15,
                 what="/healthz 200 after Redis came back")
        assert exporter.value("django_q_broker_up", broker="redis") == 1
    finally:
        if cluster is not None:
            cluster.stop()  # before Redis, or qcluster hangs on its shutdown writes
        server.stop()
    log = exporter.output()
    assert "Traceback" not in log
    assert all(line[:4].isdigit() for line in log.splitlines()), "one line per log event"
    assert exporter.alive()


def test_password_masked_on_page_metrics_and_log(make_env, procs, tmp_path):
    secret = "s3cr3t-pa55"
    server = RedisServer(tmp_path / "auth-redis", extra_args=("--requirepass", secret)).start()
    try:
        env = make_env("redis", REDIS_URL=f"redis://:{secret}@127.0.0.1:{server.port}/0")
        exporter = procs.exporter(env)
        exporter.wait_ready_to_serve()
        cluster = procs.qcluster(env)
        wait_for(lambda: exporter.get("/healthz")[0] == 200, 30, what="/healthz 200")
        status, page, _ = exporter.get("/")
        assert status == 200
        assert f"redis://:***@127.0.0.1:{server.port}/0" in page
        status_json = exporter.get("/status.json")[1]
        clusters = json.loads(status_json)["clusters"]["rows"]
        assert [(c["cluster_name"], c["host"], c["up"]) for c in clusters] == [
            (env["DJANGO_Q_NAME"], socket.gethostname(), True)]
        for text in (page, status_json, exporter.metrics_text(),
                     exporter.get("/healthz?verbose=1")[1], exporter.output()):
            assert secret not in text
        cluster.stop()  # before Redis, or qcluster hangs on its shutdown writes
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
