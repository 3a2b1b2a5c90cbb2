"""The one way this project builds a Redis client: short timeouts, no hidden retries.

Used for django-q2's Redis broker (the exporter's reads) and for the Redis
behind a Django cache (unique-task locks, heartbeats and their reader). A
heartbeat must notice a dead or blackholed Redis within its expiry, and a
probe within its budget: every socket operation is bounded by ``timeout``
(a smaller timeout from the settings is kept), redis-py retries nothing (a
retried EVALSHA after a timeout could act twice) and runs no health checks.
A client connects lazily: a Redis that is down at start reads as down later,
it is not a start-up error.

redis-py and Django are imported inside the functions, not at module import:
this package stays standard library only at import time, so loading the
contract (for the key layout or the catalogue) costs a worker or a test
nothing it does not use.
"""

from __future__ import annotations

from collections.abc import Mapping


def bounded(options: Mapping, timeout: float) -> dict:
    """``options`` with socket timeouts of at most ``timeout``, no retries, no health checks."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    out = dict(options)
    for key in ("socket_timeout", "socket_connect_timeout"):
        given = out.get(key)
        out[key] = timeout if given is None else min(float(given), timeout)
    out["retry"] = Retry(NoBackoff(), 0)
    out["health_check_interval"] = 0
    return out


def connect(url: str | None, options: Mapping | None, timeout: float):
    """A client for a Redis URL, or (no URL) for redis-py keyword arguments such as
    django-q2's ``Q_CLUSTER["redis"]`` dict."""
    import redis

    if url:
        return redis.Redis.from_url(url, **bounded(options or {}, timeout))
    return redis.Redis(**bounded(options or {}, timeout))


def client_for_cache(alias: str, timeout: float):
    """The client for Django cache ``alias`` when it is a Redis cache, else None.

    Locks and heartbeat records live in the same Redis as the Django cache, so the
    client is built as Django builds the cache's write pool: Django's ``RedisCache``
    gives its own server list and pool options (private attributes, stable since
    Django 4.0: the first LOCATION, the same database, credentials, TLS, parser).
    Other Redis cache backends (django-redis and the like): the first URL of
    ``LOCATION`` and any ``socket_*`` OPTIONS.
    """
    import redis
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    cache = caches[alias]
    if isinstance(cache, RedisCache):
        client = cache._cache
        pool = redis.ConnectionPool.from_url(client._servers[0],
                                             **bounded(client._pool_options, timeout))
        return redis.Redis(connection_pool=pool)
    conf = settings.CACHES[alias]
    if not conf.get("BACKEND", "").endswith("RedisCache"):
        return None
    location = conf["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else location.split(",")[0]
    options = {k: v for k, v in (conf.get("OPTIONS") or {}).items()
               if k in ("socket_timeout", "socket_connect_timeout")}
    return connect(url.strip(), options, timeout)
