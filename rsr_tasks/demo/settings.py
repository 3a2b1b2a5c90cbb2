"""Settings of the runnable demo project (also used by the test suite)."""

import os
from pathlib import Path

from rsr_tasks import envsettings

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-insecure-secret-key-change-me")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_q",
    "rsr_tasks.apps.RsrTasksConfig",
]
ROOT_URLCONF = "rsr_tasks.demo.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
_env = envsettings.build(base_dir=BASE_DIR)
DATABASES = _env["DATABASES"]
CACHES = _env["CACHES"]
Q_CLUSTER = _env["Q_CLUSTER"]
DATABASE_ROUTERS = ["rsr_tasks.envsettings.CacheRouter"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": os.environ.get("DJANGO_Q_LOG_LEVEL", "WARNING")}},
}
