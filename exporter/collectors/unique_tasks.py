"""django_q_unique_task_*: state of every registered unique task (cluster-wide)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors import add


class UniqueTaskCollector:
    name = "unique_tasks"

    def __init__(self, source) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        snap = self.source.read()
        running = GaugeMetricFamily("django_q_unique_task_running",
                                    "1 while a run of the task is in progress (holder record "
                                    "present)", labels=["task"])
        age = GaugeMetricFamily("django_q_unique_task_heartbeat_age_seconds",
                                "Seconds since the running holder's last heartbeat",
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
            add(running, labels, 1 if task.holder else 0)
            add(timeout, labels, task.timeout)
            if task.holder and task.last_beat is not None:
                add(age, labels, max(0.0, snap.now - task.last_beat))
            if task.last_success is not None:
                add(success, labels, task.last_success)
            if task.last_duration is not None:
                add(duration, labels, task.last_duration)
        return [running, age, timeout, success, duration]
