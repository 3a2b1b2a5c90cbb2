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
                 cluster_name: str, rejected: bool = False) -> None:
        self.observe = observe
        self.cfg = cfg
        self.cluster_name = cluster_name
        # With --scope local no cluster collector reads the Stats: the rejected-Stat
        # counts come from the probes' reads instead (bad signatures remembered as long
        # as the config check remembers them).
        self.rejected = rejected

    def collect(self) -> Iterable[Metric]:
        obs = self.observe()
        report = health.readiness(obs, self.cfg)
        labels = {"cluster_name": self.cluster_name, "host": self.cfg.hostname}
        ready = family(catalogue.LOCAL_CLUSTER_READY)
        add(ready, labels, 1 if report.ok else 0)
        checks = family(catalogue.READINESS_CHECK)
        for result in report.checks:
            add(checks, {**labels, "check": result.name}, 1 if result.ok else 0)
        if not self.rejected:
            return [ready, checks]
        rejected = family(catalogue.STATS_REJECTED)
        add(rejected, {"reason": "bad_signature"}, obs.bad_signatures)
        add(rejected, {"reason": "undecodable"}, obs.undecodable)
        return [ready, checks, rejected]
