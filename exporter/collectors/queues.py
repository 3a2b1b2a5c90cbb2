"""django_q_broker_up and django_q_queue_*: every queue of the site, labels capped.

The ``queue`` label set is capped like the schedule label: the watched
cluster's own queue always keeps its name, then the first ``cap - 1`` other
names in name order; every later queue is folded into ``other`` (sizes and
leases summed, the oldest head kept), so a backlog anywhere still shows. Name
order depends only on the broker's content, so every replica agrees and a
queue does not jump between its name and ``other`` as its size changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter.collectors import family
from exporter.model import QueueReading
from exporter.sources.queue import QueueSource

OTHER = "other"


def _broker_up(broker: str, value: int) -> Metric:
    fam = family(catalogue.BROKER_UP)
    fam.add_metric([broker], value)
    return fam


def _oldest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def cap_queues(readings: Sequence[QueueReading], own: str, cap: int) -> list[QueueReading]:
    """At most ``cap`` named queues (``own`` first, then by name) plus ``other``."""
    ordered = sorted(readings, key=lambda r: (r.queue != own, r.queue))
    kept = [r for r in ordered[:cap] if r.queue != OTHER]
    rest = [r for r in ordered if r not in kept]
    if not rest:
        return kept
    in_flight = [r.in_flight for r in rest if r.in_flight is not None]
    oldest = None
    for r in rest:
        if r.size:
            oldest = _oldest(oldest, r.oldest_enqueued_at)
    kept.append(QueueReading(OTHER, sum(r.size for r in rest),
                             sum(in_flight) if in_flight else None, oldest))
    return kept


class QueueCollector:
    name = "queue"

    def __init__(self, source: QueueSource, broker: str, own: str = "", cap: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.broker = broker
        self.own = own
        self.cap = cap
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        readings = cap_queues(self.source.read(), self.own, self.cap)
        now = self.clock()
        size = family(catalogue.QUEUE_SIZE)
        age = family(catalogue.QUEUE_OLDEST_AGE)
        flight = family(catalogue.QUEUE_IN_FLIGHT)
        for reading in readings:
            labels = [reading.queue]
            size.add_metric(labels, reading.size)
            oldest = 0.0
            if reading.size and reading.oldest_enqueued_at is not None:
                oldest = max(0.0, now - reading.oldest_enqueued_at)
            age.add_metric(labels, oldest)
            if reading.in_flight is not None:
                flight.add_metric(labels, reading.in_flight)
        families = [_broker_up(self.broker, 1), size, age]
        if flight.samples:
            families.append(flight)
        return families

    def fallback(self) -> Iterable[Metric]:
        return [_broker_up(self.broker, 0)]
