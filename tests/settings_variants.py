"""Demo settings with misconfigurations switched on by environment (tests only).

TEST_Q_CACHE_BACKEND=locmem   the Q cache becomes a per-process LocMemCache
TEST_Q_CACHE_ALIAS=name       Q_CLUSTER["cache"] names an alias (maybe missing)
TEST_Q_BROKER_CLASS=path      Q_CLUSTER["broker_class"] ("stock": no broker_class at all)
TEST_WITHOUT_RSR_TASKS=1      the rsr_tasks app is not installed
TEST_Q_ALT_CLUSTERS=a,b       Q_CLUSTER["ALT_CLUSTERS"] (for Q_CLUSTER_NAME=a)
TEST_UNIQUE_FORGET_AFTER=s    RSR_UNIQUE_TASKS["forget_after"]
TEST_Q_DJANGO_REDIS=alias     Q_CLUSTER["django_redis"] (nothing else changed)
TEST_DJANGO_REDIS=1           the cache is django-redis on $REDIS_URL, and the broker
                              reaches Redis through it (Q_CLUSTER["django_redis"])
TEST_REDIS_SENTINELS=h:p,...  with TEST_REDIS_SERVICE=name: django-redis through Redis
                              Sentinel, for the cache, the broker and the locks
"""

import os

from rsr_tasks.demo.settings import *  # noqa: F403

if os.environ.get("TEST_Q_CACHE_BACKEND") == "locmem":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("TEST_Q_CACHE_ALIAS"):
    Q_CLUSTER = {**Q_CLUSTER, "cache": os.environ["TEST_Q_CACHE_ALIAS"]}  # noqa: F405
if os.environ.get("TEST_Q_BROKER_CLASS", "stock") != "stock":
    Q_CLUSTER = {**Q_CLUSTER, "broker_class": os.environ["TEST_Q_BROKER_CLASS"]}  # noqa: F405
if os.environ.get("TEST_Q_BROKER_CLASS") == "stock":  # django-q2's own broker, no class set
    Q_CLUSTER = {k: v for k, v in Q_CLUSTER.items() if k != "broker_class"}  # noqa: F405
if os.environ.get("TEST_WITHOUT_RSR_TASKS"):  # a project running django-q2 alone
    INSTALLED_APPS = [a for a in INSTALLED_APPS if not a.startswith("rsr_tasks")]  # noqa: F405
if os.environ.get("TEST_Q_ALT_CLUSTERS"):  # clusters started with Q_CLUSTER_NAME=<one of them>
    Q_CLUSTER = {**Q_CLUSTER, "ALT_CLUSTERS": {  # noqa: F405
        n: {} for n in os.environ["TEST_Q_ALT_CLUSTERS"].split(",")}}
if os.environ.get("TEST_Q_DJANGO_REDIS"):
    Q_CLUSTER = {**Q_CLUSTER, "django_redis": os.environ["TEST_Q_DJANGO_REDIS"]}  # noqa: F405
if os.environ.get("TEST_UNIQUE_FORGET_AFTER"):
    RSR_UNIQUE_TASKS = {"forget_after": float(os.environ["TEST_UNIQUE_FORGET_AFTER"])}
if os.environ.get("TEST_DJANGO_REDIS") or os.environ.get("TEST_REDIS_SENTINELS"):
    # The shape docs/configuration.md gives for django-redis and Redis Sentinel.
    _options = {"SOCKET_TIMEOUT": 2, "SOCKET_CONNECT_TIMEOUT": 2}
    _location = os.environ.get("REDIS_URL", "")
    if os.environ.get("TEST_REDIS_SENTINELS"):
        _options.update(
            CLIENT_CLASS="django_redis.client.DefaultClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            SENTINELS=[(h, int(p)) for h, _, p in (
                s.rpartition(":") for s in os.environ["TEST_REDIS_SENTINELS"].split(","))])
        _location = f"redis://{os.environ['TEST_REDIS_SERVICE']}/0"
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache",
                          "LOCATION": _location, "OPTIONS": _options}}
    Q_CLUSTER = {**{k: v for k, v in Q_CLUSTER.items() if k != "redis"},  # noqa: F405
                 "django_redis": "default"}
