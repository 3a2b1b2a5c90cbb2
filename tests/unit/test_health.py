"""Readiness and liveness: pure checks on an observation, a clock and the config; and the
sentinel judgement (reads /proc for real pids, no backend)."""

from __future__ import annotations

import os
import subprocess

from exporter import health
from exporter.config import Config
from exporter.sentinel import SentinelWatch
from exporter.tracker import ClusterTracker
from tests.factories import stat

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


def failing(report) -> set[str]:
    return {c.name for c in report.checks if not c.ok}


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


def test_ready_when_everything_holds():
    report = health.readiness(observation(local_stat=stat(), seen=100.0), CFG)
    assert report.ok, report


def test_not_ready_reasons():
    def failing_with(**kw) -> set[str]:
        kw.setdefault("local_stat", stat())
        return failing(health.readiness(observation(**kw), CFG))

    assert failing_with(local_stat=stat(status="starting")) == {"status"}
    assert failing_with(local_stat=stat(workers=())) == {"workers"}
    assert failing_with(broker_error="t/o") == {"broker"}
    assert "cluster_seen" in failing_with(seen=90)
    assert failing_with(bad_signatures=2) == {"config"}
    assert failing_with(sentinel_alive=False) == {"sentinel_process"}


def test_startup_grace_reason_then_plain_failure():
    early = health.readiness(observation(now=10), CFG)
    reason = next(c.reason for c in early.checks if c.name == "cluster_seen")
    assert not early.ok and "startup grace" in reason
    late = health.readiness(observation(now=CFG.startup_grace + 1, other_names=("other",)), CFG)
    reason = next(c.reason for c in late.checks if c.name == "cluster_seen")
    assert "since start" in reason and "other" in reason


def test_liveness_only_fails_for_a_dead_local_sentinel():
    assert health.liveness(observation(broker_error="down", stats_error="down"), CFG).ok
    dead = observation(local_stat=stat(), sentinel_alive=False)
    assert not health.liveness(dead, CFG).ok


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
