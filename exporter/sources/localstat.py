"""Read only this host's Stat: one key, one round trip, whatever the number of pods.

With ``--scope local`` every worker pod's exporter judges and publishes its
own cluster only, so reading every other pod's Stat on each probe would make
the broker's work per interval grow with the square of the pods. This source
remembers the key of the local cluster's Stat and reads that key alone. It
falls back to the full reader (index + MGET, or the cache key list) only when
the remembered key is gone: at start, after the cluster restarted under a new
``cluster_id``, or while it is stopped; and then at most every ``LOOKUP_GAP``
seconds, so a pod whose cluster is down costs no more than one full read per
gap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from exporter.djangoenv import QSetup
from exporter.model import StatsReading
from exporter.sources.stats import KeyedReading, decode_keyed

#: Seconds between two look-ups of the local key while it is unknown.
LOOKUP_GAP = 1.0


class KeyedStatSource(Protocol):
    def read_keyed(self) -> KeyedReading: ...

    def get(self, key) -> bytes | None: ...

    def other_names(self) -> tuple[str, ...]: ...


class LocalStatSource:
    def __init__(self, full: KeyedStatSource, setup: QSetup, host: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.full = full
        self.setup = setup
        self.host = host
        self.clock = clock
        self._lock = threading.Lock()
        self._key = None  # the local Stat's key, once found
        self._last_lookup: float | None = None
        self._last_rejected = (0, 0)  # (bad signatures, undecodable) of the last look-up
        self.lookups = 0  # full reads made (for tests and the bench)

    def read(self) -> StatsReading:
        key = self._key
        if key is not None:
            pack = self.full.get(key)
            stats, bad, undecodable = decode_keyed([key], [pack], self.setup)
            if stats and stats[0][1].host == self.host:
                return StatsReading((stats[0][1],), bad, undecodable, round_trips=1)
            with self._lock:
                if self._key == key:
                    self._key = None  # expired (stopped or restarted) or no longer ours
        return self._lookup()

    def _lookup(self) -> StatsReading:
        with self._lock:
            now = self.clock()
            if self._last_lookup is not None and now - self._last_lookup < LOOKUP_GAP:
                bad, undecodable = self._last_rejected
                return StatsReading((), bad, undecodable, round_trips=0)
            self._last_lookup = now
            self.lookups += 1
        keyed = self.full.read_keyed()
        mine = [(k, s) for k, s in keyed.stats if s.host == self.host]
        newest = max(mine, key=lambda pair: pair[1].timestamp, default=None)
        with self._lock:
            self._last_rejected = (keyed.bad_signatures, keyed.undecodable)
            if newest is not None:
                self._key = newest[0]
        return StatsReading(tuple(s for _, s in mine), keyed.bad_signatures,
                            keyed.undecodable, keyed.round_trips)

    def other_names(self) -> tuple[str, ...]:
        """Diagnosis at start (other cluster names with Stats): the full reader's."""
        return self.full.other_names()
