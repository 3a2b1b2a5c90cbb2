"""Pure decisions of the foundation, no I/O: config parsing and its error lines, the
cluster tracker's grace / retention / expected hosts, health checks, probe URL defaults.

(More of the same in test_unit_decisions.py; these cover the edges and the messages.)
"""

from __future__ import annotations

import os
import subprocess

import pytest

from exporter import health
from exporter.__main__ import build_parser, default_probe_url
from exporter.config import OPTIONS, Config, ConfigError, parse
from exporter.errors import describe, one_line
from exporter.model import ClusterStat
from exporter.sentinel import SentinelWatch
from exporter.tracker import ClusterTracker
from exporter.urls import mask_url


def stat(host="h1", status="idle", workers=(11, 12), ts=1000.0, sentinel=10, cid="c1",
         task_q=0):
    return ClusterStat("rsr", host, cid, status, tuple(workers), 9, sentinel, 13, 14, 0,
                       900.0, ts, task_q, 0)


def error_of(argv, env=None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(argv, env or {})
    return str(info.value)


# config -------------------------------------------------------------------------------
def test_defaults_without_flags_or_environment():
    cfg = parse([], {})
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 9847)
    assert cfg.django_settings is None and cfg.cluster_name is None
    assert (cfg.stat_grace, cfg.retention, cfg.startup_grace) == (5.0, 900.0, 60.0)
    assert parse([], {"DJANGO_SETTINGS_MODULE": "x.settings"}).django_settings == "x.settings"


def test_every_option_has_an_environment_fallback_named_in_help():
    help_text = " ".join(build_parser()._subparsers._group_actions[0]
                         .choices["serve"].format_help().split())
    for opt in OPTIONS:
        assert opt.env == "DJANGO_Q_EXPORTER_" + opt.name.upper().replace("-", "_")
        assert f"--{opt.name}" in help_text and f"[env {opt.env}]" in help_text


@pytest.mark.parametrize("argv, env, message", [
    (["--stat-grace", "soon"], {}, "--stat-grace: 'soon' is not a number of seconds"),
    ([], {"DJANGO_Q_EXPORTER_STAT_GRACE": "0"},
     "DJANGO_Q_EXPORTER_STAT_GRACE: '0' must be a positive number of seconds"),
    (["--schedule-cap", "1.5"], {}, "--schedule-cap: '1.5' is not an integer"),
    (["--log-level", "chatty"], {}, "--log-level: 'chatty' is not one of DEBUG, INFO"),
    (["--listen-address", "host:"], {}, "--listen-address: port '' is not a number"),
    (["--listen-address", "10.0.0.1:65536"], {}, "--listen-address: port 65536 is outside"),
    ([], {"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "bad_host:1"},
     "DJANGO_Q_EXPORTER_LISTEN_ADDRESS: 'bad_host' is not an IP address or host name"),
    (["--cluster-name", "  "], {}, "--cluster-name: empty value"),
    (["--health-timeout", "1"], {}, "--health-timeout: 1 must stay under 1 s"),
    ([], {"DJANGO_Q_EXPORTER_HEALTH_TIMEOUT": "1.5"},
     "DJANGO_Q_EXPORTER_HEALTH_TIMEOUT: 1.5 must stay under 1 s"),
    (["--backend-timeout", "6"], {},
     "--scrape-timeout: 5 must be at least the backend timeout (6)"),
])
def test_errors_name_the_flag_or_variable_in_one_line(argv, env, message):
    text = error_of(argv, env)
    assert text.startswith(message), text
    assert "\n" not in text


def test_flag_beats_environment_even_when_the_environment_is_invalid():
    cfg = parse(["--retention", "30"], {"DJANGO_Q_EXPORTER_RETENTION": "never"})
    assert cfg.retention == 30.0


def test_log_level_and_choice_are_case_insensitive():
    assert parse(["--log-level", "debug"], {}).log_level == "DEBUG"
    assert parse(["--auth-probes", "YES"], {}).auth_probes == "yes"


def test_listen_address_wildcard_and_ipv6():
    cfg = parse(["--listen-address", "[::]:9000"], {})
    assert (cfg.listen_host, cfg.listen_port) == ("::", 9000)
    cfg = parse(["--listen-address", "[::1]:9000"], {})
    assert (cfg.listen_host, cfg.listen_port) == ("::1", 9000)


@pytest.mark.parametrize("env, url", [
    ({}, "http://127.0.0.1:9847/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9100"}, "http://127.0.0.1:9100/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "9101"}, "http://127.0.0.1:9101/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9100", "PROBE_PORT": "9200",
      "PROBE_HOST": "10.0.0.2", "PROBE_PATH": "/livez"}, "http://10.0.0.2:9200/livez"),
])
def test_check_default_url_matches_worker_sh(env, url):
    """`python -m exporter check` without a URL probes what k8s/worker.sh probes."""
    assert default_probe_url(env) == url


