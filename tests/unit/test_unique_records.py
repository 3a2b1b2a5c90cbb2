"""Unique-task records parsed (pure) and the decorator's timing checks."""

from __future__ import annotations

import pytest

from exporter.sources.unique import parse
from rsr_tasks.heartbeat import check_timing


def test_parse_running_and_finished_records():
    running = parse("t", {"expiry": 9}, {"token": "x", "host": "h", "pid": 7, "started": 10.5,
                                         "beat": 12.0, "expiry": 5, "last_success": 3.0})
    assert running.running and running.holder.pid == 7 and running.holder.beat == 12.0
    assert running.timeout == 5 and running.last_success == 3.0
    done = parse("t", {"expiry": 9}, {"last_end": 20.0, "last_duration": 2.5,
                                      "last_outcome": "failure"})
    assert not done.running and done.holder is None
    assert done.timeout == 9, "the registry's expiry when the record has none"
    assert (done.last_duration, done.last_outcome, done.last_success) == (2.5, "failure", None)


def test_parse_tolerates_partial_and_malformed_records():
    never_ran = parse("t", {"expiry": 4}, {})
    assert not never_ran.running and never_ran.timeout == 4 and never_ran.last_end is None
    junk = parse("t", {}, {"token": "x", "started": "soon", "pid": "?", "last_end": [1]})
    assert not junk.running and junk.timeout == 0 and junk.last_end is None


def test_beat_must_be_shorter_than_expiry_at_decoration():
    from rsr_tasks.unique import unique_task

    assert check_timing(3, None) == 1
    for beat in (0, 3, 5):
        with pytest.raises(ValueError):
            unique_task("bad-timing", expiry=3, beat=beat)
    with pytest.raises(ValueError):
        unique_task("", expiry=3)
