"""The per-pod readiness series and the cluster_seen verdict during a Stats outage."""

from __future__ import annotations

from exporter import health
from exporter.collectors.local import LocalClusterCollector
from exporter.config import Config
from exporter.model import ClusterStat
from exporter.tracker import ClusterTracker

CFG = Config(django_settings="x", hostname="h1")


def stat(ts: float, status: str = "working") -> ClusterStat:
    return ClusterStat("rsr", "h1", "c1", status, (11, 12), 9, 10, 13, 14, 0, 900.0, ts, 0, 0)


def observation(now: float, seen_at: float | None, **kw) -> health.HealthObservation:
    tracker = ClusterTracker("rsr", grace=CFG.stat_grace, retention=CFG.retention)
    local = None
    if seen_at is not None:
        tracker.update([stat(seen_at)], now=seen_at)
        (local,) = tracker.update([], now=now)
    return health.HealthObservation(now=now, process_started=0.0, local_host="h1",
                                    cluster_name="rsr", local=local,
                                    sentinel_alive=True if local else None, **kw)


def check(o: health.HealthObservation, name: str) -> bool:
    return next(c.ok for c in health.readiness(o, CFG).checks if c.name == name)


def test_outage_keeps_the_last_known_verdict_both_ways():
    """Stats unreadable for 60 s: a cluster seen fresh at the last good read stays
    'seen' (no false ClusterDown), and one already stale stays failing (a firing
    ClusterDown does not resolve and re-fire)."""
    up_before = observation(160.0, seen_at=100.0, stats_error="timeout", stats_read_at=100.0)
    assert check(up_before, "cluster_seen")
    assert not check(up_before, "stats")
    down_before = observation(160.0, seen_at=90.0, stats_error="timeout",
                              stats_read_at=100.0)
    assert not check(down_before, "cluster_seen")
    # Without the outage the same Stat is plainly stale.
    assert not check(observation(160.0, seen_at=100.0, stats_read_at=160.0), "cluster_seen")


def test_never_read_is_not_judged_but_rejected_stats_are():
    """An exporter started during the outage cannot judge the cluster (readiness fails
    on 'stats'); one that reads Stats but cannot verify any fails cluster_seen."""
    assert check(observation(100.0, None, stats_error="refused"), "cluster_seen")
    rejected = observation(CFG.startup_grace + 1, None, bad_signatures=2,
                           stats_read_at=CFG.startup_grace + 1)
    assert not check(rejected, "cluster_seen") and not check(rejected, "config")


def test_collector_publishes_the_readiness_decision_for_its_own_host():
    o = observation(100.0, seen_at=99.0, stats_read_at=100.0)
    families = {f.name: f for f in LocalClusterCollector(lambda: o, CFG, "rsr").collect()}
    (ready,) = families["django_q_local_cluster_ready"].samples
    assert ready.labels == {"cluster_name": "rsr", "host": "h1"} and ready.value == 1
    checks = {s.labels["check"]: s.value for s in families["django_q_readiness_check"].samples}
    assert checks == {c.name: 1.0 for c in health.READINESS}
    stuck = observation(100.0, seen_at=99.0, stats_read_at=100.0, broker_error="t/o")
    families = {f.name: f for f in LocalClusterCollector(lambda: stuck, CFG, "rsr").collect()}
    assert families["django_q_local_cluster_ready"].samples[0].value == 0
    checks = {s.labels["check"]: s.value for s in families["django_q_readiness_check"].samples}
    assert checks["broker"] == 0 and checks["cluster_seen"] == 1
