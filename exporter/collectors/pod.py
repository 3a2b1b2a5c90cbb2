"""Families recorded by this pod's worker processes (see exporter.podstore).

Generic: whatever families the workers declared (task executions, unique
task lock counters, ...) are served as they are stored. Counters only go up
within the store's lifetime; an emptied store is a counter reset.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from exporter.collectors import add
from exporter.podstore import PodStore, le_label


def _series_key(labels: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "le"))


class PodStoreCollector:
    name = "pod"

    def __init__(self, store: PodStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        histograms: dict[str, dict[tuple, dict[str, float]]] = {}
        bounds: dict[str, tuple[float, ...]] = {}
        for row in self.store.read():
            fam = families.get(row.family)
            if fam is None:
                fam = families[row.family] = Metric(row.family, row.help, row.type)
            if row.type == "histogram":
                series = histograms.setdefault(row.family, {}).setdefault(
                    _series_key(row.labels), {})
                key = "le=" + row.labels["le"] if row.suffix == "_bucket" else row.suffix
                series[key] = series.get(key, 0.0) + row.value
                bounds[row.family] = row.buckets or ()
            else:
                add(fam, row.labels, row.value, row.suffix)
        for family, all_series in histograms.items():
            fam = families[family]
            les = [le_label(b) for b in bounds[family]] + ["+Inf"]
            for key, series in sorted(all_series.items()):
                labels = dict(key)
                running = 0.0
                for le in les:  # stored per bucket; exposed cumulative, every bound present
                    running += series.get("le=" + le, 0.0)
                    add(fam, {**labels, "le": le}, running, "_bucket")
                add(fam, labels, series.get("_count", 0.0), "_count")
                add(fam, labels, series.get("_sum", 0.0), "_sum")
        return list(families.values())
