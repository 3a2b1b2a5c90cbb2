"""Prometheus collectors, one per concern, yielding fresh families at scrape time.

A collector is any object with a ``name``, a ``collect()`` that returns an
iterable of metric families (raising when its source fails) and optionally a
``fallback()`` with the families to publish when it fails (e.g. broker_up 0).
``ScrapeRunner`` times them, bounds them and reports on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.metrics_core import Metric


class Collector(Protocol):
    name: str

    def collect(self) -> Iterable[Metric]: ...
