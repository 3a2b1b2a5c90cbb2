"""Pure decision logic without I/O: config parsing, cluster tracking, health checks."""

from __future__ import annotations

import pytest

from exporter import health
from exporter.config import DEFAULT_PORT, Config, ConfigError, parse
from exporter.model import ClusterStat
from exporter.tracker import ClusterTracker
from exporter.urls import mask_url


def stat(host="h1", status="idle", workers=(11, 12), ts=1000.0, sentinel=10, cid="c1"):
    return ClusterStat("rsr", host, cid, status, tuple(workers), 9, sentinel, 13, 14, 0,
                       900.0, ts, 0, 0)


# config -----------------------------------------------------------------------------
def test_flag_beats_env_beats_default():
    cfg = parse(["--stat-grace", "7"], {"DJANGO_Q_EXPORTER_STAT_GRACE": "9",
                                         "DJANGO_Q_EXPORTER_RETENTION": "60"})
    assert cfg.stat_grace == 7.0 and cfg.retention == 60.0
    assert cfg.listen_port == DEFAULT_PORT and cfg.backend_timeout == 1.0


def test_listen_address_forms():
    assert parse(["--listen-address", "[::1]:9000"], {}).listen_host == "::1"
    assert parse(["--listen-address", ":9001"], {}).listen_host == "0.0.0.0"
    assert parse(["--listen-address", "9002"], {}).listen_port == 9002


@pytest.mark.parametrize("argv", [["--retention", "nan"], ["--retention", "inf"],
                                  ["--max-connections", "0"], ["--listen-address", "a b:1"]])
def test_rejects(argv):
    with pytest.raises(ConfigError):
        parse(argv, {})


def test_expected_hosts_list():
    assert parse(["--expected-hosts", "a, b,,c"], {}).expected_hosts == ("a", "b", "c")


def test_mask_url():
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("postgres://u:pw@[::1]:5/db") == "postgres://u:***@[::1]:5/db"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"


# tracker ----------------------------------------------------------------------------
def test_grace_then_down_then_dropped():
    t = ClusterTracker("rsr", grace=5, retention=60)
    (v,) = t.update([stat()], now=100)
    assert v.up and v.present
    (v,) = t.update([], now=104)  # blinked out, within grace
    assert v.up and not v.present
    (v,) = t.update([], now=106)
    assert not v.up
    assert t.update([], now=100 + 61) == []  # past retention: series go away


def test_stopping_status_is_down_at_once():
    t = ClusterTracker("rsr", grace=5, retention=60)
    (v,) = t.update([stat(status="stopping")], now=1)
    assert not v.up and v.status == "stopping"


def test_newest_stat_per_host_wins():
    t = ClusterTracker("rsr", grace=5, retention=60)
    (v,) = t.update([stat(ts=5, cid="old", status="stopped"), stat(ts=9, cid="new")], now=10)
    assert v.stat.cluster_id == "new" and v.up


def test_expected_host_reads_down_and_is_never_dropped():
    t = ClusterTracker("rsr", grace=5, retention=10, expected_hosts=["h2"])
    views = {v.host: v for v in t.update([stat()], now=0)}
    assert views["h2"].stat is None and not views["h2"].up
    views = {v.host: v for v in t.update([], now=1000)}
    assert "h2" in views and "h1" not in views


# health -----------------------------------------------------------------------------
CFG = Config(django_settings="x", hostname="h1")


def obs(now=100.0, views=None, **kw):
    t = ClusterTracker("rsr", grace=CFG.stat_grace, retention=CFG.retention)
    local = None
    for view, at in views or []:
        (local,) = t.update([view], now=at)
    if local is not None:
        (local,) = t.update([], now=now)
    base = dict(now=now, process_started=0.0, local_host="h1", cluster_name="rsr",
                local=local, sentinel_alive=True if local else None)
    base.update(kw)
    return health.HealthObservation(**base)


def failing(report):
    return {c.name for c in report.checks if not c.ok}


def test_ready_when_everything_holds():
    report = health.readiness(obs(views=[(stat(), 100.0)]), CFG)
    assert report.ok, report


