"""Demo settings with misconfigurations switched on by environment (tests only).

TEST_Q_CACHE_BACKEND=locmem   the Q cache becomes a per-process LocMemCache
TEST_Q_CACHE_ALIAS=name       Q_CLUSTER["cache"] names an alias (maybe missing)
TEST_Q_BROKER_CLASS=path      Q_CLUSTER["broker_class"] ("stock": no broker_class at all)
TEST_WITHOUT_RSR_TASKS=1      the rsr_tasks app is not installed
TEST_Q_ALT_CLUSTERS=a,b       Q_CLUSTER["ALT_CLUSTERS"] (for Q_CLUSTER_NAME=a)
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
