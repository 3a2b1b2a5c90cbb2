"""Build the status model from the sources ``/metrics`` reads: the one place that does.

Each page load reads every source afresh (``ParallelReads``: side by side,
within the scrape budget), folds the Stats into the page's own cluster tracker
(its memory of clusters that vanished, written by page loads only, so neither
scrapes nor probes change what the page says), keeps a reading of the task
counters for the next load's rates, and hands all of it to ``assemble``.
Readiness is the probes' own observation, as ``/readyz`` answers it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from djq_contract import catalogue
from exporter import __version__, health
from exporter.config import Config
from exporter.status import functions as fn
from exporter.status.assemble import Readings, assemble
from exporter.status.model import Identity, StatusModel
from exporter.status.reader import Outcome, ParallelReads
from exporter.tracker import ClusterTracker


class StatusBuilder:
    def __init__(self, cfg: Config, identity: Identity, observe: Callable, stats, queue, unique,
                 schedules, pod_store, tracker: ClusterTracker, executor: ThreadPoolExecutor,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.identity = identity
        self.tracker = tracker
        self.clock = clock
        self.rates = fn.RateMemory()
        self.reads = ParallelReads({
            "stats": stats.read, "queues": queue.read, "unique": unique.read,
            "schedules": schedules.read, "pod": pod_store.read, "health": observe,
        }, executor, cfg.scrape_timeout)

    def build(self, refresh: int) -> StatusModel:
        outcomes = self.reads.run()
        observed = outcomes["health"]
        report = (health.readiness(observed.value, self.cfg) if observed.error is None else
                  health.HealthReport(False, (health.CheckResult(
                      "observation", False, f"could not observe: {observed.error}"),)))
        now = self.clock()
        stats = outcomes["stats"]
        clusters = (stats if stats.error is not None
                    else Outcome(self.tracker.update(stats.value.stats, now)))
        pod = outcomes["pod"]
        funcs = locks = pod
        rates = window = None
        if pod.error is None:
            declared, rows = pod.value
            duration = declared.get(catalogue.TASK_DURATION.name)
            totals = fn.function_totals(duration.buckets if duration else None, rows)
            funcs = Outcome(totals)
            locks = Outcome(fn.lock_counts(rows))
            rates, window = self.rates.rates(
                now, {func: t.finished for func, t in totals.items()})
        readings = Readings(now=now, report=report, clusters=clusters,
                            queues=outcomes["queues"], unique=outcomes["unique"],
                            schedules=outcomes["schedules"], functions=funcs, locks=locks,
                            rates=rates, rate_window=window)
        return assemble(readings, self.identity, refresh)


def identity(cfg: Config, setup, django_q_version: str) -> Identity:
    return Identity(version=__version__, django_q_version=django_q_version,
                    python_version=platform.python_version(),
                    broker=setup.broker_description, cluster_name=setup.cluster_name,
                    host=cfg.hostname)
