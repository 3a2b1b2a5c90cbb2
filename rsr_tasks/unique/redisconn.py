"""A bounded Redis client on the server of a Django Redis cache.

Locks and heartbeat records live in the same Redis as the Django cache, so
the client is built exactly as Django builds the cache's write pool (the
first LOCATION, the same OPTIONS: database, credentials, TLS, parser), but
with short socket timeouts and no hidden retries: a heartbeat must notice a
dead or blackholed Redis within its expiry, never wait on it for minutes,
and a retried EVALSHA after a timeout could act twice.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def _bounded(options: dict, timeout: float) -> dict:
    out = dict(options)
    for key in ("socket_timeout", "socket_connect_timeout"):
        given = out.get(key)
        out[key] = timeout if given is None else min(float(given), timeout)
    out["retry"] = Retry(NoBackoff(), 0)
    out["health_check_interval"] = 0
    return out


def client_for_cache(alias: str, timeout: float) -> redis.Redis | None:
    """The client for cache ``alias`` when it is a Redis cache, else None.

    Django's ``RedisCache``: its own server list and pool options (private
    attributes, stable since Django 4.0). Other Redis cache backends
    (django-redis and the like): the first URL of ``LOCATION`` and any
    ``socket_*`` OPTIONS.
    """
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches[alias]
    if isinstance(cache, RedisCache):
        client = cache._cache
        pool = redis.ConnectionPool.from_url(client._servers[0],
                                             **_bounded(client._pool_options, timeout))
        return redis.Redis(connection_pool=pool)
    conf = settings.CACHES[alias]
    if not conf.get("BACKEND", "").endswith("RedisCache"):
        return None
    location = conf["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    options = {k: v for k, v in (conf.get("OPTIONS") or {}).items()
               if k in ("socket_timeout", "socket_connect_timeout")}
    return redis.Redis.from_url(url.strip(), **_bounded(options, timeout))
