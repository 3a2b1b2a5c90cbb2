"""Run a page's source reads side by side, within one budget, one flight per source.

Like the scrape runner: a read that fails or outlives the budget becomes an
error string for its section, never an exception for the page. A read still
running from an earlier page load (a hung backend, a second browser tab) is
joined, not started again, so page loads cannot pile up threads on a backend
that does not answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from exporter.errors import describe


@dataclass(frozen=True)
class Outcome:
    value: Any = None
    error: str | None = None  # None: the read worked and ``value`` holds its result
    note: str | None = None  # not read at all, and why (this exporter has no such source)


class ParallelReads:
    def __init__(self, reads: Mapping[str, Callable[[], Any]], executor: ThreadPoolExecutor,
                 budget: float) -> None:
        self.reads = dict(reads)
        self.executor = executor
        self.budget = budget
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}

    def _start(self, name: str) -> Future:
        with self._lock:
            running = self._inflight.get(name)
            if running is not None and not running.done():
                return running
            future = self.executor.submit(self.reads[name])
            self._inflight[name] = future
            return future

    def run(self) -> dict[str, Outcome]:
        futures = {name: self._start(name) for name in self.reads}
        wait(list(futures.values()), timeout=self.budget)
        out = {}
        for name, future in futures.items():
            if not future.done():
                out[name] = Outcome(error=f"no answer within {self.budget:g}s")
                continue
            try:
                out[name] = Outcome(future.result())
            except Exception as exc:
                out[name] = Outcome(error=describe(exc))
        return out
