"""django_q_unique_task_*: state of every registered unique task (cluster-wide).

Read from the shared cache, so every exporter replica publishes the same
values (aggregate with ``max by (task)``). The lock counters are per pod and
served by the pod-store collector; given the pod store, this collector makes
them exist at 0 for every registered task, so a task that never ran in this
pod reads 0 rather than nothing (``increase()`` then sees its first run).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors import add

log = logging.getLogger("exporter")


class UniqueTaskCollector:
    name = "unique_tasks"

    def __init__(self, source, pod_store=None) -> None:
        self.source = source
        self.pod_store = pod_store
        self._seeded: set[str] = set()

    def collect(self) -> Iterable[Metric]:
        snap = self.source.read()
        self._seed([t.name for t in snap.tasks])
        running = GaugeMetricFamily("django_q_unique_task_running",
                                    "1 while a run of the task is in progress (its holder "
                                    "record is present)", labels=["task"])
        age = GaugeMetricFamily("django_q_unique_task_heartbeat_age_seconds",
                                "Seconds since the running holder's last heartbeat, on the "
                                "clock the record was written with (Redis TIME)",
                                labels=["task"])
        timeout = GaugeMetricFamily("django_q_unique_task_heartbeat_timeout_seconds",
                                    "Heartbeat staleness limit (the lock expiry)",
                                    labels=["task"])
        success = GaugeMetricFamily("django_q_unique_task_last_success_timestamp_seconds",
                                    "End of the last run that completed without error, "
                                    "Unix time", labels=["task"])
        duration = GaugeMetricFamily("django_q_unique_task_last_duration_seconds",
                                     "Length of the last completed run", labels=["task"])
        for task in snap.tasks:
            labels = {"task": task.name}
            add(running, labels, 1 if task.running else 0)
            add(timeout, labels, task.timeout)
            if task.holder is not None and task.holder.last_beat is not None:
                add(age, labels, max(0.0, snap.now - task.holder.last_beat))
            if task.last_success is not None:
                add(success, labels, task.last_success)
            if task.last_duration is not None:
                add(duration, labels, task.last_duration)
        return [running, age, timeout, success, duration]

    def _seed(self, names: list[str]) -> None:
        """Lock counters at 0 for newly seen task names: one pod-store write per new name
        set. A failure (e.g. a read-only store) is logged once for those names and never
        fails the scrape; the workers seed the same counters when they register."""
        new = [n for n in names if n not in self._seeded]
        if self.pod_store is None or not new:
            return
        from rsr_tasks.unique import contract, counters

        try:
            counters.declare(self.pod_store)
            self.pod_store.apply([u for n in new for u in
                                  counters.updates(self.pod_store, n, contract.COUNTERS, 0.0)])
        except Exception as exc:
            log.warning("could not seed unique-task counters: %s", exc)
        self._seeded.update(new)
