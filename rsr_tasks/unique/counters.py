"""Lock outcome counters, written to the per-pod store by the worker process.

One SQLite file per pod (djq_contract.podstore): atomic increments keyed by
label set, so counts survive worker recycling and reincarnation and the file
does not grow with worker churn. The families are the catalogue's
``LOCK_OUTCOMES``; the ``task`` label is capped per pod
(``$DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP``, default 500; the rest read "other").
"""

from __future__ import annotations

import logging
from functools import lru_cache

from djq_contract.catalogue import LOCK_OUTCOMES, UNIQUE_TASK_CAP
from djq_contract.podstore import PodStore, Update, labels_of

log = logging.getLogger("rsr_tasks.unique")

TASK_CAP = UNIQUE_TASK_CAP.size()


def declare(store: PodStore) -> PodStore:
    """Declare the counter families in ``store`` (idempotent)."""
    for spec in LOCK_OUTCOMES.values():
        store.declare(spec.name, spec.type, spec.help)
    return store


def updates(store: PodStore, task: str, outcomes, value: float) -> list[Update]:
    label = store.admit(UNIQUE_TASK_CAP.key, UNIQUE_TASK_CAP.label, task, TASK_CAP)
    return [Update(LOCK_OUTCOMES[o].name, "_total", labels_of(task=label), value)
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
        store.apply(updates(store, task, LOCK_OUTCOMES, 0.0))
    except Exception as exc:
        log.warning("could not seed unique-task counters for %s: %s", task, exc)
