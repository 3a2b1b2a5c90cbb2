"""The status page's reads: side by side, within one budget, one flight per source.

The reads here are plain functions (a hanging backend is an Event nobody sets), so
the bookkeeping is tested without servers; the pages' integration tests use real ones.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from exporter.status.reader import ParallelReads
from tests.procs import wait_for


def test_failures_and_overruns_become_errors_and_a_hung_read_is_joined_not_repeated():
    release = threading.Event()
    calls = {"hang": 0}

    def hang():
        calls["hang"] += 1
        release.wait(10)
        return "late"

    def boom():
        raise ConnectionError("refused")

    with ThreadPoolExecutor(4) as pool:
        reads = ParallelReads({"ok": lambda: 42, "boom": boom, "hang": hang}, pool, 0.2)
        started = time.monotonic()
        out = reads.run()
        assert time.monotonic() - started < 2
        assert out["ok"].value == 42 and out["ok"].error is None
        assert out["boom"].error == "ConnectionError: refused"
        assert out["hang"].error == "no answer within 0.2s"
        assert reads.run()["hang"].error == "no answer within 0.2s"
        assert calls["hang"] == 1  # the second load joined the read still running
        release.set()
        wait_for(lambda: reads.run()["hang"].value == "late", 5, 0.01, what="the late answer")
        before = calls["hang"]
        reads.run()
        assert calls["hang"] == before + 1  # a finished read is never reused: read afresh
