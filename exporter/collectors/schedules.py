"""django_q_schedule_next_run_delay_seconds: how overdue each active schedule is.

The label set is capped: the first ``cap`` distinct names in schedule id
order keep their name, every later schedule is folded into ``other``, which
carries the worst delay among them (so an alert on the metric still fires).
Choosing by id, not by delay, keeps a schedule's label stable from scrape to
scrape (a schedule does not jump between its name and ``other`` as it
becomes due and runs), and identical on every exporter replica, since it
depends only on the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter.collectors import family

OTHER = "other"


def schedule_delays(rows: Iterable, now: float, cap: int) -> dict[str, float]:
    """Label -> seconds past ``next_run`` (0 if not due), at most ``cap`` names + other."""
    delays: dict[str, float] = {}
    named = 0
    for row in sorted(rows, key=lambda r: r.id):
        delay = max(0.0, now - row.next_run) if row.next_run is not None else 0.0
        label = row.name
        if label != OTHER and label not in delays:
            if named < cap:
                named += 1
            else:
                label = OTHER
        delays[label] = max(delays.get(label, 0.0), delay)
    return delays


class ScheduleCollector:
    name = "schedules"

    def __init__(self, source, cap: int = 200, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.cap = cap
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        rows = self.source.read()
        delays = schedule_delays(rows, self.clock(), self.cap)
        fam = family(catalogue.SCHEDULE_DELAY)
        for label in sorted(delays):
            fam.add_metric([label], delays[label])
        return [fam]
