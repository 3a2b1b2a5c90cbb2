"""Lock outcome counters, written to the per-pod store by the worker process.

One SQLite file per pod (exporter.podstore): atomic increments keyed by
label set, so counts survive worker recycling and reincarnation and the file
does not grow with worker churn. The ``task`` label is capped per pod
(``$DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP``, default 500; the rest read "other").
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

from exporter.podstore import PodStore, Update, labels_of
from rsr_tasks.unique import contract

log = logging.getLogger("rsr_tasks.unique")

TASK_CAP = int(os.environ.get("DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP", contract.DEFAULT_TASK_CAP))


def declare(store: PodStore) -> PodStore:
    """Declare the counter families in ``store`` (idempotent)."""
    for outcome, help_ in contract.COUNTERS.items():
        store.declare(contract.counter_family(outcome), "counter", help_)
    return store


def updates(store: PodStore, task: str, outcomes, value: float) -> list[Update]:
    label = store.admit(contract.ADMIT_FAMILY, "task", task, TASK_CAP)
    return [Update(contract.counter_family(o), "_total", labels_of(task=label), value)
            for o in outcomes]


@lru_cache(maxsize=1)
def _store() -> PodStore:
    """One store per process (the store re-opens itself after fork)."""
    return declare(PodStore())


def count(task: str, outcome: str) -> None:
    """Add one to the outcome counter; never raises (metrics must not break a run)."""
    try:
        store = _store()
        store.apply(updates(store, task, [outcome], 1.0))
    except Exception as exc:
        log.warning("could not record unique-task %s for %s: %s", outcome, task, exc)


def seed(task: str) -> None:
    """Make every counter of a registered task exist (adds 0)."""
    try:
        store = _store()
        store.apply(updates(store, task, contract.COUNTERS, 0.0))
    except Exception as exc:
        log.warning("could not seed unique-task counters for %s: %s", task, exc)
