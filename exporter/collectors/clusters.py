"""django_q_cluster_*: one series set per (cluster_name, host) the tracker knows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from exporter.collectors import add
from exporter.model import STATUSES
from exporter.sources.stats import StatSource
from exporter.tracker import ClusterTracker

LABELS = ["cluster_name", "host"]


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
        up = GaugeMetricFamily("django_q_cluster_up",
                               "1 if the cluster has a fresh Stat with status starting, idle "
                               "or working; 0 if stopping, stopped, stale or expected but missing",
                               labels=LABELS)
        status = GaugeMetricFamily("django_q_cluster_status",
                                   "1 for the cluster's current status (state set)",
                                   labels=LABELS + ["status"])
        workers = GaugeMetricFamily("django_q_cluster_workers",
                                    "Live worker processes of the cluster", labels=LABELS)
        reinc = CounterMetricFamily("django_q_cluster_reincarnations",
                                    "Worker reincarnations since the cluster started",
                                    labels=LABELS)
        start = GaugeMetricFamily("django_q_cluster_start_time_seconds",
                                  "Cluster start time, Unix time", labels=LABELS)
        seen = GaugeMetricFamily("django_q_cluster_last_seen_timestamp_seconds",
                                 "Time the cluster last saved its Stat, Unix time",
                                 labels=LABELS)
        info = GaugeMetricFamily("django_q_cluster_info", "Cluster identity (value always 1)",
                                 labels=LABELS + ["cluster_id", "django_q_version"])
        rejected = GaugeMetricFamily("django_q_exporter_stats_rejected",
                                     "Stats read but not usable in the last read: bad_signature "
                                     "means SECRET_KEY or cluster name differ from the workers'",
                                     labels=["reason"])
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
