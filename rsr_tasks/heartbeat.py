"""CacheHeartbeat: keep a unique-task lock alive while a run lasts.

A daemon thread extends the lock every ``beat`` seconds, but only while the
token is still ours (atomic on Redis). If an extension fails — the cache is
down, or the key expired or was taken over — the heartbeat marks the run
``lost`` and stops: it never writes again, so it cannot resurrect a key that
was released or re-acquired. ``__exit__`` stops and joins the thread before
the caller releases the lock, so the thread never outlives the run and no
beat can land after the release.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("rsr_tasks.unique")


class CacheHeartbeat:
    def __init__(self, store, name: str, token: str, expiry: float,
                 beat: float | None = None) -> None:
        self.store = store
        self.name = name
        self.token = token
        self.expiry = expiry
        self.beat = beat if beat is not None else max(expiry / 3, 0.05)
        if not 0 < self.beat < expiry:
            raise ValueError(f"beat ({self.beat}) must be positive and shorter than "
                             f"the expiry ({expiry})")
        self.lost_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat:{name}", daemon=True)

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    def __enter__(self) -> CacheHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.beat):
            try:
                ok = self.store.extend(self.name, self.token, self.expiry)
            except Exception as exc:
                self.lost_reason = f"heartbeat failed: {type(exc).__name__}: {exc}"
                return
            if not ok:
                self.lost_reason = "lock expired or taken over by another holder"
                return
