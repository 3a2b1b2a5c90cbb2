"""Read unique-task records (rsr_tasks' registry, heartbeats, last runs); read-only.

Two round trips whatever the number of tasks (registry + one pipelined read
of all records); ages use the store's clock (Redis TIME), not this host's.
"""

from __future__ import annotations

from exporter.djangoenv import QSetup


class UniqueTaskSource:
    def __init__(self, setup: QSetup, timeout: float) -> None:
        from rsr_tasks.unique import store

        self.store = store.build(setup.cache_alias, setup.cluster_name, timeout)

    def read(self):
        return self.store.read_all()
