"""django_q_cluster_*: one series set per (cluster_name, host) the tracker knows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter.collectors import add, family
from exporter.model import STATUSES
from exporter.sources.stats import StatSource
from exporter.tracker import ClusterTracker


class ClusterCollector:
    name = "clusters"

    def __init__(self, source: StatSource, tracker: ClusterTracker, django_q_version: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.tracker = tracker
        self.django_q_version = django_q_version
        self.clock = clock

    def collect(self) -> Iterable[Metric]:
        reading = self.source.read()
        views = self.tracker.update(reading.stats, self.clock())
        up, status, workers, reinc, start, seen, info, rejected = (family(spec) for spec in (
            catalogue.CLUSTER_UP, catalogue.CLUSTER_STATUS, catalogue.CLUSTER_WORKERS,
            catalogue.CLUSTER_REINCARNATIONS, catalogue.CLUSTER_START_TIME,
            catalogue.CLUSTER_LAST_SEEN, catalogue.CLUSTER_INFO, catalogue.STATS_REJECTED))
        rejected.add_metric(["bad_signature"], reading.bad_signatures)
        rejected.add_metric(["undecodable"], reading.undecodable)
        for view in views:
            labels = {"cluster_name": view.cluster_name, "host": view.host}
            stat = view.stat
            add(up, labels, 1 if view.up else 0)
            current = stat.status if stat and (view.up or view.present) else None
            for value in STATUSES:
                add(status, {**labels, "status": value}, 1 if value == current else 0)
            add(workers, labels, len(stat.workers) if stat and view.up else 0)
            if stat is None:
                continue
            add(reinc, labels, stat.reincarnations, "_total")
            if stat.started_at is not None:
                add(start, labels, stat.started_at)
            add(seen, labels, stat.timestamp)
            add(info, {**labels, "cluster_id": stat.cluster_id,
                       "django_q_version": self.django_q_version}, 1)
        return [up, status, workers, reinc, start, seen, info, rejected]
