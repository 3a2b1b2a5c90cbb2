"""Read unique-task records (rsr_tasks' registry, heartbeats, last runs); read-only.

Two round trips whatever the number of tasks (registry + one pipelined read
of all records); ages use the store's clock (Redis TIME), not this host's.
"""

from __future__ import annotations

from exporter.djangoenv import QSetup


class UniqueTaskSource:
    """Builds its store on first read, so a bad cache setting fails this collector
    (and is reported) instead of the exporter's start."""

    def __init__(self, setup: QSetup, timeout: float) -> None:
        self.setup = setup
        self.timeout = timeout
        self._store = None

    def read(self):
        if self._store is None:
            from rsr_tasks.unique import store

            self._store = store.build(self.setup.cache_alias, self.setup.cluster_name,
                                      self.timeout)
        return self._store.read_all()
