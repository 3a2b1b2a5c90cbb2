"""Build the status model from the sources ``/metrics`` reads: the one place that does.

Each page load reads every source afresh (``ParallelReads``: side by side,
within the scrape budget), folds the Stats into the page's own cluster tracker
(its memory of clusters that vanished, written by page loads only, so neither
scrapes nor probes change what the page says), keeps a reading of the task
counters for the next load's rates, and hands all of it to ``assemble``.
Readiness is the probes' own observation, as ``/readyz`` answers it.

Loads that arrive while a build runs, or within ``SHARE_WINDOW`` of one, share
it (and its rendering): the page stays as fresh as the probes' own answers, and
any number of open tabs or scripts polling ``/status.json`` cost at most a few
builds a second, so they cannot starve the probes of the CPU.
"""

from __future__ import annotations

import dataclasses
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from djq_contract import catalogue, forgetting
from exporter import __version__, health
from exporter.config import Config
from exporter.status import functions as fn
from exporter.status.assemble import Readings, assemble
from exporter.status.model import Identity, StatusModel
from exporter.status.reader import Outcome, ParallelReads
from exporter.tracker import ClusterTracker

#: Seconds a build is shared by later loads.
SHARE_WINDOW = 0.5
NO_POD_STORE = ("this exporter runs beside no workers (--scope cluster): each pod's own "
                "exporter shows its functions")


class StatusBuilder:
    def __init__(self, cfg: Config, identity: Identity, observe: Callable, stats, queue, unique,
                 schedules, pod_store, tracker: ClusterTracker, executor: ThreadPoolExecutor,
                 forget_after: float = forgetting.DEFAULT_FORGET_AFTER,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.identity = identity
        self.tracker = tracker
        self.clock = clock
        self.forget_after = forget_after
        self.pod_store = pod_store  # None: an exporter beside no workers (--scope cluster)
        self.rates = fn.RateMemory()
        reads = {"stats": stats.read, "queues": queue.read, "unique": unique.read,
                 "schedules": schedules.read, "health": observe}
        if pod_store is not None:
            reads["pod"] = pod_store.read
        self.reads = ParallelReads(reads, executor, cfg.scrape_timeout)
        self._lock = threading.Lock()
        self._last: tuple[float, StatusModel] | None = None  # (monotonic, model)
        self._rendered: dict[tuple, bytes] = {}  # of the last model

    def render(self, render: Callable[[StatusModel], bytes], refresh: int) -> bytes:
        """The page (or JSON) of a fresh or shared build, rendered once per build."""
        with self._lock:
            last = self._last
            if last is None or time.monotonic() - last[0] >= SHARE_WINDOW:
                last = self._last = (time.monotonic(), self.build())
                self._rendered = {}
            key = (render, refresh)
            body = self._rendered.get(key)
            if body is None:
                body = self._rendered[key] = render(dataclasses.replace(last[1],
                                                                        refresh=refresh))
            return body

    def build(self) -> StatusModel:
        outcomes = self.reads.run()
        observed = outcomes["health"]
        report = (health.readiness(observed.value, self.cfg) if observed.error is None else
                  health.HealthReport(False, (health.CheckResult(
                      "observation", False, f"could not observe: {observed.error}"),)))
        now = self.clock()
        stats = outcomes["stats"]
        clusters = (stats if stats.error is not None
                    else Outcome(self.tracker.update(stats.value.stats, now)))
        pod = outcomes.get("pod") or Outcome(note=NO_POD_STORE)
        funcs = locks = pod
        rates = window = None
        if pod.error is None and pod.note is None:
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
                            rates=rates, rate_window=window, forget_after=self.forget_after)
        return assemble(readings, self.identity)


def identity(cfg: Config, setup, django_q_version: str) -> Identity:
    return Identity(version=__version__, django_q_version=django_q_version,
                    python_version=platform.python_version(),
                    broker=setup.broker_description, cluster_name=setup.cluster_name,
                    host=cfg.hostname)