def test_not_ready_reasons():
    assert failing(health.readiness(obs(views=[(stat(status="starting"), 100)]), CFG)) == {
        "status"}
    assert failing(health.readiness(obs(views=[(stat(workers=()), 100)]), CFG)) == {"workers"}
    assert failing(health.readiness(obs(views=[(stat(), 100)], broker_error="t/o"), CFG)) == {
        "broker"}
    assert "cluster_seen" in failing(health.readiness(obs(views=[(stat(), 90)]), CFG))
    assert failing(health.readiness(obs(views=[(stat(), 100)], bad_signatures=2), CFG)) == {
        "config"}
    assert failing(health.readiness(obs(views=[(stat(), 100)], sentinel_alive=False), CFG)) == {
        "sentinel_process"}


def test_startup_grace_reason_then_plain_failure():
    early = health.readiness(obs(now=10), CFG)
    reason = next(c.reason for c in early.checks if c.name == "cluster_seen")
    assert not early.ok and "startup grace" in reason
    late = health.readiness(obs(now=CFG.startup_grace + 1, other_names=("other",)), CFG)
    reason = next(c.reason for c in late.checks if c.name == "cluster_seen")
    assert "since start" in reason and "other" in reason


def test_liveness_only_fails_for_a_dead_local_sentinel():
    assert health.liveness(obs(broker_error="down", stats_error="down"), CFG).ok
    assert not health.liveness(obs(views=[(stat(), 100)], sentinel_alive=False), CFG).ok


# exposition ---------------------------------------------------------------------------
def test_text_encoder_matches_prometheus_client():
    """Our lean encoder writes exactly the samples prometheus_client's generate_latest does."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.parser import text_string_to_metric_families

    from exporter.exposition import text

    class Fixed:
        def collect(self):
            g = GaugeMetricFamily("g_x", 'help with \\ and\nnewline', labels=["a", "b"])
            g.add_metric(['v"q', "line\nbreak\\"], 1.5)
            g.add_metric(["plain", "x"], float("inf"))
            g.add_metric(["nan", "y"], float("nan"))
            g.add_metric(["big", "z"], 1795888916.036931)
            c = CounterMetricFamily("c_x", "a counter", labels=["k"])
            c.add_metric(["v"], 3)
            h = HistogramMetricFamily("h_x", "a histogram", labels=["f"])
            h.add_metric(["f1"], [("0.1", 1), ("1.0", 2), ("+Inf", 3)], 4.5)
            u = GaugeMetricFamily("u_x", "no labels", value=0)
            # label sets and values seen above again (formatted once per scrape, cached):
            # the cache must tell -0.0 from 0.0, and key orders apart
            again = GaugeMetricFamily("again_x", "repeats", labels=["b", "a"])
            again.add_metric(["line\nbreak\\", 'v"q'], -0.0)
            again.add_metric(["x", "plain"], 0.0)
            again.add_metric(["z", "big"], 1.5)
            return [g, c, h, u, again]

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())
    ours, theirs = text(registry).decode(), generate_latest(registry).decode()

    def parsed(body):
        return [(f.name, f.type, f.documentation,
                 [(s.name, s.labels, repr(s.value)) for s in f.samples])
                for f in text_string_to_metric_families(body)]

    assert parsed(ours) == parsed(theirs)
    assert ours == theirs


# scrape-to-scrape cache -----------------------------------------------------------------
def test_last_read_cache_reuses_and_forgets():
    """A value computed in one read is reused by the next; one not touched by a read is
    gone after it (the cache never outgrows one read's keys)."""
    from exporter.memo import LastRead

    computed = []

    def compute(key):
        computed.append(key)
        return object()

    cache = LastRead()
    a, b = cache.get("a", compute), cache.get("b", compute)
    assert cache.get("a", compute) is a  # within a read
    cache.rotate()
    assert cache.get("a", compute) is a  # the next read reuses it
    cache.rotate()  # "b" was not touched by that read
    assert len(cache) == 1
    assert cache.get("b", compute) is not b
    assert computed == ["a", "b", "b"]
