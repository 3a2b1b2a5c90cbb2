"""Families recorded by this pod's worker processes (see exporter.podstore).

Generic: whatever families the workers declared (task executions, unique
task lock counters, ...) are served as they are stored. Counters only go up
within the store's lifetime; an emptied store is a counter reset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from exporter.podstore import PodStore, Row

_SUFFIX_ORDER = {"_bucket": 0, "_count": 1, "_sum": 2}


def _order(row: Row) -> tuple:
    """Series together, buckets in ascending ``le`` before _count and _sum."""
    rest = {k: v for k, v in row.labels.items() if k != "le"}
    le = float(row.labels["le"]) if "le" in row.labels else 0.0
    return (json.dumps(rest, sort_keys=True), _SUFFIX_ORDER.get(row.suffix, 0), le)


class PodStoreCollector:
    name = "pod"

    def __init__(self, store: PodStore) -> None:
        self.store = store

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for row in sorted(self.store.read(), key=lambda r: (r.family, _order(r))):
            fam = families.get(row.family)
            if fam is None:
                fam = families[row.family] = Metric(row.family, row.help, row.type)
            fam.add_sample(row.family + row.suffix, row.labels, row.value)
        return list(families.values())
