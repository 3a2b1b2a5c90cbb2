"""--scope: what each exporter publishes (from the catalogue), its configuration and the
readiness of the cluster-scope exporter; pure, no servers."""

from __future__ import annotations

import pytest

from djq_contract import catalogue
from exporter import health
from exporter.config import Config, ConfigError, parse
from exporter.sources import keyspace as K
from tests.unit.test_health import observation


def test_local_and_cluster_scopes_partition_the_catalogue():
    """Together they publish every family; only the exporter's own families twice."""
    local, cluster = catalogue.published("local"), catalogue.published("cluster")
    assert local | cluster == catalogue.published("all") == set(catalogue.FAMILIES)
    assert local & cluster == catalogue.EXPORTER_SELF
    assert {catalogue.LOCAL_CLUSTER_READY.name, catalogue.TASKS.name} <= local
    assert catalogue.CLUSTER_UP.name not in local and catalogue.QUEUE_SIZE.name not in local
    assert {catalogue.CLUSTER_UP.name, catalogue.QUEUE_SIZE.name,
            catalogue.UNIQUE_RUNNING.name, catalogue.SCHEDULE_DELAY.name} <= cluster
    assert catalogue.READINESS_CHECK.name not in cluster
    with pytest.raises(ValueError, match="scope 'pod'"):
        catalogue.published("pod")


def test_scope_flag_and_environment():
    assert parse([], {}).scope == "all"
    assert parse(["--scope", "LOCAL"], {}).scope == "local"
    assert parse([], {"DJANGO_Q_EXPORTER_SCOPE": "cluster"}).scope == "cluster"
    with pytest.raises(ConfigError, match="--scope: 'pod' is not one of ALL, LOCAL, CLUSTER"):
        parse(["--scope", "pod"], {})


def test_expected_hosts_need_an_exporter_that_publishes_clusters():
    with pytest.raises(ConfigError, match="DJANGO_Q_EXPORTER_EXPECTED_HOSTS: expected hosts"):
        parse(["--scope", "local"], {"DJANGO_Q_EXPORTER_EXPECTED_HOSTS": "a,b"})
    assert parse(["--scope", "cluster", "--expected-hosts", "a"], {}).expected_hosts == ("a",)


def test_cluster_scope_is_ready_without_a_local_cluster_and_not_when_the_broker_fails():
    cfg = Config(django_settings="x", hostname="h1", scope="cluster", startup_grace=0.001)
    obs = observation(now=1000.0)  # no local cluster, startup grace long past
    assert not health.readiness(obs, Config(django_settings="x", hostname="h1")).ok
    report = health.readiness(obs, cfg)
    assert report.ok and [c.name for c in report.checks] == ["config", "stats", "broker"]
    assert not health.readiness(observation(now=1000.0, broker_error="timeout"), cfg).ok
    assert not health.readiness(observation(now=1000.0, bad_signatures=1), cfg).ok


def test_local_scope_discovery_passes_only_while_its_own_stat_is_missing():
    assert not K.pass_due(None, 0.0, True, 0, False, refresh=None)
    assert not K.pass_due(10 * K.REFRESH, 0.0, True, 0, False, refresh=None)
    assert K.pass_due(K.URGENT_GAP, 0.0, False, 0, False, refresh=None)
    assert K.pass_due(K.REFRESH, 0.0, True, 0, False)  # the other scopes refresh
