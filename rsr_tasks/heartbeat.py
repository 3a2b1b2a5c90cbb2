"""CacheHeartbeat: keep a unique-task lock alive while a run lasts.

A daemon thread extends the lock every ``beat`` seconds, only while the
token is still ours (atomic on Redis). Ownership is judged on this process's
monotonic clock, never on a wall clock: the lock is ours for ``expiry``
seconds from the moment we *sent* the last extension that succeeded (or the
acquire). Hence:

* the store answers "not ours" (the key expired, was deleted, or another
  holder took it, e.g. after a failover to a replica that never saw it):
  the run is lost at once;
* the store fails (Redis restarting, failing over, blackholed): the beat is
  retried, sooner than usual; if the lock is still ours when it answers
  again (a restart that kept its data, a short network cut) nothing is lost;
  once ``expiry`` has passed without a successful extension, someone else
  may hold the lock, so the run is lost.

Once lost, the thread stops and never writes again, so it cannot resurrect a
key that was released or re-acquired. ``__exit__`` stops and joins the
thread before the caller releases the lock, so the thread never outlives the
run and no beat can land after the release.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("rsr_tasks.unique")

#: The shortest wait between retries of a failed beat.
MIN_RETRY = 0.05


def default_beat(expiry: float) -> float:
    return max(expiry / 3, 0.05)


def check_timing(expiry: float, beat: float | None) -> float:
    """The beat interval for ``expiry``; ValueError unless 0 < beat < expiry."""
    beat = default_beat(expiry) if beat is None else float(beat)
    if not 0 < beat < expiry:
        raise ValueError(f"beat ({beat}) must be positive and shorter than the expiry ({expiry})")
    return beat


class CacheHeartbeat:
    """Context manager around a run that holds ``token`` on lock ``name``.

    ``store``: anything with ``extend(name, token, expiry) -> bool`` (see
    rsr_tasks.unique.store). ``acquired_at``: ``time.monotonic()`` taken just
    before the acquire was sent (default: now, for use right after acquiring).
    ``on_error``: called with each exception from the store (e.g. to count it).
    """

    def __init__(self, store, name: str, token: str, expiry: float,
                 beat: float | None = None, *, acquired_at: float | None = None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.store = store
        self.name = name
        self.token = token
        self.expiry = float(expiry)
        self.beat = check_timing(self.expiry, beat)
        self.on_error = on_error
        self.lost_reason: str | None = None
        self.errors = 0
        self.beats = 0
        self._valid_from = time.monotonic() if acquired_at is None else acquired_at
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat:{name}", daemon=True)

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    @property
    def held(self) -> bool:
        """True while the lock is ours as far as we can know: not lost, and an
        extension (or the acquire) succeeded less than ``expiry`` s ago. Turns
        False on time even while a beat is still waiting for a hung backend."""
        return not self.lost and time.monotonic() - self._valid_from < self.expiry

    def __enter__(self) -> CacheHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if not self.lost and time.monotonic() - self._valid_from >= self.expiry:
            # No beat got through for a whole expiry (process frozen, thread starved):
            # the lock may have lapsed and been taken meanwhile.
            self._lose(f"no heartbeat succeeded within the expiry ({self.expiry:g} s)")

    def _lose(self, reason: str) -> None:
        self.lost_reason = reason

    def _run(self) -> None:
        wait = self.beat
        while not self._stop.wait(wait):
            sent = time.monotonic()
            try:
                ok = self.store.extend(self.name, self.token, self.expiry)
            except Exception as exc:
                self.errors += 1
                if self.on_error is not None:
                    self.on_error(exc)
                left = self._valid_from + self.expiry - time.monotonic()
                if left <= 0:
                    self._lose(f"heartbeat failed for longer than the expiry "
                               f"({self.expiry:g} s): {type(exc).__name__}: {exc}")
                    return
                log.warning("unique task %s: heartbeat failed (%s: %s); lock still ours for "
                            "%.2f s, retrying", self.name, type(exc).__name__, exc, left)
                wait = min(self.beat, max(MIN_RETRY, left / 2))
                continue
            if not ok:
                self._lose("lock expired or taken over by another holder")
                return
            self._valid_from = sent
            self.beats += 1
            wait = self.beat
