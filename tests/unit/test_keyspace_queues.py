"""Pure decisions of keyspace discovery and the queue label cap."""

from __future__ import annotations

import math

import pytest

from exporter.collectors.queues import OTHER, cap_queues
from exporter.model import QueueReading
from exporter.sources import keyspace as K


@pytest.mark.parametrize("since, duration, local, live, expected, due", [
    (None, 0.0, False, 0, True, True),       # first pass: nothing known yet
    (None, 0.0, False, 3, True, False),      # workers keep the index: never scan
    (None, 0.0, True, 3, True, False),
    (1.0, 0.1, False, 0, False, False),      # local missing: paced by URGENT_GAP ...
    (K.URGENT_GAP, 0.1, False, 0, False, True),
    (K.URGENT_GAP, 1.0, False, 0, False, False),  # ... and by DUTY x the last pass
    (4.0, 1.0, False, 0, False, True),
    (K.REFRESH - 1, 0.1, True, 0, False, False),  # local found: only the refresh
    (K.REFRESH, 0.1, True, 0, False, True),
    (K.URGENT_GAP, 0.1, False, 2, False, True),   # an index others keep, ours missing
    (K.URGENT_GAP, 0.1, False, 0, True, True),    # index expected but empty: scan
])
def test_pass_due(since, duration, local, live, expected, due):
    assert K.pass_due(since, duration, local, live, expected) is due


def test_refresh_pass_is_paced_by_a_slow_pass():
    assert not K.pass_due(K.REFRESH, K.REFRESH / K.DUTY + 1, True, 0, False)
    assert K.pass_due(math.inf, 1e6, True, 0, False)


def q(name, size, flight=None, at=None):
    return QueueReading(name, size, flight, at)


def test_cap_keeps_own_queue_first_then_names_and_folds_the_rest_into_other():
    readings = [q("zeta", 1, 0, 50.0), q("own", 0, 0), q("alpha", 2, 1, 40.0),
                q("mid", 3, 2, 30.0), q("beta", 0, 4)]
    capped = cap_queues(readings, "own", 3)
    assert [r.queue for r in capped] == ["own", "alpha", "beta", OTHER]
    other = capped[-1]
    assert (other.size, other.in_flight, other.oldest_enqueued_at) == (4, 2, 30.0)


def test_cap_other_ignores_the_head_of_empty_queues_and_redis_has_no_leases():
    readings = [q("own", 0), q("a", 0, None, 10.0), q("b", 5, None, 20.0)]
    other = cap_queues(readings, "own", 1)[-1]
    assert (other.queue, other.size, other.in_flight, other.oldest_enqueued_at) == (
        OTHER, 5, None, 20.0)


def test_cap_not_reached_keeps_every_name():
    readings = [q("b", 1), q("own", 0), q("a", 1)]
    assert [r.queue for r in cap_queues(readings, "own", 3)] == ["own", "a", "b"]


def test_a_queue_named_other_cannot_pose_as_the_fold():
    capped = cap_queues([q("own", 0), q(OTHER, 7), q("a", 1)], "own", 5)
    assert [r.queue for r in capped] == ["own", "a", OTHER]
    assert capped[-1].size == 7
