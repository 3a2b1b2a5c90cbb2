"""Forgetting unique tasks not seen for a period: the rule (pure) and the collector that
applies it (fed a fixed snapshot, no server)."""

from __future__ import annotations

import pytest

from djq_contract import forgetting
from exporter.collectors.unique_tasks import UniqueTaskCollector
from exporter.sources.unique import Snapshot, parse

DAY = 86400.0


def test_default_and_validated_period():
    assert forgetting.forget_after(None) == forgetting.forget_after({}) == 14 * DAY
    assert forgetting.forget_after({"forget_after": "30"}) == 30.0
    for bad in (0, -1, "soon", float("inf"), float("nan"), True, [3]):
        with pytest.raises(ValueError, match=r"RSR_UNIQUE_TASKS\['forget_after'\]"):
            forgetting.forget_after({"forget_after": bad})


def test_last_seen_is_the_latest_registration_or_run_time():
    entry = {"expiry": 5, "seen": 100.0}
    assert forgetting.last_seen(entry, {}) == 100.0
    assert forgetting.last_seen(entry, {"started": 90.0, "last_end": 150.0}) == 150.0
    assert forgetting.last_seen({}, {"started": 200.0, "beat": 260.0}) == 260.0
    assert forgetting.last_seen({"expiry": 5}, {"last_success": 300.0}) is None, \
        "last_success alone is not a run time the writers refresh"
    assert forgetting.last_seen({"seen": "junk"}, {"started": None}) is None


def test_forgotten_only_after_the_period_and_never_without_a_time():
    assert not forgetting.forgotten(100.0, 100.0 + 60, 60)
    assert forgetting.forgotten(100.0, 100.0 + 60.001, 60)
    assert not forgetting.forgotten(None, 1e12, 60)


class Fixed:
    """A source that returns one snapshot (the collector's input, as a read would give)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def read(self) -> Snapshot:
        return self.snapshot


def series(families) -> set[tuple[str, str]]:
    return {(s.name, s.labels["task"]) for f in families for s in f.samples}


def test_collector_leaves_out_forgotten_tasks_and_their_counter_baseline():
    now = 10_000.0
    tasks = (
        parse("live", {"expiry": 5, "seen": now - 3600}, {"last_end": now - 30,
                                                          "last_success": now - 30}),
        parse("running", {"expiry": 5, "seen": now - 5000}, {
            "token": "t", "host": "h", "pid": 1, "started": now - 4000, "beat": now - 1}),
        parse("retired", {"expiry": 5, "seen": now - 7200}, {"last_end": now - 7000,
                                                             "last_success": now - 7000}),
        parse("legacy", {"expiry": 5}, {}),
    )
    collector = UniqueTaskCollector(Fixed(Snapshot(now, "redis", tasks, 2)),
                                    forget_after=3600)
    shown = series(collector.collect())
    assert {t for _, t in shown} == {"live", "running", "legacy"}
    assert ("django_q_unique_task_last_success_timestamp_seconds", "live") in shown
    assert {dict(labels)["task"] for _, _, labels in collector.lock_counter_baseline()} == \
        {"live", "running", "legacy"}
    keep_all = UniqueTaskCollector(Fixed(Snapshot(now, "redis", tasks, 2)))
    assert {t for _, t in series(keep_all.collect())} == {"live", "running", "retired",
                                                          "legacy"}
