"""The cluster tracker: grace for blinking Stats, retention for dead ones, expected hosts.
Pure bookkeeping on a clock the test passes."""

from __future__ import annotations

from exporter.tracker import ClusterTracker
from tests.factories import stat


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


def test_grace_and_retention_boundaries():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat()], now=0)
    (v,) = t.update([], now=5)
    assert v.up and not v.present  # exactly at the grace: still up
    (v,) = t.update([], now=5.01)
    assert not v.up and v.stat is not None  # down, last Stat kept for the page
    assert len(t.update([], now=60)) == 1  # exactly at the retention: still reported
    assert t.update([], now=60.01) == []


def test_a_cluster_that_comes_back_reads_up_with_its_new_identity():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat(cid="first")], now=0)
    (v,) = t.update([], now=20)
    assert not v.up
    (v,) = t.update([stat(cid="second", ts=1020)], now=21)
    assert v.up and v.stat.cluster_id == "second" and v.last_seen == 21


def test_hosts_are_tracked_independently():
    t = ClusterTracker("rsr", grace=5, retention=60)
    t.update([stat("a"), stat("b")], now=0)
    views = {v.host: v for v in t.update([stat("b", ts=1010)], now=10)}
    assert not views["a"].up and views["b"].up


def test_expected_host_seen_then_lost_reads_down_but_stays():
    t = ClusterTracker("rsr", grace=5, retention=10, expected_hosts=["h1"])
    (v,) = t.update([], now=0)
    assert not v.up and v.stat is None and v.last_seen is None
    (v,) = t.update([stat()], now=1)
    assert v.up
    (v,) = t.update([], now=1000)
    assert not v.up and v.stat is not None