def test_one_line_errors_and_masking():
    assert one_line("connection failed:\n\tIs the server running?") == \
        "connection failed: Is the server running?"
    assert len(one_line("x" * 500)) == 300
    assert describe(OSError("a\nb")) == "OSError: a b"
    assert mask_url("redis://:pw@h:notaport/0") == "<unparseable url>"
    assert mask_url("rediss://user:pw@h/0") == "rediss://user:***@h/0"


# tracker ------------------------------------------------------------------------------
def test_grace_and_retention_boundaries():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat()], now=0)
    (v,) = t.update([], now=5)
    assert v.up and not v.present  # exactly at the grace: still up
    (v,) = t.update([], now=5.01)
    assert not v.up and v.stat is not None  # down, last Stat kept for the page
    assert len(t.update([], now=60)) == 1  # exactly at the retention: still reported
    assert t.update([], now=60.01) == []


def test_a_cluster_that_comes_back_reads_up_with_its_new_identity():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat(cid="first")], now=0)
    (v,) = t.update([], now=20)
    assert not v.up
    (v,) = t.update([stat(cid="second", ts=1020)], now=21)
    assert v.up and v.stat.cluster_id == "second" and v.last_seen == 21


def test_hosts_are_tracked_independently():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat("a"), stat("b")], now=0)
    views = {v.host: v for v in t.update([stat("b", ts=1010)], now=10)}
    assert not views["a"].up and views["b"].up


def test_expected_host_seen_then_lost_reads_down_but_stays():
    t = ClusterTracker("rsr", grace=5, retention=10, expected_hosts=["h1"])
    (v,) = t.update([], now=0)
    assert not v.up and v.stat is None and v.last_seen is None
    (v,) = t.update([stat()], now=1)
    assert v.up
    (v,) = t.update([], now=1000)
    assert not v.up and v.stat is not None


# health -------------------------------------------------------------------------------
CFG = Config(django_settings="x", hostname="h1")


def observation(now=100.0, local_stat=None, seen=100.0, **kw) -> health.HealthObservation:
    t = ClusterTracker("rsr", grace=CFG.stat_grace, retention=CFG.retention)
    local = None
    if local_stat is not None:
        t.update([local_stat], now=seen)
        (local,) = t.update([], now=now)
    base = dict(now=now, process_started=0.0, local_host="h1", cluster_name="rsr",
                local=local, sentinel_alive=True if local else None)
    base.update(kw)
    return health.HealthObservation(**base)


def reasons(report) -> dict[str, str]:
    return {c.name: c.reason for c in report.checks if not c.ok}


def test_stale_local_stat_is_not_ready_and_says_why():
    failed = reasons(health.readiness(observation(local_stat=stat(), seen=90.0), CFG))
    assert set(failed) == {"cluster_seen"}
    assert failed["cluster_seen"].startswith("no Stat from h1 for 10.0s (grace 5s)")


def test_stopping_cluster_and_unreadable_stats_are_named():
    failed = reasons(health.readiness(observation(local_stat=stat(status="stopping")), CFG))
    assert failed == {"status": "status stopping (ready needs idle or working)"}
    failed = reasons(health.readiness(observation(stats_error="TimeoutError: t/o"), CFG))
    assert failed["stats"] == "cluster Stats unreadable: TimeoutError: t/o"


def test_every_misconfiguration_is_named_in_the_config_check():
    obs = observation(local_stat=stat(), problems=("cache 'default' is a per-process "
                                                   "LocMemCache",), bad_signatures=3)
    failed = reasons(health.readiness(obs, CFG))
    assert set(failed) == {"config"}
    assert "LocMemCache" in failed["config"] and "3 cluster Stat(s) failed" in failed["config"]


def test_liveness_ignores_everything_but_a_sentinel_seen_dying():
    broken = observation(local_stat=stat(), seen=0.0, stats_error="down", broker_error="down",
                         problems=("bad",), sentinel_alive=None)
    assert not health.readiness(broken, CFG).ok
    report = health.liveness(broken, CFG)
    assert report.ok and "not judged" in report.checks[0].reason
    dead = observation(local_stat=stat(), sentinel_alive=False)
    assert reasons(health.liveness(dead, CFG)) == {
        "sentinel_process": "sentinel process 10 of the local cluster is gone"}


# sentinel judgement (reads /proc for real pids; no backend) -----------------------------
def test_sentinel_is_judged_only_after_it_was_seen_alive():
    watch = SentinelWatch()
    child = subprocess.Popen(["sleep", "30"])
    try:
        gone = subprocess.Popen(["true"])
        gone.wait()
        assert watch.judge(gone.pid) is None  # never seen alive here: not judged
        assert watch.judge(child.pid) is True
    finally:
        child.kill()
        child.wait()
    assert watch.judge(child.pid) is False  # seen alive, now gone
    assert watch.judge(os.getpid()) is True  # a new sentinel (cluster restart) replaces it
    assert watch.judge(child.pid) is None
