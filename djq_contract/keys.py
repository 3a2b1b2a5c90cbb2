"""Where things live in Redis and the Django cache, for writers and readers alike.

Cluster Stats are django-q2's own keys (``django_q:{name}:cluster:{id}``);
the Stat index is ours: a sorted set of those keys scored by their expiry,
kept by ``rsr_tasks.broker.IndexedRedisBroker`` so the exporter finds live
Stats without ``KEYS``. A broker class that keeps it says so with the class
attribute named ``STAT_INDEX_FLAG``, which lets the exporter recognise it
without importing task code.

Unique-task keys (all under ``django_q_exporter:{name}:unique``):

* ``…:registry`` – every unique task name with its expiry (a Redis hash of
  JSON strings, or one dict in the Django cache);
* ``…:{task}:lock`` – the lock: the holder's random token, with the expiry;
* ``…:{task}:state`` – the heartbeat record (``djq_contract.records``).

``{name}`` is always the django-q site name, ``Q_CLUSTER["name"]``
(django-q2's ``Conf.PREFIX``): the name its Stats and signatures use, shared
by every queue of a multi-queue site. ``Q_CLUSTER["cluster_name"]`` (the
queue) never appears in these keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Class attribute (True) of a broker that keeps the Stat index.
STAT_INDEX_FLAG = "keeps_stat_index"
#: Index entries older than this are pruned by the writers (seconds).
STAT_INDEX_RETENTION = 3600


def stat_prefix(cluster_name: str) -> str:
    """django-q2's ``Conf.Q_STAT``: the prefix of every cluster Stat key of a site."""
    return f"django_q:{cluster_name}:cluster"


def stat_index_key(prefix: str) -> str:
    """The sorted set that indexes the Stat keys under ``prefix`` (a ``stat_prefix``)."""
    return f"{prefix}:index"


def queue_key(queue_name: str) -> str:
    """django-q2's Redis broker list for a queue."""
    return f"django_q:{queue_name}:q"


def unique_prefix(cluster_name: str) -> str:
    return f"django_q_exporter:{cluster_name}:unique"


def registry_key(prefix: str) -> str:
    return f"{prefix}:registry"


def lock_key(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:lock"


def state_key(prefix: str, task: str) -> str:
    return f"{prefix}:{task}:state"


@dataclass(frozen=True)
class UniqueLocation:
    """The Django cache alias and key prefix of the unique-task locks and records."""

    cache_alias: str
    prefix: str


def unique_location(q_cluster: Mapping, options: Mapping | None = None,
                    cluster_name: str | None = None) -> UniqueLocation:
    """Where the workers keep unique-task state; the one rule both sides follow.

    ``q_cluster``: the ``Q_CLUSTER`` setting; ``options``: ``RSR_UNIQUE_TASKS``
    (``{"cache": alias}`` overrides django-q's cache). ``cluster_name``: the
    site name when the caller knows it better than these settings do: the
    exporter's ``--cluster-name`` names the site whose Stats it watches, which is
    the ``Q_CLUSTER["name"]`` of the workers that wrote the records (their
    settings, not the exporter's). Workers pass nothing and use their own name.
    """
    options = options or {}
    alias = options.get("cache") or q_cluster.get("cache") or "default"
    name = cluster_name or q_cluster.get("name") or "default"
    return UniqueLocation(str(alias), unique_prefix(str(name)))


def queues_key(prefix: str) -> str:
    """The sorted set of queue names of a site (``prefix``: its ``stat_prefix``), scored
    by the last Stat or enqueue that named them; kept by the same writers as the index."""
    return f"{prefix.rsplit(':', 1)[0]}:queues"


def queue_name(list_key: str) -> str:
    """The queue a Redis broker list serves (the inverse of ``queue_key``)."""
    if list_key.startswith("django_q:") and list_key.endswith(":q"):
        return list_key[len("django_q:"):-len(":q")]
    return list_key
