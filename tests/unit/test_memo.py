"""The scrape-to-scrape cache (exporter.memo.LastRead)."""

from __future__ import annotations


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
