"""Load Django settings once and describe the django-q2 set-up they imply.

This is the only place that reads django-q2's ``Conf``; everything after it
works on the plain ``QSetup`` value. It also bounds the exporter's own
database connections (connect and statement timeouts) before the first
connection is opened, so no query can hang a probe.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass

from djq_contract import forgetting, keys, redisconn
from exporter.config import Config, ConfigError
from exporter.urls import mask_url

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@dataclass(frozen=True)
class QSetup:
    """What the exporter needs to know about the watched django-q2 deployment."""

    cluster_name: str  # Q_CLUSTER name: Stat key prefix and signing salt
    queue_name: str  # broker list key (cluster_name unless multi-queue)
    broker: str  # "redis" | "orm"
    broker_description: str  # for logs and the landing page, password masked
    redis_url: str | None
    redis_kwargs: dict | None
    orm_alias: str | None
    cache_alias: str
    secret_key: str
    task_timeout: float | None
    workers: int
    retry: float
    problems: tuple[str, ...]  # misconfigurations diagnosed at start
    stat_index: bool = False  # workers keep the Stat and queue index (rsr_tasks.broker)
    django_redis: str | None = None  # Q_CLUSTER["django_redis"]: the broker's cache alias
    unique_forget_after: float = forgetting.DEFAULT_FORGET_AFTER  # seconds unseen

    @property
    def stat_prefix(self) -> str:
        return keys.stat_prefix(self.cluster_name)


def setup(cfg: Config) -> QSetup:
    """Initialise Django from ``cfg.django_settings`` and read the django-q2 set-up."""
    if not cfg.django_settings:
        raise ConfigError(
            "no Django settings: pass --django-settings or set DJANGO_SETTINGS_MODULE"
        )
    os.environ["DJANGO_SETTINGS_MODULE"] = cfg.django_settings
    _project_from_cwd(cfg.django_settings)
    import django
    from django.conf import settings

    try:
        django.setup()
    except ModuleNotFoundError as exc:
        raise ConfigError(f"Django settings {cfg.django_settings!r}: {exc} (run from the "
                          "project directory or put it on PYTHONPATH)") from None
    except Exception as exc:
        raise ConfigError(f"Django settings {cfg.django_settings!r} failed to load: "
                          f"{type(exc).__name__}: {exc}") from None
    _bound_database_calls(settings.DATABASES, cfg.backend_timeout)
    _bound_cache_calls(getattr(settings, "CACHES", {}), cfg.backend_timeout)
    return describe(settings, cfg)


def _project_from_cwd(settings_module: str) -> None:
    """``python -m exporter`` and ``manage.py`` find the project in the working directory,
    the ``django-q-exporter`` console script would not: add the directory when the
    settings' top package is not importable otherwise, so all three start alike."""
    top = settings_module.split(".", 1)[0]
    try:
        if importlib.util.find_spec(top) is not None:
            return
    except (ImportError, ValueError):
        return
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _bound_database_calls(databases: dict, timeout: float) -> None:
    for db in databases.values():
        options = db.setdefault("OPTIONS", {})
        engine = db.get("ENGINE", "")
        if "postgresql" in engine:
            # libpq rounds connect_timeout to whole seconds, minimum 2.
            options.setdefault("connect_timeout", max(2, int(round(timeout))))
            ms = max(1, int(timeout * 1000))
            extra = options.get("options", "")
            if "statement_timeout" not in extra:
                options["options"] = f"{extra} -c statement_timeout={ms}".strip()
        elif "sqlite3" in engine:
            options["timeout"] = min(float(options.get("timeout", timeout)), timeout)


def _broker_kind(q: dict) -> str:
    """"redis" or "orm", from Q_CLUSTER; anything else is a start-up error."""
    from django.utils.module_loading import import_string
    from django_q.brokers.orm import ORM
    from django_q.brokers.redis_broker import Redis

    path = q.get("broker_class")
    if path:
        try:
            cls = import_string(path)
        except ImportError as exc:
            raise ConfigError(f"Q_CLUSTER['broker_class'] {path!r} cannot be imported: "
                              f"{exc}") from None
        if isinstance(cls, type) and issubclass(cls, Redis):
            return "redis"
        if isinstance(cls, type) and issubclass(cls, ORM):
            return "orm"
        raise ConfigError(f"Q_CLUSTER['broker_class'] {path!r} is not supported "
                          "(the Redis and ORM brokers and their subclasses are)")
    for key in ("sqs", "ironmq", "mongo", "disque_nodes"):
        if key in q:
            raise ConfigError(f"Q_CLUSTER[{key!r}]: this broker is not supported "
                              "(the Redis and ORM brokers are)")
    return "orm" if "orm" in q else "redis"


def _bound_cache_calls(caches: dict, timeout: float) -> None:
    """Redis-backed Django caches get socket timeouts (before first use); django-redis
    caches no retries either, and bounded sentinels."""
    for conf in caches.values():
        if conf.get("BACKEND") == redisconn.DJANGO_REDIS_BACKEND:
            conf["OPTIONS"] = redisconn.bounded_django_redis(conf.get("OPTIONS") or {}, timeout)
        elif conf.get("BACKEND", "").endswith("RedisCache"):
            options = conf.setdefault("OPTIONS", {})
            options["socket_timeout"] = min(float(options.get("socket_timeout", timeout)), timeout)
            options["socket_connect_timeout"] = min(
                float(options.get("socket_connect_timeout", timeout)), timeout)


