"""Prometheus collectors, one per concern, yielding fresh families at scrape time.

A collector is any object with a ``name``, a ``collect()`` that returns an
iterable of metric families (raising when its source fails) and optionally a
``fallback()`` with the families to publish when it fails (e.g. broker_up 0).
``ScrapeRunner`` times them, bounds them and reports on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from djq_contract.catalogue import FamilySpec

_CLASSES = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily,
            "histogram": HistogramMetricFamily}


class Collector(Protocol):
    name: str

    def collect(self) -> Iterable[Metric]: ...


def add(family: Metric, labels: dict[str, str], value: float, suffix: str = "") -> None:
    """Append a sample without prometheus_client's per-call checks (the hot path of a
    large scrape); names and labels here come from our own collectors."""
    family.samples.append(Sample(family.name + suffix, labels, float(value), None, None))


def family(spec: FamilySpec) -> Metric:
    """An empty family as the catalogue declares it (name, type, help, label names)."""
    return _CLASSES[spec.type](spec.name, spec.help, labels=list(spec.labels))
