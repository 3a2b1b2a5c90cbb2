"""A project that adds django-q-exporter as docs/adoption.md says, shaped like the
deployment it comes from: django-q2's ORM broker on PostgreSQL, Django's own
RedisCache (cluster Stats and unique-task locks), cluster "akvo-rsr".

Connection details come from the environment, as in a container.
"""

import os

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "Europe/Amsterdam"  # not UTC: lock and heartbeat times must not care
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_q",
    "rsr_tasks",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["DB_NAME"],
        "USER": os.environ.get("DB_USER", "postgres"),
        "HOST": os.environ.get("DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DB_PORT", "5432"),
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["REDIS_URL"],
    }
}
Q_CLUSTER = {
    "name": "akvo-rsr",
    "orm": "default",
    "workers": 2,
    "timeout": 300,
    "retry": 360,
    "save_limit": 250,
    "recycle": 500,
    # A failed task is final: without this (and max_attempts 0) it stays leased and
    # runs again every `retry` seconds, so django_q_queue_in_flight never drops.
    "ack_failures": True,
}
