"""Database, cache and django-q2 settings chosen by environment variables.

One place decides the broker set-up so the demo, the tests and a real
deployment agree:

* nothing set      -> embedded default: SQLite database, ORM broker, and a
                      cross-process Django cache in a second SQLite file
                      (django-q2 keeps cluster Stats in the cache for
                      non-Redis brokers, so it must be shared by processes);
* ``DATABASE_URL`` -> PostgreSQL database (ORM broker on it, cache table in it);
* ``REDIS_URL``    -> Redis broker and Redis cache (database stays as above).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None


def database_from_url(url: str) -> dict:
    """Parse ``postgres://user:pass@host:port/name?opt=v`` into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported (use postgres://)"
        )
    options: dict[str, str] = {}
    for pair in filter(None, parts.query.split("&")):
        key, _, value = pair.partition("=")
        options[key] = unquote(value)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": 0,
    }


def build(env: dict[str, str] | None = None, base_dir: Path | None = None) -> dict:
    """Return ``DATABASES``, ``CACHES`` and ``Q_CLUSTER`` for the environment."""
    env = dict(os.environ if env is None else env)
    var = Path(env.get("DJANGO_Q_DATA_DIR") or (base_dir or Path.cwd()) / "var")
    redis_url = env.get("REDIS_URL", "").strip()
    database_url = env.get("DATABASE_URL", "").strip()

    if database_url:
        databases = {"default": database_from_url(database_url)}
    else:
        var.mkdir(parents=True, exist_ok=True)
        databases = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(var / "db.sqlite3"),
                # Several processes write (broker, monitor, scheduler): wait
                # for the lock instead of failing, and let readers run in WAL.
                "OPTIONS": {
                    "timeout": 30,
                    "transaction_mode": "IMMEDIATE",
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                },
            }
        }

    if redis_url:
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": redis_url,
                "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
            }
        }
    elif database_url:
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "django_q_cache",
            }
        }
    else:
        databases["cache"] = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(var / "cache.sqlite3"),
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.db.DatabaseCache",
                "LOCATION": "django_q_cache",
            }
        }

    timeout = _int(env, "Q_TIMEOUT", 300)
    q_cluster: dict = {
        "name": env.get("DJANGO_Q_NAME", "rsr"),
        "workers": _int(env, "Q_WORKERS", 2),
        "recycle": _int(env, "Q_RECYCLE", 500),
        # timeout < retry: a task is never handed out again while it may still run.
        "timeout": timeout,
        "retry": _int(env, "Q_RETRY", timeout + 60),
        "max_attempts": _int(env, "Q_MAX_ATTEMPTS", 1),
        "save_limit": _int(env, "Q_SAVE_LIMIT", 250),
        "catch_up": False,
        "ack_failures": True,
        "poll": 0.2,
        "label": "Django Q2",
        "cache": "default",
    }
    if q_cluster["timeout"] >= q_cluster["retry"]:
        raise ImproperlyConfigured(
            f"Q_TIMEOUT ({q_cluster['timeout']}) must be lower than Q_RETRY ({q_cluster['retry']})"
        )
    if redis_url:
        q_cluster["redis"] = redis_url
        # Keeps an index of Stat keys so readers never scan the keyspace.
        q_cluster["broker_class"] = "rsr_tasks.broker.IndexedRedisBroker"
    else:
        q_cluster["orm"] = "default"
    return {"DATABASES": databases, "CACHES": caches, "Q_CLUSTER": q_cluster}


class CacheRouter:
    """Keep the cache table in the ``cache`` SQLite file when one exists.

    Separating it from the broker's database halves lock contention between
    the sentinel's Stat writes and the ORM broker's polling.
    """

    app_label = "django_cache"  # Django's DatabaseCache pseudo-model

    def db_for_read(self, model, **hints):
        return self._route(model)

    def db_for_write(self, model, **hints):
        return self._route(model)

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        from django.conf import settings

        if "cache" not in settings.DATABASES:
            return None
        if app_label == self.app_label:
            return db == "cache"
        return db != "cache"

    def _route(self, model):
        from django.conf import settings

        if model._meta.app_label == self.app_label and "cache" in settings.DATABASES:
            return "cache"
        return None
