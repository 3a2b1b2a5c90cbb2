"""Gather a HealthObservation for the probes: the I/O half of health.

Reads the Stats and the broker concurrently within ``health_timeout``; a
result is reused for ``health_cache`` seconds and concurrent probes share
one read (single flight), so a probe storm costs the backend at most a few
reads per second and every probe answers in well under a second, even
when the backend blackholes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from exporter.config import Config
from exporter.djangoenv import QSetup
from exporter.errors import describe
from exporter.health import HealthObservation
from exporter.sentinel import SentinelWatch
from exporter.sources import Sources
from exporter.tracker import ClusterTracker

log = logging.getLogger("exporter.probe")

#: Seconds a bad-signature observation keeps failing the config check.
BAD_SIGNATURE_MEMORY = 60.0


class Prober:
    def __init__(self, cfg: Config, setup: QSetup, sources: Sources, tracker: ClusterTracker,
                 executor: ThreadPoolExecutor, process_started: float,
                 other_names: tuple[str, ...] = (), pod_store=None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.setup = setup
        self.sources = sources
        self.tracker = tracker
        self.executor = executor
        self.process_started = process_started
        self.other_names = other_names
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, HealthObservation] | None = None  # (monotonic, obs)
        self._stats_busy = threading.Event()
        self._queue_busy = threading.Event()
        self._bad_seen: tuple[float, int] | None = None
        self.pod_store = pod_store
        self._pending_since: float | None = None
        self.sentinel = SentinelWatch()
        self._stats_read_at: float | None = None

    def observe(self) -> HealthObservation:
        """The latest observation, at most ``health_cache`` old, or being refreshed.

        Fresh: answered from memory. Somewhat stale (up to 4 × health_cache): answered
        from memory while one background read refreshes it, so no probe waits for the
        backend in steady state. Older or missing: read now (single flight).
        """
        cached = self.peek()
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cached
            if cached and time.monotonic() - cached[0] < self.cfg.health_cache:
                return cached[1]
            return self._refresh()

    def peek(self) -> HealthObservation | None:
        """The observation if it can be answered from memory (fresh, or somewhat stale
        with a background refresh started), else None. Never waits: safe to call on the
        server's event loop."""
        cached = self._cached
        if cached is not None:
            age = time.monotonic() - cached[0]
            if age < self.cfg.health_cache:
                return cached[1]
            if age < 4 * self.cfg.health_cache:
                self._refresh_in_background()
                return cached[1]
        return None

    def _refresh(self) -> HealthObservation:
        obs = self._read()
        self._cached = (time.monotonic(), obs)
        return obs

    def _refresh_in_background(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a refresh is already running

        def run() -> None:
            try:
                self._refresh()
            except Exception as exc:  # the next probe reads synchronously and reports it
                log.warning("background health refresh failed: %s", describe(exc))
            finally:
                self._lock.release()

        threading.Thread(target=run, name="health-refresh", daemon=True).start()

    def _submit(self, busy: threading.Event, fn):
        if busy.is_set():
            return None  # an earlier read is still hanging: do not pile up
        busy.set()

        def run():
            try:
                return fn()
            finally:
                busy.clear()

        return self.executor.submit(run)

    def _read(self) -> HealthObservation:
        stats_f = self._submit(self._stats_busy, self.sources.stats.read)
        queue_f = self._submit(self._queue_busy, self.sources.queue.read_own)
        wait([f for f in (stats_f, queue_f) if f is not None], timeout=self.cfg.health_timeout)
        stats, stats_error = _outcome(stats_f, self.cfg.health_timeout)
        queue, broker_error = _outcome(queue_f, self.cfg.health_timeout)
        now = self.clock()
        if stats is not None:
            self._stats_read_at = now
        views = self.tracker.update(stats.stats if stats else (), now)
        local = None if self.cfg.scope == "cluster" else next(
            (v for v in views if v.host == self.cfg.hostname
             and v.cluster_name == self.setup.cluster_name), None)
        bad = stats.bad_signatures if stats else 0
        if bad:
            if self._bad_seen is None:
                log.error("misconfiguration: %d cluster Stat(s) failed the signature check: "
                          "SECRET_KEY or Q_CLUSTER name differs from the workers'", bad)
            self._bad_seen = (now, bad)
        elif self._bad_seen and now - self._bad_seen[0] < BAD_SIGNATURE_MEMORY:
            bad = self._bad_seen[1]  # a Stat can blink out: keep reporting for a while
        else:
            self._bad_seen = None
        sentinel_alive = None
        if local is not None and local.stat is not None:
            sentinel_alive = self.sentinel.judge(local.stat.sentinel_pid)
        pending = bool((queue.size if queue else 0) or (local and local.stat and (
            local.stat.task_q_size or local.stat.done_q_size)))
        if not pending:
            self._pending_since = None
        elif self._pending_since is None:
            self._pending_since = now
        return HealthObservation(
            now=now,
            process_started=self.process_started,
            local_host=self.cfg.hostname,
            cluster_name=self.setup.cluster_name,
            local=local,
            clusters=tuple(views),
            stats_error=stats_error,
            broker_error=broker_error,
            problems=self.setup.problems,
            bad_signatures=bad,
            undecodable=stats.undecodable if stats else 0,
            other_names=self.other_names,
            sentinel_alive=sentinel_alive,
            queue_size=queue.size if queue else None,
            task_timeout=self.setup.task_timeout,
            last_task_finished=self._last_finished(),
            pending_since=self._pending_since,
            stats_read_at=self._stats_read_at,
        )

    def _last_finished(self) -> float | None:
        if self.pod_store is None:
            return None
        try:
            return self.pod_store.value(
                "django_q_cluster_last_task_finished_timestamp_seconds", "",
                {"cluster_name": self.setup.cluster_name, "host": self.cfg.hostname})
        except Exception as exc:
            log.debug("pod store unreadable: %s", exc)
            return None


def _outcome(future, timeout: float):
    if future is None:
        return None, "previous read still hanging"
    if not future.done():
        return None, f"no answer within {timeout:g}s"
    try:
        return future.result(), None
    except Exception as exc:
        return None, describe(exc)
