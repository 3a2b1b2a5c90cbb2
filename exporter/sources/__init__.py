"""The only code that talks to Redis, the database or the Django cache.

Every call is read-only and bounded by ``Config.backend_timeout``. Sources
return plain values from ``exporter.model``; they raise on failure and leave
the decision of what a failure means to collectors and health.
"""

from __future__ import annotations

from dataclasses import dataclass

from djq_contract.catalogue import SCOPE_CLUSTER, SCOPE_LOCAL
from djq_contract.keys import stat_index_key
from exporter.config import Config
from exporter.djangoenv import QSetup
from exporter.sources.keyspace import REFRESH, KeyspaceDiscovery
from exporter.sources.localstat import LocalStatSource
from exporter.sources.queue import OrmQueueSource, QueueSource, RedisQueueSource
from exporter.sources.stats import CacheStatSource, RedisStatSource, StatSource


@dataclass(frozen=True)
class Sources:
    stats: StatSource
    queue: QueueSource
    discovery: KeyspaceDiscovery | None = None  # Redis: background SCAN for unindexed keys

    def close(self) -> None:
        if self.discovery is not None:
            self.discovery.stop()


def build(setup: QSetup, cfg: Config) -> Sources:
    """Pick the source implementations that match the broker set-up ("redis" or "orm":
    ``exporter.djangoenv`` refuses any other broker at start) and the scope: with
    ``--scope local`` the Stats are read through ``LocalStatSource`` (this host's key
    only); with ``--scope cluster`` there is no local cluster to look for."""
    local_host = None if cfg.scope == SCOPE_CLUSTER else cfg.hostname
    full: RedisStatSource | CacheStatSource
    discovery = None
    if setup.broker == "redis":
        from djq_contract.redisconn import client_for_django_redis, connect

        if setup.django_redis:  # the connection django-q2 takes from django-redis
            from django.conf import settings

            client = client_for_django_redis(settings.CACHES[setup.django_redis],
                                             cfg.backend_timeout)
        else:
            client = connect(setup.redis_url, setup.redis_kwargs, cfg.backend_timeout)
        prefix = setup.stat_prefix
        discovery = KeyspaceDiscovery(client, prefix, stat_index_key(prefix), setup.stat_index,
                                      refresh=None if cfg.scope == SCOPE_LOCAL else REFRESH)
        discovery.start()
        full = RedisStatSource(client, setup, cfg.backend_timeout, local_host, discovery)
        queue: QueueSource = RedisQueueSource(client, setup, discovery)
    else:
        full, queue = CacheStatSource(setup), OrmQueueSource(setup)
    stats: StatSource = full
    if cfg.scope == SCOPE_LOCAL:
        stats = LocalStatSource(full, setup, cfg.hostname)
    return Sources(stats=stats, queue=queue, discovery=discovery)
