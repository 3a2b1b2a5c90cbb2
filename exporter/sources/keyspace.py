"""Find Stat keys and queue lists in Redis when no worker keeps the index.

Workers that load the ``rsr_tasks`` app (or use a broker class with its index
mixin) list their Stat keys and queues in two sorted sets, and readers never
look further. Workers running django-q2 alone keep no such list; for them this
module walks the keyspace with ``SCAN`` in a background thread, never on a
probe's or a scrape's path: probes and scrapes read the keys found here with
one ``MGET`` (O(1) in the keyspace), and a pass runs again only when the local
cluster's key is missing (a new ``cluster_id`` after a restart) or, for other
hosts' clusters and queues, every ``REFRESH`` seconds. Each ``SCAN`` call
examines about ``SCAN_COUNT`` keys (Redis is never blocked for long); a whole
pass grows with the keyspace, which bounds how long a restarted cluster waits
to be found (see docs/stat-discovery.md).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable

from exporter.errors import describe

log = logging.getLogger("exporter.sources.keyspace")

SCAN_COUNT = 1000
#: Seconds between passes while the local cluster's Stat is missing ...
URGENT_GAP = 2.0
#: ... and at least this multiple of the last pass's length (Redis busy <= 1/(1+DUTY)).
DUTY = 4.0
#: Seconds between passes that only look for other hosts' clusters and new queues.
REFRESH = 60.0


def pass_due(since_last: float | None, last_duration: float, local_found: bool,
             index_live: int, index_expected: bool, refresh: float | None = REFRESH) -> bool:
    """Whether a SCAN pass should start now.

    Never while the workers are expected to keep the index and it lists live Stats:
    the local cluster, if running, is in it. Otherwise soon (paced by the length of
    the last pass) while the local cluster is missing, and every ``refresh`` seconds
    for the rest; never for the rest when ``refresh`` is None (an exporter that
    publishes only its own cluster needs no other hosts or queues)."""
    if index_live and index_expected:
        return False
    if local_found and refresh is None:
        return False
    since = math.inf if since_last is None else since_last
    gap = URGENT_GAP if not local_found else refresh
    return since >= max(gap, DUTY * last_duration)


class KeyspaceDiscovery:
    """A background thread of SCAN passes; ``stat_keys()`` and ``queue_names()`` read
    its latest result from memory, ``observe()`` tells it what the last read found."""

    def __init__(self, client, stat_prefix: str, index_key: str, index_expected: bool,
                 clock: Callable[[], float] = time.monotonic,
                 refresh: float | None = REFRESH) -> None:
        self.client = client
        self.refresh = refresh
        self.prefix = stat_prefix.encode() + b":"
        self.index_key = index_key
        self.index_expected = index_expected
        self.clock = clock
        self._lock = threading.Lock()
        self._stat_keys: tuple[bytes, ...] = ()
        self._queues: tuple[str, ...] = ()
        self._observed: tuple[bool, int] | None = None  # (local_found, index_live)
        self._last_end: float | None = None
        self._last_duration = 0.0
        self._failing = False
        self._passes = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # read side (probe and scrape threads): memory only ----------------------------
    def stat_keys(self) -> tuple[bytes, ...]:
        return self._stat_keys

    def queue_names(self) -> tuple[str, ...]:
        return self._queues

    def observe(self, local_found: bool, index_live: int, gone: Iterable[bytes] = ()) -> None:
        """What the last Stat read found; ``gone``: discovered keys that no longer exist
        (a cluster stopped, or restarted under a new ``cluster_id``)."""
        gone = set(gone)
        if gone:
            with self._lock:
                self._stat_keys = tuple(k for k in self._stat_keys if k not in gone)
        previous = self._observed
        self._observed = (local_found, index_live)
        if previous != self._observed and not local_found:
            self._wake.set()

    # the pass thread ----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="keyspace-discovery",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._due():
                    self.scan_once()
                self._failing = False
            except Exception as exc:
                if not self._failing:
                    log.warning("keyspace discovery failed: %s", describe(exc))
                self._failing = True
                self._last_end = self.clock()
            self._wake.wait(1.0)
            self._wake.clear()

    def _due(self) -> bool:
        observed = self._observed
        if observed is None:  # no read yet: whether the index is in use decides
            live = self.client.zcount(self.index_key, time.time() - 60, "+inf")
            observed = self._observed = (False, int(live))
        since = None if self._last_end is None else self.clock() - self._last_end
        return pass_due(since, self._last_duration, observed[0], observed[1],
                        self.index_expected, self.refresh)

    def scan_once(self) -> tuple[int, float]:
        """One whole pass (SCAN calls made, seconds); publishes what it found."""
        started = self.clock()
        cursor, stats, queues, calls = 0, set(), set(), 0
        while True:
            cursor, batch = self.client.scan(cursor, match="django_q:*", count=SCAN_COUNT)
            calls += 1
            for key in batch:
                if key.startswith(self.prefix) and not key.endswith(b":index"):
                    stats.add(key)
                elif key.endswith(b":q"):
                    queues.add(key[len(b"django_q:"):-2].decode("utf-8", "replace"))
            if cursor == 0:
                break
            if self._stop.is_set():
                return calls, self.clock() - started
        with self._lock:
            self._stat_keys = tuple(sorted(stats))
            self._queues = tuple(sorted(queues))
        self._last_end = self.clock()
        self._last_duration = self._last_end - started
        self._passes += 1
        level = logging.INFO if self._passes == 1 else logging.DEBUG
        log.log(level, "keyspace pass: %d SCAN calls in %.2fs found %d Stat key(s) and %d "
                "queue(s)", calls, self._last_duration, len(stats), len(queues))
        return calls, self._last_duration
