"""The pod-store collector's zero baseline, kept from one scrape to the next."""

from __future__ import annotations

from djq_contract import catalogue
from djq_contract.podstore import Family
from exporter.collectors.pod import PodStoreCollector

ACQUIRED = catalogue.LOCK_OUTCOMES["acquired"].name


class Rows:
    """A pod store whose rows the test changes between scrapes (an emptied file is a
    counter reset, so rows can disappear)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, float]] = []

    def read(self):
        return {ACQUIRED: Family(ACQUIRED, "counter", "h")}, list(self.rows)


class Baseline:
    """The same series object on every call until ``replace``; counts the times its
    series are walked (what building the lookup table costs)."""

    def __init__(self, *tasks: str) -> None:
        self.walks = 0
        self.replace(*tasks)

    def replace(self, *tasks: str) -> None:
        self.series = Walked(self, [(ACQUIRED, "_total", (("task", t),)) for t in tasks])

    def __call__(self):
        return self.series


class Walked:
    def __init__(self, owner: Baseline, items: list) -> None:
        self.owner, self.items = owner, items

    def __iter__(self):
        self.owner.walks += 1
        return iter(self.items)


def values(collector: PodStoreCollector) -> dict[str, float]:
    return {s.labels["task"]: s.value for f in collector.collect() for s in f.samples}


def test_zero_baseline_survives_scrapes_and_follows_changes():
    """A row present in one scrape never hides the zero of the next scrape that lacks it
    (each scrape pops from its own copy); the lookup table is built once per baseline
    object, and a new baseline object is taken up at once."""
    store, baseline = Rows(), Baseline("a", "b")
    pod = PodStoreCollector(store, baseline)
    store.rows = [(ACQUIRED, "_total", '{"task": "a"}', 3.0)]
    assert values(pod) == {"a": 3.0, "b": 0.0}
    store.rows = []  # counter reset: the store was emptied
    assert values(pod) == {"a": 0.0, "b": 0.0}
    store.rows = [(ACQUIRED, "_total", '{"task": "b"}', 1.0)]
    assert values(pod) == {"b": 1.0, "a": 0.0}
    assert baseline.walks == 1
    baseline.replace("b", "c")
    assert values(pod) == {"b": 1.0, "c": 0.0}
    assert baseline.walks == 2


def test_row_labels_match_the_baseline_in_any_stored_order():
    """The baseline's label pairs are sorted; a row's labels JSON matches them whatever
    order it stores them in (decoded once, reused by later scrapes)."""
    store = Rows()
    both = (ACQUIRED, "_total", (("shard", "1"), ("task", "a")))
    pod = PodStoreCollector(store, lambda: [both])
    store.rows = [(ACQUIRED, "_total", '{"task": "a", "shard": "1"}', 2.0)]
    for _ in range(2):
        (fam,) = pod.collect()
        assert [(s.labels, s.value) for s in fam.samples] == [
            ({"task": "a", "shard": "1"}, 2.0)]
