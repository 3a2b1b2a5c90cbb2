"""Demo settings with misconfigurations switched on by environment (tests only).

TEST_Q_CACHE_BACKEND=locmem   the Q cache becomes a per-process LocMemCache
TEST_Q_CACHE_ALIAS=name       Q_CLUSTER["cache"] names an alias (maybe missing)
TEST_Q_BROKER_CLASS=path      Q_CLUSTER["broker_class"]
TEST_UNIQUE_FORGET_AFTER=s    RSR_UNIQUE_TASKS["forget_after"]
"""

import os

from rsr_tasks.demo.settings import *  # noqa: F403

if os.environ.get("TEST_Q_CACHE_BACKEND") == "locmem":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("TEST_Q_CACHE_ALIAS"):
    Q_CLUSTER = {**Q_CLUSTER, "cache": os.environ["TEST_Q_CACHE_ALIAS"]}  # noqa: F405
if os.environ.get("TEST_Q_BROKER_CLASS"):
    Q_CLUSTER = {**Q_CLUSTER, "broker_class": os.environ["TEST_Q_BROKER_CLASS"]}  # noqa: F405
if os.environ.get("TEST_UNIQUE_FORGET_AFTER"):
    RSR_UNIQUE_TASKS = {"forget_after": float(os.environ["TEST_UNIQUE_FORGET_AFTER"])}
