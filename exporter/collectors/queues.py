"""django_q_broker_up and django_q_queue_*: the broker as seen by one round trip."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.sources.queue import QueueSource


def _broker_up(broker: str, value: int) -> GaugeMetricFamily:
    fam = GaugeMetricFamily("django_q_broker_up",
                            "1 if the broker answered within the backend timeout",
                            labels=["broker"])
    fam.add_metric([broker], value)
    return fam


class QueueCollector:
    name = "queue"

    def __init__(self, source: QueueSource, broker: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.broker = broker
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        reading = self.source.read()
        labels = [reading.queue]
        size = GaugeMetricFamily("django_q_queue_size", "Tasks waiting in the broker",
                                 labels=["queue"])
        size.add_metric(labels, reading.size)
        age = GaugeMetricFamily("django_q_queue_oldest_task_age_seconds",
                                "Age of the task at the head of the queue, 0 if empty",
                                labels=["queue"])
        oldest = 0.0
        if reading.size and reading.oldest_enqueued_at is not None:
            oldest = max(0.0, self.clock() - reading.oldest_enqueued_at)
        age.add_metric(labels, oldest)
        families = [_broker_up(self.broker, 1), size, age]
        if reading.in_flight is not None:
            flight = GaugeMetricFamily("django_q_queue_in_flight",
                                       "Tasks leased to a cluster, not yet acknowledged (a failed "
                                       "task stays leased unless Q_CLUSTER ack_failures or "
                                       "max_attempts)",
                                       labels=["queue"])
            flight.add_metric(labels, reading.in_flight)
            families.append(flight)
        return families

    def fallback(self) -> Iterable[Metric]:
        return [_broker_up(self.broker, 0)]
