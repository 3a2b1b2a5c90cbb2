"""Wire config, Django, sources, collectors and health into request handlers.

The server calls ``App.routes()``; handlers take a ``Request`` and return a
``Response``. Django is set up once here; requests pay no start-up cost.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry

from djq_contract.catalogue import SCOPE_CLUSTER, SCOPE_LOCAL, published
from exporter import exposition, health
from exporter.config import Config
from exporter.djangoenv import QSetup

log = logging.getLogger("exporter")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]
InlineHandler = Callable[[Request], "Response | None"]


#: Seconds between reloads of the status page unless ``?refresh=N`` says otherwise.
DEFAULT_REFRESH = 5
MAX_REFRESH = 3600
REFRESH_ERROR = f"refresh must be a whole number of seconds from 0 (off) to {MAX_REFRESH}\n"


def _refresh_seconds(raw: str | None) -> int | None:
    """``?refresh=`` as seconds, DEFAULT_REFRESH when absent, None when unusable."""
    if raw is None or raw == "":
        return DEFAULT_REFRESH
    if not raw.isdigit() or int(raw) > MAX_REFRESH:
        return None
    return int(raw)


def django_q_version() -> str:
    try:
        return version("django-q2")
    except PackageNotFoundError:
        return "unknown"


class App:
    def __init__(self, cfg: Config, setup: QSetup, extra_collectors=()) -> None:
        from djq_contract.podstore import PodStore, path_for_django
        from exporter import sources as sources_mod
        from exporter.collectors.clusters import ClusterCollector
        from exporter.collectors.local import LocalClusterCollector
        from exporter.collectors.pod import PodStoreCollector
        from exporter.collectors.queues import QueueCollector
        from exporter.collectors.runner import ScrapeRunner
        from exporter.collectors.schedules import ScheduleCollector
        from exporter.collectors.unique_tasks import UniqueTaskCollector
        from exporter.probe import Prober
        from exporter.sources.schedules import ScheduleSource
        from exporter.sources.unique import UniqueTaskSource
        from exporter.status.builder import StatusBuilder
        from exporter.status.builder import identity as status_identity
        from exporter.tracker import ClusterTracker

        self.cfg = cfg
        self.setup = setup
        self.started = time.time()
        self.dq_version = django_q_version()
        self.sources = sources_mod.build(setup, cfg)

        def tracker() -> ClusterTracker:
            return ClusterTracker(setup.cluster_name, cfg.stat_grace, cfg.retention,
                                  cfg.expected_hosts)

        # Scrapes and probes run their backend reads here, so a hung backend
        # costs pool threads, never the HTTP threads.
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="collect")
        # The workers find the same file from the same settings (path_for_django); the
        # cluster-scope exporter runs beside no workers and reads no pod store.
        scope = cfg.scope
        self.pod_store = None if scope == SCOPE_CLUSTER else PodStore(
            cfg.pod_store or path_for_django(setup.cluster_name))
        self.other_names = self._diagnose_names()
        # Scrapes and probes each keep their own tracker, written only by their own
        # reads: health never depends on whether or when anything scraped.
        self.prober = Prober(cfg, setup, self.sources, tracker(), self.executor,
                             self.started, self.other_names, self.pod_store)
        # Which collectors run follows from the scope (local: this pod's own cluster
        # and counters; cluster: what every pod would publish alike), so a pod in the
        # per-pod layout never reads what it does not publish.
        collectors: list = []
        if scope != SCOPE_LOCAL:
            collectors.append(ClusterCollector(self.sources.stats, tracker(), self.dq_version))
        if scope != SCOPE_CLUSTER:
            collectors.append(LocalClusterCollector(self.prober.observe, cfg, setup.cluster_name,
                                                    rejected=scope == SCOPE_LOCAL))
        unique = None
        # Read by the collectors the scope runs, and by the status page whatever the scope.
        unique_source = UniqueTaskSource(setup, cfg.backend_timeout)
        schedule_source = ScheduleSource()
        if scope != SCOPE_LOCAL:
            collectors.append(QueueCollector(self.sources.queue, setup.broker, setup.queue_name,
                                             cfg.queue_cap))
            unique = UniqueTaskCollector(unique_source, forget_after=setup.unique_forget_after)
        if self.pod_store is not None:
            # Without the cluster-wide registry read (local scope), the workers' own seeds
            # (rsr_tasks.unique.counters.seed) give this pod's registered tasks their 0.
            collectors.append(PodStoreCollector(
                self.pod_store, unique.lock_counter_baseline if unique else None))
        if scope != SCOPE_LOCAL:
            collectors.append(unique)
            collectors.append(ScheduleCollector(schedule_source, cfg.schedule_cap))
        collectors.extend(extra_collectors)
        self.runner = ScrapeRunner(collectors, cfg.scrape_timeout, self.executor, self.dq_version,
                                   published(scope))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.runner)
        # The status page reads the same sources, with its own tracker (page loads only).
        self.status = StatusBuilder(
            cfg, status_identity(cfg, setup, self.dq_version), self.prober.observe,
            self.sources.stats, self.sources.queue, unique_source, schedule_source,
            self.pod_store, tracker(), self.executor, setup.unique_forget_after)

    def _diagnose_names(self) -> tuple[str, ...]:
        try:
            return tuple(self.sources.stats.other_names())
        except Exception as exc:
            log.info("could not look for other cluster names: %s", exc)
            return ()

    def routes(self) -> dict[str, Handler]:
        return {
            "/healthz": self.readyz,
            "/readyz": self.readyz,
            "/livez": self.livez,
            "/metrics": self.metrics,
            "/": self.status_page,
            "/status.json": self.status_json,
        }

    def inline_routes(self) -> dict[str, InlineHandler]:
        """Probe handlers the server may call on its event loop: they answer from the
        observation in memory (no I/O, a few µs) or return None, and the request goes to
        a thread as usual. Saves a thread hop per probe in the steady state."""
        return {
            "/healthz": lambda r: self._from_memory(health.readiness, r),
            "/readyz": lambda r: self._from_memory(health.readiness, r),
            "/livez": lambda r: self._from_memory(health.liveness, r),
        }

    def _from_memory(self, judge, request: Request) -> Response | None:
        obs = self.prober.peek()
        return None if obs is None else self._health_response(judge(obs, self.cfg), request)

    # handlers -----------------------------------------------------------------
    def readyz(self, request: Request) -> Response:
        return self._health_response(health.readiness(self.prober.observe(), self.cfg), request)

    def livez(self, request: Request) -> Response:
        return self._health_response(health.liveness(self.prober.observe(), self.cfg), request)

    def metrics(self, request: Request) -> Response:
        body, content_type = exposition.render(self.registry, request.headers.get("accept"))
        return Response(200, body, content_type)

    def status_page(self, request: Request) -> Response:
        from exporter.status import html

        refresh = _refresh_seconds(request.query.get("refresh"))
        if refresh is None:
            return Response(400, REFRESH_ERROR.encode())
        page = self.status.render(html.render, refresh)
        return Response(200, page, "text/html; charset=utf-8", headers=html.HEADERS)

    def status_json(self, request: Request) -> Response:
        from exporter.status import jsonform

        body = self.status.render(jsonform.render, 0)
        return Response(200, body, "application/json",
                        headers={"X-Content-Type-Options": "nosniff"})

    @staticmethod
    def _health_response(report: health.HealthReport, request: Request) -> Response:
        status = 200 if report.ok else 503
        if request.query.get("verbose", "").lower() in ("1", "true", "yes"):
            body = json.dumps(report.as_dict(), indent=2).encode() + b"\n"
            return Response(status, body, "application/json")
        return Response(status, b"true" if report.ok else b"false")

    def close(self) -> None:
        self.sources.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
