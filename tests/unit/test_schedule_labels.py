"""The schedule label cap: stable names by id, the rest folded into "other" with the worst
delay. Pure."""

from __future__ import annotations

from exporter.collectors.schedules import schedule_delays
from exporter.sources.schedules import ScheduleRow


def rows(n, now, overdue_ids=()):
    return [ScheduleRow(i, f"s{i}", now - 100 if i in overdue_ids else now + 60)
            for i in range(n)]


def test_schedule_cap_keeps_first_names_by_id_and_other_takes_worst_delay():
    now = 50_000.0
    delays = schedule_delays(reversed(rows(300, now, overdue_ids={7, 250})), now, cap=200)
    assert len(delays) == 201
    assert set(delays) == {f"s{i}" for i in range(200)} | {"other"}
    assert delays["s7"] == 100 and delays["s8"] == 0
    assert delays["other"] == 100  # s250 is folded into other with its delay


def test_schedule_labels_do_not_move_when_a_schedule_becomes_due_or_runs():
    now = 50_000.0
    before = set(schedule_delays(rows(300, now), now, cap=10))
    after = set(schedule_delays(rows(300, now, overdue_ids={299, 5}), now, cap=10))
    assert before == after


def test_unscheduled_next_run_reads_zero_and_duplicate_names_merge():
    now = 50_000.0
    delays = schedule_delays([ScheduleRow(1, "a", None), ScheduleRow(2, "a", now - 5),
                              ScheduleRow(3, "other", now - 9)], now, cap=1)
    assert delays == {"a": 5.0, "other": 9.0}
