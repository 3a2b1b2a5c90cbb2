"""A Redis client for the exporter: short timeouts, no hidden retries."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from exporter.djangoenv import QSetup


def make_client(setup: QSetup, timeout: float) -> redis.Redis:
    """Connect lazily; a down Redis at start is not an error (it reads as down)."""
    bounded = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 0,
    }
    if setup.redis_url:
        return redis.Redis.from_url(setup.redis_url, **bounded)
    kwargs = dict(setup.redis_kwargs or {})
    kwargs.update(bounded)
    return redis.Redis(**kwargs)
