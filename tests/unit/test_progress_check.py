"""The stuck-cluster readiness check, as pure decisions.

The clock is the observation's ``now``; nothing here does I/O. The same
behaviour is tested against a real cluster (SIGSTOPped monitor) in
tests/integration/schedules/test_overdue_and_stuck.py.
"""

from __future__ import annotations

from exporter.config import Config
from exporter.health import HealthObservation, ProgressCheck
from exporter.model import ClusterStat
from exporter.tracker import ClusterView

START = 1_000.0  # cluster start (Stat.tob)


def obs(now, queue=0, task_q=0, done_q=0, finished=None, pending_since=None, timeout=30.0,
        local=True):
    stat = ClusterStat("rsr", "h1", "c1", "working", (11, 12), 9, 10, 13, 14, 0, START, now,
                       task_q, done_q)
    view = ClusterView("rsr", "h1", stat, True, now, True) if local else None
    return HealthObservation(now=now, process_started=0.0, local_host="h1", cluster_name="rsr",
                             local=view, queue_size=queue, last_task_finished=finished,
                             pending_since=pending_since, task_timeout=timeout)


CHECK = ProgressCheck()
CFG = Config(hostname="h1", progress_margin=10.0)  # default limit: timeout 30 + 10 = 40 s


def test_idle_cluster_without_work_passes_however_long_since_last_task():
    ok, reason = CHECK.evaluate(obs(START + 86_400, finished=START + 1), CFG)
    assert ok and reason == "no work pending"


def test_work_that_just_arrived_on_a_long_idle_cluster_is_not_failed():
    now = START + 10_000
    ok, reason = CHECK.evaluate(obs(now, queue=3, finished=START + 5, pending_since=now - 1),
                                CFG)
    assert ok, reason


def test_pending_longer_than_timeout_plus_margin_fails_with_the_numbers():
    now = START + 10_000
    fresh = obs(now, queue=3, finished=START + 5, pending_since=now - 40)
    assert CHECK.evaluate(fresh, CFG)[0]  # exactly at the limit: still ok
    ok, reason = CHECK.evaluate(obs(now, queue=3, finished=START + 5, pending_since=now - 41),
                                CFG)
    assert not ok
    assert "queue 3" in reason and "no task finished for 41s" in reason
    assert "limit 40s" in reason


def test_recent_finished_task_counts_as_progress_while_work_stays_pending():
    now = START + 10_000
    ok, _ = CHECK.evaluate(obs(now, queue=50, finished=now - 39, pending_since=now - 3_000), CFG)
    assert ok  # a long backlog that keeps draining is not stuck


def test_hung_monitor_shows_as_done_queue_growth_without_broker_backlog():
    now = START + 10_000
    ok, reason = CHECK.evaluate(obs(now, done_q=7, finished=now - 100, pending_since=now - 60),
                                CFG)
    assert not ok and "done_q 7" in reason


def test_in_memory_task_queue_alone_counts_as_pending():
    now = START + 10_000
    assert not CHECK.evaluate(obs(now, task_q=2, finished=now - 100, pending_since=now - 60),
                              CFG)[0]


def test_cluster_start_counts_as_progress():
    ok, _ = CHECK.evaluate(obs(START + 30, queue=5, pending_since=START - 500), CFG)
    assert ok  # a cluster that started 30 s ago with a backlog gets its full limit


def test_never_a_finished_task_names_the_pod_store():
    now = START + 10_000
    ok, reason = CHECK.evaluate(obs(now, queue=1, pending_since=now - 100), CFG)
    assert not ok and "DJANGO_Q_EXPORTER_POD_STORE" in reason


def test_explicit_limit_overrides_timeout_plus_margin():
    now = START + 10_000
    cfg = Config(hostname="h1", progress_limit=5.0)
    assert not CHECK.evaluate(obs(now, queue=1, finished=now - 6, pending_since=now - 6), cfg)[0]
    assert CHECK.evaluate(obs(now, queue=1, finished=now - 4, pending_since=now - 6), cfg)[0]


def test_cluster_without_timeout_uses_300s_plus_margin():
    now = START + 10_000
    base = dict(queue=1, pending_since=now - 1_000, timeout=None)
    assert CHECK.evaluate(obs(now, finished=now - 310, **base), CFG)[0]
    assert not CHECK.evaluate(obs(now, finished=now - 311, **base), CFG)[0]
