"""A django-q2 Redis broker that keeps an index of cluster Stat keys.

django-q2 finds cluster Stats with ``KEYS django_q:{name}:cluster:*``, which
blocks Redis and costs O(whole keyspace). This broker additionally records
each Stat key in a sorted set scored by its expiry time, so readers (the
exporter) find live Stats with one ``ZRANGEBYSCORE`` + one ``MGET``,
independent of how many unrelated keys Redis holds. Expired entries are
pruned by the writers; readers never write.
"""

from __future__ import annotations

import time

from django_q.brokers.redis_broker import Redis

#: Index entries older than this are pruned by writers (seconds).
INDEX_RETENTION = 3600


def index_key(stat_prefix: str) -> str:
    """Name of the sorted set that indexes the Stat keys under ``stat_prefix``."""
    return f"{stat_prefix}:index"


class IndexedRedisBroker(Redis):
    def set_stat(self, key: str, value: str, timeout: int) -> None:
        prefix = key.rsplit(":", 1)[0]
        now = time.time()
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(key, value, timeout)
        pipe.zadd(index_key(prefix), {key: now + timeout})
        pipe.zremrangebyscore(index_key(prefix), "-inf", now - INDEX_RETENTION)
        pipe.execute()
