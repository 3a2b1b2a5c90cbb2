"""Lock outcome counters, written to the per-pod store by the worker process."""

from __future__ import annotations

import logging
import os
from functools import lru_cache

from exporter.podstore import PodStore, Update, labels_of

log = logging.getLogger("rsr_tasks.unique")

FAMILIES = {
    "acquired": "Unique-task runs that took the lock",
    "contended": "Unique-task runs skipped because another holder had the lock",
    "lost": "Unique-task runs that lost the lock mid-run (expired or taken over)",
    "errors": "Unique-task lock backend errors",
}
TASK_CAP = int(os.environ.get("DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP", "500"))


def family(outcome: str) -> str:
    return f"django_q_unique_task_lock_{outcome}"


@lru_cache(maxsize=1)
def _store() -> PodStore:
    """One store per process (the store re-opens itself after fork)."""
    store = PodStore()
    for outcome, help_ in FAMILIES.items():
        store.declare(family(outcome), "counter", help_)
    return store


def count(task: str, outcome: str) -> None:
    """Add one to the outcome counter; never raises (metrics must not break a run)."""
    try:
        store = _store()
        label = store.admit("django_q_unique_task", "task", task, TASK_CAP)
        store.apply([Update(family(outcome), "_total", labels_of(task=label), 1.0)])
    except Exception as exc:
        log.warning("could not record unique-task %s for %s: %s", outcome, task, exc)


def seed(task: str) -> None:
    """Make every counter of a registered task exist at 0."""
    try:
        store = _store()
        label = store.admit("django_q_unique_task", "task", task, TASK_CAP)
        store.apply([Update(family(o), "_total", labels_of(task=label), 0.0) for o in FAMILIES])
    except Exception as exc:
        log.warning("could not seed unique-task counters for %s: %s", task, exc)
