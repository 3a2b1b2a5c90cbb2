"""Per-function figures of the status page: totals from pod-store rows, histogram
quantiles as PromQL computes them, and rates from readings kept in memory."""

from __future__ import annotations

import json
import math

import pytest

from exporter.status.functions import (
    RateMemory,
    function_totals,
    lock_counts,
    quantile,
)

INF = math.inf


def row(family, suffix, value, **labels):
    return (family, suffix, json.dumps(labels, sort_keys=True), value)


def test_quantile_interpolates_inside_its_bucket():
    # 4 observations <= 0.1, 4 in (0.1, 0.5], none above.
    buckets = [(0.1, 4.0), (0.5, 4.0), (INF, 0.0)]
    assert quantile(0.5, buckets) == (pytest.approx(0.1), False)  # rank 4: top of bucket 1
    assert quantile(0.25, buckets) == (pytest.approx(0.05), False)
    assert quantile(0.75, buckets) == (pytest.approx(0.3), False)  # rank 6: half of (0.1, 0.5]


def test_quantile_past_the_last_bound_is_flagged_and_empty_is_none():
    assert quantile(0.95, [(0.1, 1.0), (1.0, 0.0), (INF, 9.0)]) == (1.0, True)
    assert quantile(0.5, [(0.1, 0.0), (INF, 0.0)]) == (None, False)


def test_function_totals_from_store_rows():
    rows = [row("django_q_tasks", "_total", 5, func="a"),
            row("django_q_tasks_failed", "_total", 2, func="a"),
            row("django_q_task_duration_seconds", "_bucket", 3, func="a", le="0.1"),
            row("django_q_task_duration_seconds", "_bucket", 2, func="a", le="+Inf"),
            row("django_q_task_duration_seconds", "_count", 5, func="a"),
            row("django_q_tasks", "_total", 1, func="b"),
            row("django_q_unique_task_lock_lost", "_total", 1, task="t")]
    totals = function_totals([0.1, 1.0], rows)
    assert set(totals) == {"a", "b"}
    assert (totals["a"].finished, totals["a"].failed) == (5, 2)
    assert totals["a"].buckets == ((0.1, 3.0), (1.0, 0.0), (INF, 2.0))
    assert totals["b"].failed == 0 and sum(c for _, c in totals["b"].buckets) == 0


def test_lock_counts_per_task_and_outcome():
    rows = [row("django_q_unique_task_lock_contended", "_total", 3, task="t"),
            row("django_q_unique_task_lock_lost", "_total", 1, task="t"),
            row("django_q_tasks", "_total", 9, func="f")]
    assert lock_counts(rows) == {"t": {"contended": 3.0, "lost": 1.0}}


def test_rates_need_a_second_reading_then_use_the_oldest_in_the_window():
    memory = RateMemory(window=60)
    assert memory.rates(1000.0, {"f": 10}) == ({"f": None}, None)
    rates, span = memory.rates(1000.5, {"f": 11})  # too soon after the first: no rate
    assert span is None
    rates, span = memory.rates(1030.0, {"f": 40})
    assert span == 30 and rates["f"] == pytest.approx(60.0)  # 30 tasks in 30 s
    rates, span = memory.rates(1050.0, {"f": 60, "new": 5})
    assert span == 50 and rates["f"] == pytest.approx(60.0)  # still against t=1000
    assert rates["new"] == pytest.approx(6.0)  # appeared since: all of it is new


def test_rates_after_a_quiet_spell_use_the_newest_older_reading_and_survive_a_reset():
    memory = RateMemory(window=60)
    memory.rates(1000.0, {"f": 100})
    memory.rates(1010.0, {"f": 110})
    rates, span = memory.rates(1310.0, {"f": 5})  # the store was emptied meanwhile
    assert span == 300 and rates["f"] == pytest.approx(1.0)  # 5 new tasks in 300 s
