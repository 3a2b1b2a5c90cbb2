"""django_q_unique_task_*: state of every registered unique task (cluster-wide).

Read from the shared cache, so every exporter replica publishes the same
values (aggregate with ``max by (task)``). The lock counters are per pod and
served by the pod-store collector; this collector tells it which tasks are
registered (``lock_counter_baseline``), so a task that never ran in this pod
reads 0 rather than nothing (``increase()`` then sees its first run). It only
reads: nothing is written to the pod store during a scrape.

A task not seen for ``forget_after`` seconds (``djq_contract.forgetting``) is left
out, lock counters included, as soon as the period has passed: the workers
delete its entry only when one of them next registers, which may never happen
once a site's last unique task is gone.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from djq_contract import catalogue, forgetting
from exporter.collectors import add, family
from exporter.collectors.pod import Series


class UniqueTaskCollector:
    name = "unique_tasks"

    def __init__(self, source, task_cap: int | None = None,
                 forget_after: float = forgetting.DEFAULT_FORGET_AFTER) -> None:
        self.source = source
        self.forget_after = forget_after
        self.task_cap = catalogue.UNIQUE_TASK_CAP.size() if task_cap is None else task_cap
        self._names: tuple[str, ...] = ()  # registered task names, as of the last read
        self._baseline: tuple[tuple[str, ...], list[Series]] = ((), [])  # (names, series)

    def collect(self) -> Iterable[Metric]:
        snap = self.source.read()
        tasks = [t for t in snap.tasks
                 if not forgetting.forgotten(t.seen, snap.now, self.forget_after)]
        self._names = tuple(t.name for t in tasks)
        running, age, timeout, success, duration = (family(spec) for spec in (
            catalogue.UNIQUE_RUNNING, catalogue.UNIQUE_HEARTBEAT_AGE,
            catalogue.UNIQUE_HEARTBEAT_TIMEOUT, catalogue.UNIQUE_LAST_SUCCESS,
            catalogue.UNIQUE_LAST_DURATION))
        for task in tasks:
            labels = {"task": task.name}
            add(running, labels, 1 if task.running else 0)
            add(timeout, labels, task.timeout)
            if task.holder is not None and task.holder.beat is not None:
                add(age, labels, max(0.0, snap.now - task.holder.beat))
            if task.last_success is not None:
                add(success, labels, task.last_success)
            if task.last_duration is not None:
                add(duration, labels, task.last_duration)
        return [running, age, timeout, success, duration]

    def lock_counter_baseline(self) -> list[Series]:
        """Every lock counter of the registered tasks (the first ``task_cap`` names, the
        workers' label budget), for the pod-store collector to show at 0 where this
        pod's workers have not counted yet. Known from the previous read: collectors run
        side by side, so a newly registered task reads 0 from the scrape after. The same
        list, never mutated, while the registry is unchanged: the pod-store collector
        builds its lookup table only from a new one."""
        names = self._names
        if self._baseline[0] != names:  # rebuilt only when the registry changed
            self._baseline = (names, [(spec.name, "_total", (("task", name),))
                                      for spec in catalogue.LOCK_OUTCOMES.values()
                                      for name in sorted(names)[: self.task_cap]])
        return self._baseline[1]
