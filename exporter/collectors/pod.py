"""Families recorded by this pod's worker processes (see exporter.podstore).

Generic: whatever families the workers declared (task executions, unique
task lock counters, ...) are served as they are stored. Counters only go up
within the store's lifetime; an emptied store is a counter reset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from exporter.collectors import add
from exporter.memo import LastRead
from exporter.podstore import PodStore, le_label


class PodStoreCollector:
    name = "pod"

    def __init__(self, store: PodStore) -> None:
        self.store = store
        # labels JSON -> dict, shared by the samples of every scrape (never mutated):
        # decoding thousands of them per scrape was most of this collector's time.
        self._labels: LastRead[dict[str, str]] = LastRead()

    def collect(self) -> Iterable[Metric]:
        declared, rows = self.store.read()
        families = {name: Metric(name, f.help, f.type) for name, f in declared.items()}
        histograms: dict[str, dict[tuple, dict[str, float]]] = {}
        decode = self._labels.get
        for family, suffix, labels_json, value in rows:
            labels = decode(labels_json, json.loads)
            if declared[family].type == "histogram":
                series = histograms.setdefault(family, {}).setdefault(
                    tuple(sorted((k, v) for k, v in labels.items() if k != "le")), {})
                key = "le=" + labels["le"] if suffix == "_bucket" else suffix
                series[key] = series.get(key, 0.0) + value
            else:
                add(families[family], labels, value, suffix)
        self._labels.rotate()
        for family, all_series in histograms.items():
            fam = families[family]
            les = [le_label(b) for b in declared[family].buckets or ()] + ["+Inf"]
            for key, series in sorted(all_series.items()):
                labels = dict(key)
                running = 0.0
                for le in les:  # stored per bucket; exposed cumulative, every bound present
                    running += series.get("le=" + le, 0.0)
                    add(fam, {**labels, "le": le}, running, "_bucket")
                add(fam, labels, series.get("_count", 0.0), "_count")
                add(fam, labels, series.get("_sum", 0.0), "_sum")
        return [f for f in families.values() if f.samples]
