"""django_q_broker_up and django_q_queue_*: the broker as seen by one round trip."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter.collectors import family
from exporter.sources.queue import QueueSource


def _broker_up(broker: str, value: int) -> Metric:
    fam = family(catalogue.BROKER_UP)
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
        size = family(catalogue.QUEUE_SIZE)
        size.add_metric(labels, reading.size)
        age = family(catalogue.QUEUE_OLDEST_AGE)
        oldest = 0.0
        if reading.size and reading.oldest_enqueued_at is not None:
            oldest = max(0.0, self.clock() - reading.oldest_enqueued_at)
        age.add_metric(labels, oldest)
        families = [_broker_up(self.broker, 1), size, age]
        if reading.in_flight is not None:
            flight = family(catalogue.QUEUE_IN_FLIGHT)
            flight.add_metric(labels, reading.in_flight)
            families.append(flight)
        return families

    def fallback(self) -> Iterable[Metric]:
        return [_broker_up(self.broker, 0)]
