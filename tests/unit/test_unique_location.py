"""Where unique-task state lives: one rule for the workers that write it and the exporter
that reads it (``djq_contract.keys.unique_location``)."""

from __future__ import annotations

from djq_contract.keys import lock_key, registry_key, state_key, unique_location


def test_site_name_not_queue_name():
    """A multi-queue site (``cluster_name`` per queue) shares one set of keys under the
    site name, as its Stats and signatures do."""
    q = {"name": "site", "cluster_name": "queue-2", "cache": "locks"}
    where = unique_location(q)
    assert where.prefix == "django_q_exporter:site:unique" and where.cache_alias == "locks"
    assert registry_key(where.prefix) == "django_q_exporter:site:unique:registry"
    assert lock_key(where.prefix, "t") == "django_q_exporter:site:unique:t:lock"
    assert state_key(where.prefix, "t") == "django_q_exporter:site:unique:t:state"


def test_defaults_and_the_unique_tasks_cache_override():
    assert unique_location({}) == unique_location({"name": "default", "cache": "default"})
    assert unique_location({"cache": "q"}, {"cache": "locks"}).cache_alias == "locks"
    assert unique_location({"cache": "q"}, {"timeout": 1}).cache_alias == "q"


def test_exporter_cluster_name_names_the_workers_site():
    """The exporter's --cluster-name watches the workers whose Q_CLUSTER name it is: their
    records are under that name, whatever the exporter's own settings say."""
    workers = unique_location({"name": "billing"})
    exporter = unique_location({"name": "web"}, {}, cluster_name="billing")
    assert exporter == workers
    assert unique_location({"name": "web"}, {}, cluster_name=None).prefix.endswith(":web:unique")
