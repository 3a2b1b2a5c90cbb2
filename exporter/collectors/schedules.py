"""django_q_schedule_next_run_delay_seconds: how overdue each active schedule is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

OTHER = "other"


class ScheduleCollector:
    name = "schedules"

    def __init__(self, source, cap: int = 200, clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.cap = cap
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        now = self.clock()
        delays: dict[str, float] = {}
        for row in self.source.read():
            delay = max(0.0, now - row.next_run) if row.next_run is not None else 0.0
            # Past the cap, the rest share one "other" series holding their worst delay.
            label = row.name if (row.name in delays or len(delays) < self.cap) else OTHER
            delays[label] = max(delays.get(label, 0.0), delay)
        fam = GaugeMetricFamily("django_q_schedule_next_run_delay_seconds",
                                "Seconds an active schedule is past its next_run (0 if not due)",
                                labels=["schedule"])
        for label in sorted(delays):
            fam.add_metric([label], delays[label])
        return [fam]
