"""Make any django-q2 Redis broker keep an index of cluster Stat keys and queues.

django-q2 finds cluster Stats with ``KEYS django_q:{name}:cluster:*``, which
blocks Redis and costs O(whole keyspace). The index mixin additionally
records each Stat key in a sorted set scored by its expiry time, so readers
(the exporter) find live Stats with one ``ZRANGEBYSCORE`` + one ``MGET``,
independent of how many unrelated keys Redis holds. It also records the name
of every queue a cluster consumes (with each Stat) or a task is enqueued to,
scored by the time of that activity, so readers list every queue without
scanning either. Index writes share the round trip of the write they follow
(one pipeline); expired entries are pruned by the writers; readers never write.

``install()`` (called by the app's ``ready()``, so in every qcluster process)
substitutes an indexing subclass of whatever Redis broker class the settings
configure, stock or custom: the workers keep the index without any change to
``Q_CLUSTER``.
"""

from __future__ import annotations

import logging
import re
import sys
import time

from django_q.brokers.redis_broker import Redis

from djq_contract.keys import (
    STAT_INDEX_RETENTION,
    queue_name,
    queues_key,
    stat_index_key,
)

log = logging.getLogger("rsr_tasks.broker")


class StatIndexMixin:
    """Adds the index writes to a django-q2 Redis broker (mix in before the class)."""

    keeps_stat_index = True  # djq_contract.keys.STAT_INDEX_FLAG: the exporter reads the index

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        prefix = key.rsplit(":", 1)[0]
        now = time.time()
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(key, value, timeout)
        pipe.zadd(stat_index_key(prefix), {key: now + timeout})
        pipe.zremrangebyscore(stat_index_key(prefix), "-inf", now - STAT_INDEX_RETENTION)
        pipe.zadd(queues_key(prefix), {queue_name(self.list_key): now})
        pipe.zremrangebyscore(queues_key(prefix), "-inf", now - STAT_INDEX_RETENTION)
        pipe.execute()

    def enqueue(self, task):
        from django_q.conf import Conf

        pipe = self.connection.pipeline(transaction=False)
        pipe.rpush(self.list_key, task)
        pipe.zadd(queues_key(Conf.Q_STAT), {queue_name(self.list_key): time.time()})
        return pipe.execute()[0]


class IndexedRedisBroker(StatIndexMixin, Redis):
    """django-q2's stock Redis broker with the index (for ``Q_CLUSTER['broker_class']``)."""


def indexing(cls: type) -> type:
    """``cls`` itself if it keeps the index, else a subclass of it that does, published
    in this module under a stable name so ``get_broker()`` can import it by path."""
    if issubclass(cls, StatIndexMixin):
        return cls
    name = re.sub(r"\W", "_", f"Indexed__{cls.__module__}__{cls.__qualname__}")
    module = sys.modules[__name__]
    made = getattr(module, name, None)
    if made is None:
        made = type(name, (StatIndexMixin, cls), {"__module__": __name__})
        setattr(module, name, made)
    return made


def configured_redis_class() -> type | None:
    """The Redis broker class django-q2's ``get_broker()`` would build, or None when the
    settings choose another broker (ORM, SQS, IronMQ, MongoDB, a non-Redis class)."""
    from django.utils.module_loading import import_string
    from django_q.conf import Conf

    if Conf.BROKER_CLASS:
        try:
            cls = import_string(Conf.BROKER_CLASS)
        except ImportError:
            return None  # django-q2 reports that itself
        return cls if isinstance(cls, type) and issubclass(cls, Redis) else None
    if Conf.IRON_MQ or isinstance(Conf.SQS, dict) or Conf.ORM or Conf.MONGO:
        return None
    return Redis


def install() -> str | None:
    """Point django-q2 at an indexing subclass of the configured Redis broker class.

    Returns the new ``broker_class`` path, or None when the broker is not Redis (the
    cache-backed brokers keep a key list already) or already keeps the index."""
    from django_q.conf import Conf

    cls = configured_redis_class()
    if cls is None or issubclass(cls, StatIndexMixin):
        return None
    made = indexing(cls)
    Conf.BROKER_CLASS = f"{made.__module__}.{made.__name__}"
    log.debug("broker %s.%s keeps the Stat index as %s", cls.__module__, cls.__qualname__,
              Conf.BROKER_CLASS)
    return Conf.BROKER_CLASS
