"""Read every cluster Stat under the watched name, without side effects.

django-q2's own ``Stat.get_all()`` is unusable here: on Redis it runs
``KEYS`` (blocks the server, O(keyspace)); on cache brokers it writes the key
list back. These readers only read.
"""

from __future__ import annotations

import logging
import time
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


def _decode_all(packs, setup: QSetup) -> tuple[list[ClusterStat], int, int]:
    stats: list[ClusterStat] = []
    bad = undecodable = 0
    for pack in packs:
        if not pack:
            continue
        try:
            stats.append(decode.to_cluster_stat(
                decode.loads(pack, setup.secret_key, setup.cluster_name), setup.cluster_name))
        except decode.BadSignature:
            bad += 1
        except Exception as exc:  # a Stat pickled by an incompatible django-q2
            undecodable += 1
            log.debug("undecodable Stat: %s", exc)
    return stats, bad, undecodable


class RedisStatSource:
    """Index (ZRANGEBYSCORE) + MGET: two round trips whatever the keyspace size.

    Keys come from the index the workers keep (``rsr_tasks.broker``) and, for
    workers without it, from ``KeyspaceDiscovery``'s last background pass: a
    read never scans the keyspace.
    """

    def __init__(self, client, setup: QSetup, timeout: float, local_host: str = "",
                 discovery: KeyspaceDiscovery | None = None) -> None:
        self.client = client
        self.setup = setup
        self.timeout = timeout
        self.local_host = local_host
        self.discovery = discovery
        self.index = stat_index_key(setup.stat_prefix)

    def read(self) -> StatsReading:
        indexed = self.client.zrangebyscore(self.index, time.time() - INDEX_SKEW, "+inf")
        found = self.discovery.stat_keys() if self.discovery else ()
        keys = list(dict.fromkeys([*indexed, *found]))
        packs = self.client.mget(keys) if keys else []
        stats, bad, undecodable = _decode_all(packs, self.setup)
        if self.discovery is not None:
            from_index = set(indexed)
            gone = [k for k, p in zip(keys, packs, strict=True)
                    if p is None and k not in from_index]
            local = any(s.host == self.local_host for s in stats)
            self.discovery.observe(local, len(indexed), gone)
        return StatsReading(tuple(stats), bad, undecodable, round_trips=1 + (1 if keys else 0))

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
        from django.core.cache import caches

        from exporter.sources.dbconn import read_db

        cache = caches[self.setup.cache_alias]

        def fetch() -> tuple[list, list]:
            keys = cache.get(self.setup.stat_prefix) or []
            return keys, (list(cache.get_many(keys).values()) if keys else [])

        keys, packs = read_db(fetch)  # a DatabaseCache: dead connections dropped, one reconnect
        stats, bad, undecodable = _decode_all(packs, self.setup)
        return StatsReading(tuple(stats), bad, undecodable, round_trips=2 if keys else 1)

    def other_names(self) -> tuple[str, ...]:
        return ()
