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


#: The Django cache backend of django-redis (PyPI ``django-redis``), which also reaches
#: Redis Sentinel (``OPTIONS["CONNECTION_FACTORY"]``).
DJANGO_REDIS_BACKEND = "django_redis.cache.RedisCache"


def bounded_django_redis(options: Mapping, timeout: float) -> dict:
    """django-redis ``OPTIONS`` bounded as ``bounded`` bounds redis-py's: socket timeouts
    of at most ``timeout`` for the servers and, with Sentinel, for the sentinels too; no
    retries, no health checks."""
    out = dict(options)
    for key in ("SOCKET_TIMEOUT", "SOCKET_CONNECT_TIMEOUT"):
        given = out.get(key)
        out[key] = timeout if not given else min(float(given), timeout)
    pool = bounded(out.get("CONNECTION_POOL_KWARGS") or {}, timeout)
    for key in ("socket_timeout", "socket_connect_timeout"):
        if key not in (out.get("CONNECTION_POOL_KWARGS") or {}):
            pool.pop(key)  # these would override the (maybe smaller) SOCKET_* given above
    out["CONNECTION_POOL_KWARGS"] = pool
    if out.get("SENTINELS"):
        # redis-py gives the sentinels only socket_* keywords when SENTINEL_KWARGS is unset
        # (copied from the bounded connection keywords); given ones are bounded here.
        given = out.get("SENTINEL_KWARGS")
        out["SENTINEL_KWARGS"] = bounded(given or {"socket_timeout": timeout}, timeout)
    return out


def django_redis_url(conf: Mapping) -> str:
    """The primary (write) server of a django-redis cache: the first of ``LOCATION``
    (a Sentinel URL names the service: ``redis://service/0``)."""
    location = conf.get("LOCATION") or ""
    if isinstance(location, list | tuple):
        return str(location[0]).strip()
    return str(location).split(",")[0].strip()


def client_for_django_redis(conf: Mapping, timeout: float):
    """A bounded client for a django-redis cache (``settings.CACHES[alias]``), built by
    the cache's own connection factory, so it reaches the server Django and django-q2
    reach: the same URL, credentials, pool class and, with Sentinel, the current primary
    as the sentinels name it (re-asked after a connection error, i.e. after a failover).
    Its pool is our own, not the process-wide one django-redis caches per URL."""
    from django_redis.pool import get_connection_factory

    factory = get_connection_factory(options=bounded_django_redis(conf.get("OPTIONS") or {},
                                                                  timeout))
    pool = factory.get_connection_pool(factory.make_connection_params(django_redis_url(conf)))
    client_cls = getattr(factory, "redis_client_cls", None)
    if client_cls is None:
        import redis

        client_cls = redis.Redis
    return client_cls(connection_pool=pool, **getattr(factory, "redis_client_cls_kwargs", {}))


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
    django-redis: its own connection factory (``client_for_django_redis``, Sentinel
    included). Other Redis cache backends: the first URL of ``LOCATION`` and any
    ``socket_*`` OPTIONS.
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
    if conf.get("BACKEND") == DJANGO_REDIS_BACKEND:
        return client_for_django_redis(conf, timeout)
    if not conf.get("BACKEND", "").endswith("RedisCache"):
        return None
    url = django_redis_url(conf)
    options = {k: v for k, v in (conf.get("OPTIONS") or {}).items()
               if k in ("socket_timeout", "socket_connect_timeout")}
    return connect(url, options, timeout)
