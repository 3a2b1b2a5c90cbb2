"""Read every cluster Stat under the watched name, without side effects.

django-q2's own ``Stat.get_all()`` is unusable here: on Redis it runs
``KEYS`` (blocks the server, O(keyspace)); on cache brokers it writes the key
list back. These readers only read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from djq_contract.keys import stat_index_key
from exporter.djangoenv import QSetup
from exporter.model import ClusterStat, StatsReading
from exporter.sources import decode
from exporter.sources.keyspace import SCAN_COUNT, KeyspaceDiscovery

log = logging.getLogger("exporter.sources.stats")

#: Index entries whose expiry lies this far in the past are still fetched:
#: covers clock skew between the writing host and this one (MGET then
#: simply returns nothing for keys that are really gone).
INDEX_SKEW = 60.0


class StatSource(Protocol):
    def read(self) -> StatsReading: ...


def decode_keyed(keys, packs, setup: QSetup) -> tuple[list[tuple[object, ClusterStat]], int, int]:
    """The usable Stats among ``packs`` with the key each came from, and how many were
    rejected (bad signature) or undecodable."""
    stats: list[tuple[object, ClusterStat]] = []
    bad = undecodable = 0
    for key, pack in zip(keys, packs, strict=True):
        if not pack:
            continue
        try:
            stats.append((key, decode.to_cluster_stat(
                decode.loads(pack, setup.secret_key, setup.cluster_name), setup.cluster_name)))
        except decode.BadSignature:
            bad += 1
        except Exception as exc:  # a Stat pickled by an incompatible django-q2
            undecodable += 1
            log.debug("undecodable Stat: %s", exc)
    return stats, bad, undecodable


@dataclass(frozen=True)
class KeyedReading:
    """Every Stat read, with its key (what ``LocalStatSource`` needs to read one again)."""

    stats: list[tuple[object, ClusterStat]]
    bad_signatures: int
    undecodable: int
    round_trips: int

    def reading(self) -> StatsReading:
        return StatsReading(tuple(s for _, s in self.stats), self.bad_signatures,
                            self.undecodable, self.round_trips)


class RedisStatSource:
    """Index (ZRANGEBYSCORE) + MGET: two round trips whatever the keyspace size.

    Keys come from the index the workers keep (``rsr_tasks.broker``) and, for
    workers without it, from ``KeyspaceDiscovery``'s last background pass: a
    read never scans the keyspace.
    """

    def __init__(self, client, setup: QSetup, timeout: float, local_host: str | None = "",
                 discovery: KeyspaceDiscovery | None = None) -> None:
        # local_host None: no local cluster to find (the cluster-scope exporter), so a
        # missing one never hurries the keyspace discovery.
        self.client = client
        self.setup = setup
        self.timeout = timeout
        self.local_host = local_host
        self.discovery = discovery
        self.index = stat_index_key(setup.stat_prefix)

    def read(self) -> StatsReading:
        return self.read_keyed().reading()

    def read_keyed(self) -> KeyedReading:
        indexed = self.client.zrangebyscore(self.index, time.time() - INDEX_SKEW, "+inf")
        found = self.discovery.stat_keys() if self.discovery else ()
        keys = list(dict.fromkeys([*indexed, *found]))
        packs = self.client.mget(keys) if keys else []
        stats, bad, undecodable = decode_keyed(keys, packs, self.setup)
        if self.discovery is not None:
            from_index = set(indexed)
            gone = [k for k, p in zip(keys, packs, strict=True)
                    if p is None and k not in from_index]
            local = self.local_host is None or any(s.host == self.local_host
                                                   for _, s in stats)
            self.discovery.observe(local, len(indexed), gone)
        return KeyedReading(stats, bad, undecodable, round_trips=1 + (1 if keys else 0))

    def get(self, key) -> bytes | None:
        """One Stat by its key (one GET)."""
        return self.client.get(key)

    def other_names(self, limit_calls: int = 20) -> tuple[str, ...]:
        """Cluster names with Stats in Redis other than ours (diagnosis at start)."""
        names: set[str] = set()
        cursor = 0
        for _ in range(limit_calls):
            cursor, batch = self.client.scan(cursor, match="django_q:*:cluster*", count=SCAN_COUNT)
            for key in batch:
                parts = key.decode("utf-8", "replace").split(":")
                if len(parts) >= 3 and parts[1] != self.setup.cluster_name:
                    names.add(parts[1])
            if cursor == 0:
                break
        return tuple(sorted(names))


class CacheStatSource:
    """Cache-backed brokers (ORM): the key list, then one get_many. No writes."""

    def __init__(self, setup: QSetup) -> None:
        self.setup = setup

    def read(self) -> StatsReading:
        return self.read_keyed().reading()

    def read_keyed(self) -> KeyedReading:
        from exporter.sources.dbconn import read_db

        cache = self._cache()

        def fetch() -> tuple[list, list]:
            keys = cache.get(self.setup.stat_prefix) or []
            found = cache.get_many(keys) if keys else {}
            return keys, [found.get(k) for k in keys]

        keys, packs = read_db(fetch)  # a DatabaseCache: dead connections dropped, one reconnect
        stats, bad, undecodable = decode_keyed(keys, packs, self.setup)
        return KeyedReading(stats, bad, undecodable, round_trips=2 if keys else 1)

    def get(self, key) -> bytes | None:
        """One Stat by its key (one cache get)."""
        from exporter.sources.dbconn import read_db

        cache = self._cache()
        return read_db(lambda: cache.get(key))

    def _cache(self):
        from django.core.cache import caches

        return caches[self.setup.cache_alias]

    def other_names(self) -> tuple[str, ...]:
        return ()
