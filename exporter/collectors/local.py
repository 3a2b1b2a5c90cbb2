"""django_q_local_cluster_ready and django_q_readiness_check: this pod's own cluster.

Published by each exporter about the cluster on its own host only (the one
/readyz judges), so the series live exactly as long as the pod: a pod that
goes away in a rolling deploy takes them with it (Prometheus marks them
stale, nothing reads 0 for a retention window), while a pod that stays and
whose cluster died reads 0. Paging alerts use these; the cluster-wide
``django_q_cluster_*`` views of every host stay for dashboards.

Never fails: the observation already turns backend errors into failed checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter import health
from exporter.collectors import add, family
from exporter.config import Config


class LocalClusterCollector:
    name = "local"

    def __init__(self, observe: Callable[[], health.HealthObservation], cfg: Config,
                 cluster_name: str) -> None:
        self.observe = observe
        self.cfg = cfg
        self.cluster_name = cluster_name

    def collect(self) -> Iterable[Metric]:
        report = health.readiness(self.observe(), self.cfg)
        labels = {"cluster_name": self.cluster_name, "host": self.cfg.hostname}
        ready = family(catalogue.LOCAL_CLUSTER_READY)
        add(ready, labels, 1 if report.ok else 0)
        checks = family(catalogue.READINESS_CHECK)
        for result in report.checks:
            add(checks, {**labels, "check": result.name}, 1 if result.ok else 0)
        return [ready, checks]
