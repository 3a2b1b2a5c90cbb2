"""A cache that lives from one scrape to the next, for work a scrape repeats.

Most of what a scrape decodes is what the previous scrape decoded (the same
label sets, the same unchanged records). Keeping only what the last read
touched bounds the cache by the current cardinality, never by history, so a
task or label value that disappears is forgotten one read later.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LastRead(Generic[V]):
    """``get(key, compute)`` during a read; ``rotate()`` once the read is done."""

    def __init__(self) -> None:
        self._previous: dict[Hashable, V] = {}
        self._current: dict[Hashable, V] = {}

    def get(self, key: Hashable, compute: Callable[[Hashable], V]) -> V:
        value = self._current.get(key, _MISSING)
        if value is _MISSING:
            value = self._previous.get(key, _MISSING)
            if value is _MISSING:
                value = compute(key)
            self._current[key] = value
        return value  # type: ignore[return-value]

    def rotate(self) -> None:
        self._previous, self._current = self._current, {}

    def __len__(self) -> int:
        return len(self._previous)


_MISSING = object()
