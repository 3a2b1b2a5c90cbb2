"""Families recorded by this pod's worker processes (see djq_contract.podstore).

Generic: whatever families the workers declared (task executions, unique
task lock counters, ...) are served as they are stored, with the type and
help the catalogue gives them (the store's own declaration only for a family
the catalogue does not know, e.g. one added by a newer worker). Counters only
go up within the store's lifetime; an emptied store is a counter reset.

``baseline`` names series that must exist before the workers wrote them:
they read 0 until the store has a row (e.g. the lock counters of a unique
task registered by another pod, so ``increase()`` sees this pod's first
run). They are produced in memory; reading a scrape never writes the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from prometheus_client.metrics_core import Metric

from djq_contract.catalogue import FAMILIES
from djq_contract.podstore import PodStore, le_label
from exporter.collectors import add
from exporter.memo import LastRead

#: (family, suffix, sorted label pairs) of a series that reads 0 while the store has no
#: row for it.
Pairs = tuple[tuple[str, str], ...]
Series = tuple[str, str, Pairs]


def _decode(labels_json: str) -> tuple[dict[str, str], Pairs]:
    """A row's labels and their sorted pairs (the baseline's key), computed once per
    labels JSON and kept from scrape to scrape: sorting every row's labels on every
    scrape cost about as much as decoding them."""
    labels = json.loads(labels_json)
    return labels, tuple(sorted(labels.items()))


class PodStoreCollector:
    name = "pod"

    def __init__(self, store: PodStore,
                 baseline: Callable[[], Iterable[Series]] | None = None) -> None:
        self.store = store
        self.baseline = baseline
        # labels JSON -> (dict, sorted pairs), shared by the samples of every scrape (never
        # mutated): decoding thousands of them per scrape was most of this collector's time.
        self._labels: LastRead[tuple[dict[str, str], Pairs]] = LastRead()
        # (what baseline() returned, its series as dict keys, their families): built again
        # only when baseline() returns another object. A baseline returns the same object
        # (never mutated) while its series are unchanged, as lock_counter_baseline does.
        self._zeros: tuple[object, dict[Series, None], frozenset[str]] = (None, {}, frozenset())

    @staticmethod
    def _family(name: str, stored) -> Metric:
        spec = FAMILIES.get(name)
        if spec is None:
            return Metric(name, stored.help, stored.type)
        return Metric(name, spec.help, spec.type)

    def collect(self) -> Iterable[Metric]:
        declared, rows = self.store.read()
        families = {name: self._family(name, f) for name, f in declared.items()}
        zeros, zero_families = self._baseline_zeros()
        histograms: dict[str, dict[tuple, dict[str, float]]] = {}
        decode = self._labels.get
        for family, suffix, labels_json, value in rows:
            labels, pairs = decode(labels_json, _decode)
            if family in zero_families:
                zeros.pop((family, suffix, pairs), None)
            if declared[family].type == "histogram":
                series = histograms.setdefault(family, {}).setdefault(
                    tuple(sorted((k, v) for k, v in labels.items() if k != "le")), {})
                key = "le=" + labels["le"] if suffix == "_bucket" else suffix
                series[key] = series.get(key, 0.0) + value
            else:
                add(families[family], labels, value, suffix)
        self._labels.rotate()
        for family, suffix, pairs in zeros:
            if family not in families:
                families[family] = Metric(family, FAMILIES[family].help, FAMILIES[family].type)
            add(families[family], dict(pairs), 0.0, suffix)
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

    def _baseline_zeros(self) -> tuple[dict[Series, None], frozenset[str]]:
        """This scrape's copy of the baseline as an ordered dict (the rows present are
        popped from it) and the families it touches. Building the dict hashes every
        series, thousands of nested tuples per scrape with a large registry; a copy of
        the one built for an unchanged baseline does not hash again."""
        series = self.baseline() if self.baseline else ()
        if series is not self._zeros[0]:
            zeros = dict.fromkeys(series)
            self._zeros = (series, zeros, frozenset(key[0] for key in zeros))
        return self._zeros[1].copy(), self._zeros[2]