def describe(settings, cfg: Config) -> QSetup:
    """Derive the QSetup from loaded settings, collecting misconfigurations."""
    q = dict(getattr(settings, "Q_CLUSTER", {}) or {})
    name = cfg.cluster_name or q.get("name", "default")
    queue_name = q.get("cluster_name", name) if not cfg.cluster_name else name
    problems: list[str] = []
    redis_url = None
    redis_kwargs = None
    orm_alias = None
    django_redis = None
    broker = _broker_kind(q)
    if broker == "orm":
        orm_alias = q.get("orm", "default")
        if orm_alias not in settings.DATABASES:
            raise ConfigError(f"Q_CLUSTER['orm'] names database {orm_alias!r}, "
                              "which is not in DATABASES")
        db = settings.DATABASES[orm_alias]
        description = f"orm:{orm_alias} ({db.get('ENGINE', '?').rsplit('.', 1)[-1]})"
    else:
        raw = q.get("redis", {})
        if q.get("django_redis"):
            # django-q2 then reads the broker through django-redis and ignores "redis".
            django_redis = str(q["django_redis"])
            description = _django_redis_broker(getattr(settings, "CACHES", {}), django_redis)
        elif isinstance(raw, str):
            _check_redis_url(raw)
            redis_url = raw
            description = f"redis:{mask_url(raw)}"
        else:
            redis_kwargs = dict(raw)
            description = "redis:{}:{}/{}".format(raw.get("host", "localhost"),
                                                  raw.get("port", 6379), raw.get("db", 0))

    cache_alias = q.get("cache", "default")
    if broker != "redis":
        caches = getattr(settings, "CACHES", {})
        if cache_alias not in caches:
            problems.append(f"Q_CLUSTER['cache'] names cache {cache_alias!r}, which is not in "
                            "CACHES: cluster Stats are invisible")
        elif caches[cache_alias].get("BACKEND") in PER_PROCESS_CACHES:
            backend = caches[cache_alias]["BACKEND"].rsplit(".", 1)[-1]
            problems.append(f"cache {cache_alias!r} is a per-process {backend}: the "
                            "exporter cannot see Stats saved by qcluster; use a shared "
                            "cache (Redis, database, memcached)")
    try:
        forget_after = forgetting.forget_after(getattr(settings, "RSR_UNIQUE_TASKS", {}) or {})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    timeout = q.get("timeout")
    return QSetup(
        cluster_name=name,
        queue_name=queue_name,
        broker=broker,
        broker_description=description,
        redis_url=redis_url,
        redis_kwargs=redis_kwargs,
        orm_alias=orm_alias,
        cache_alias=cache_alias,
        secret_key=settings.SECRET_KEY,  # django-q2 signs with SECRET_KEY only
        task_timeout=float(timeout) if timeout else None,
        workers=int(q.get("workers") or os.cpu_count() or 1),
        retry=float(q.get("retry", 60)),
        problems=tuple(problems),
        stat_index=_uses_stat_index(q),
        unique_forget_after=forget_after,
        django_redis=django_redis,
    )


def _django_redis_broker(caches: dict, alias: str) -> str:
    """The broker's description (passwords masked); a start-up error unless ``alias``
    is a django-redis cache, the only kind django-q2 can take a connection from."""
    conf = caches.get(alias)
    if conf is None:
        raise ConfigError(f"Q_CLUSTER['django_redis'] names cache {alias!r}, which is not "
                          "in CACHES")
    if conf.get("BACKEND") != redisconn.DJANGO_REDIS_BACKEND:
        raise ConfigError(f"Q_CLUSTER['django_redis'] names cache {alias!r}, whose BACKEND "
                          f"{conf.get('BACKEND')!r} is not {redisconn.DJANGO_REDIS_BACKEND!r}")
    try:
        import django_redis  # noqa: F401
    except ImportError:
        raise ConfigError("Q_CLUSTER['django_redis'] is set but django-redis is not "
                          "installed (pip install django-redis)") from None
    url = redisconn.django_redis_url(conf)
    options = conf.get("OPTIONS") or {}
    sentinels = options.get("SENTINELS")
    if sentinels:
        try:
            where = ",".join(f"{host}:{port}" for host, port in sentinels)
        except (TypeError, ValueError):
            raise ConfigError(f"CACHES[{alias!r}]['OPTIONS']['SENTINELS']: expected a list "
                              "of (host, port) pairs") from None
        return f"redis:{mask_url(url)} (django-redis {alias!r}, sentinels {where})"
    _check_redis_url(url)
    return f"redis:{mask_url(url)} (django-redis {alias!r})"


def _check_redis_url(url: str) -> None:
    """A malformed Redis URL is a start-up error, not a traceback at the first read."""
    from redis.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"Q_CLUSTER['redis'] {mask_url(url)}: {exc}") from None


def _uses_stat_index(q: dict) -> bool:
    """Whether the workers keep the Stat index: the ``rsr_tasks`` app (loaded by every
    worker with these settings) adds it to any Redis broker class; without the app,
    only a broker class that mixes it in does."""
    from django.apps import apps

    if apps.is_installed("rsr_tasks"):
        return True
    path = q.get("broker_class")
    if not path:
        return False
    from django.utils.module_loading import import_string

    cls = import_string(path)
    return bool(getattr(cls, keys.STAT_INDEX_FLAG, False))
