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

from djq_contract.keys import STAT_INDEX_RETENTION, stat_index_key


class IndexedRedisBroker(Redis):
    keeps_stat_index = True  # djq_contract.keys.STAT_INDEX_FLAG: the exporter reads the index

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        prefix = key.rsplit(":", 1)[0]
        now = time.time()
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(key, value, timeout)
        pipe.zadd(stat_index_key(prefix), {key: now + timeout})
        pipe.zremrangebyscore(stat_index_key(prefix), "-inf", now - STAT_INDEX_RETENTION)
        pipe.execute()
