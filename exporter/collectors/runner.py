"""Run every collector per scrape: in parallel, within a budget, reporting on each.

Like node_exporter's scrape loop: one failing or hanging collector never
takes the scrape down; it reads ``django_q_exporter_collector_success 0``
(and publishes its fallback families) while the others report normally. A
collector still running from an earlier scrape is not started again, so a
blackholed backend cannot pile up threads: an overlapping scrape (two
Prometheus replicas scraping one pod) joins that run and shares its result,
within its own budget, instead of reporting a failure.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue
from exporter import __version__
from exporter.collectors import Collector, family
from exporter.errors import describe

log = logging.getLogger("exporter.collectors")


class ScrapeRunner:
    def __init__(self, collectors: Sequence[Collector], timeout: float,
                 executor: ThreadPoolExecutor, django_q_version: str,
                 publish: frozenset[str] | None = None) -> None:
        self.collectors = list(collectors)
        # The catalogue families this exporter's scope publishes (None: all); a catalogue
        # family outside it is dropped, one the catalogue does not know is kept.
        self.publish = publish
        self.timeout = timeout
        self.executor = executor
        self.django_q_version = django_q_version
        self._inflight: dict[str, tuple[Future, float]] = {}  # name -> (run, its start)
        self._lock = threading.Lock()
        self._failing: set[str] = set()

    def describe(self) -> list:
        return []  # collected fresh each scrape; nothing to pre-describe

    def _start(self, collector: Collector) -> tuple[Future, float]:
        """The collector's run for this scrape: a new one, or the one still in flight."""
        with self._lock:
            running = self._inflight.get(collector.name)
            if running is not None:
                return running
            t0 = time.perf_counter()

            def run() -> list[Metric]:
                try:
                    return list(collector.collect())
                finally:
                    with self._lock:
                        self._inflight.pop(collector.name, None)

            # run's own clean-up waits for this lock: the entry is in before it leaves.
            future = self.executor.submit(run)
            self._inflight[collector.name] = (future, t0)
            return future, t0

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        ended: dict[str, float] = {}  # when each collector finished, set in its thread
        futures = {}
        for c in self.collectors:
            future, t0 = self._start(c)
            future.add_done_callback(
                lambda _, name=c.name: ended.setdefault(name, time.perf_counter()))
            futures[c.name] = (c, future, t0)
        wait([f for _, f, _ in futures.values()], timeout=self.timeout)
        success = family(catalogue.COLLECTOR_SUCCESS)
        duration = family(catalogue.COLLECTOR_DURATION)
        families: list[Metric] = []
        for name, (collector, future, t0) in futures.items():
            ok, error = False, f"timed out after {self.timeout:g}s"
            if future.done():
                try:
                    families.extend(future.result())
                    ok = True
                except Exception as exc:
                    error = describe(exc)
            if not ok:
                fallback = getattr(collector, "fallback", None)
                if fallback is not None:
                    families.extend(fallback())
            self._log_transition(name, ok, error)
            success.add_metric([name], 1 if ok else 0)
            # Its own time, not the wait for the slowest one (still running: so far).
            duration.add_metric([name], ended.get(name, time.perf_counter()) - t0)
        build = family(catalogue.BUILD_INFO)
        build.add_metric([__version__, self.django_q_version, platform.python_version()], 1)
        families.extend([success, duration, build])
        if self.publish is not None:
            families = [f for f in families
                        if f.name in self.publish or f.name not in catalogue.FAMILIES]
        log.debug("scrape collected in %.1f ms", (time.perf_counter() - started) * 1000)
        return families

    def _log_transition(self, name: str, ok: bool, error: str) -> None:
        """One log line when a collector starts or stops failing, not one per scrape."""
        with self._lock:
            if not ok and name not in self._failing:
                self._failing.add(name)
                log.warning("collector %s failed: %s", name, error)
            elif ok and name in self._failing:
                self._failing.discard(name)
                log.info("collector %s recovered", name)
