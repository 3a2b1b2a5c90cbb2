"""Unique-task locks on any shared Django cache (``cache.add``): the weaker backend.

Used when django-q's cache is not Redis, e.g. the embedded default's
SQLite database cache. What it guarantees, and what not:

* Acquire is ``cache.add`` followed by a read-back of our token. On the
  SQLite database cache (IMMEDIATE transactions, as rsr_tasks' settings
  configure it) and on memcached ``add`` is atomic. On the PostgreSQL
  database cache two processes can both "add" over an *expired* row (both
  UPDATE it); the read-back then lets only the last writer run, except in
  a window of one round trip.
* Extend and release are get-then-set / get-then-delete: a holder whose lock
  expired can, within that one round trip, extend or delete a successor's.
* Expiries follow the cache: the database cache stores whole seconds (a
  lock may lapse up to 1 s early; keep ``expiry`` >= 10 s there) and
  decides expiry on the writing host's clock, and record times come from
  the writing host's clock too, so hosts must keep their clocks in sync.

Good enough for one node; use Redis when several nodes share the work.
"""

from __future__ import annotations

import time

from djq_contract import keys
from djq_contract.forgetting import SEEN_FIELD, forgotten, last_seen
from djq_contract.records import HOLDER_FIELDS, Holder
from rsr_tasks.unique.store import Acquire


class CacheUniqueStore:
    def __init__(self, cache, prefix: str, clock=time.time) -> None:
        self.cache = cache
        self.prefix = prefix
        self.clock = clock

    def _lock(self, name: str) -> str:
        return keys.lock_key(self.prefix, name)

    def _statekey(self, name: str) -> str:
        return keys.state_key(self.prefix, name)

    def register(self, name: str, expiry: float) -> None:
        """Read-modify-write of one dict: a process registering another name at the
        same moment can overwrite ours, so write until a read-back shows it."""
        entry = {"expiry": expiry, SEEN_FIELD: self.clock()}
        self._rewrite(lambda registry: registry.get(name) == entry,
                      lambda registry: registry.__setitem__(name, entry),
                      f"registry entry for {name!r}")

    def forget_stale(self, period: float) -> list[str]:
        """Drop entries not seen for ``period`` seconds (``djq_contract.forgetting``) and
        their records; entries with no time at all are stamped now. Not atomic: a run
        that re-registers a task in the same instant may lose its entry until its
        next run."""
        key = keys.registry_key(self.prefix)
        registry = self.cache.get(key) or {}
        records = self.cache.get_many([self._statekey(n) for n in registry])
        now = self.clock()
        gone, stamp = [], []
        for name, entry in registry.items():
            seen = last_seen(entry or {}, records.get(self._statekey(name)) or {})
            if seen is None:
                stamp.append(name)
            elif forgotten(seen, now, period) and self.cache.get(self._lock(name)) is None:
                gone.append(name)
        if not gone and not stamp:
            return []

        def change(current: dict) -> None:
            for name in gone:
                current.pop(name, None)
            for name in stamp:
                if name in current:
                    current[name] = {**(current[name] or {}), SEEN_FIELD: now}

        self._rewrite(lambda current: not set(gone) & set(current) and all(
            (current.get(n) or {}).get(SEEN_FIELD) is not None for n in stamp if n in current),
            change, "registry")
        self.cache.delete_many([self._statekey(n) for n in gone])
        return gone

    def _rewrite(self, done, change, what: str) -> None:
        key = keys.registry_key(self.prefix)
        for _ in range(5):
            registry = self.cache.get(key) or {}
            if done(registry):
                return
            change(registry)
            self.cache.set(key, registry, None)
        raise RuntimeError(f"{what} kept being overwritten")

    def acquire(self, name, token, expiry, host, pid) -> Acquire:
        # A registry lost to a cache flush or eviction is back after one run; while the
        # entry is there this costs one read (the record's ``started`` says it was seen).
        entry = (self.cache.get(keys.registry_key(self.prefix)) or {}).get(name) or {}
        if entry.get("expiry") != expiry:
            self.register(name, expiry)
        now = self.clock()
        if self.cache.add(self._lock(name), token, expiry) and \
                self.cache.get(self._lock(name)) == token:
            state = self.cache.get(self._statekey(name)) or {}
            previous = Holder.of(state)
            state.update(token=token, host=host, pid=pid, started=now, beat=now, expiry=expiry)
            self.cache.set(self._statekey(name), state, None)
            return Acquire(True, previous, now)
        return Acquire(False, Holder.of(self.cache.get(self._statekey(name)) or {}), now)

    def extend(self, name, token, expiry) -> bool:
        if self.cache.get(self._lock(name)) != token:
            return False
        self.cache.set(self._lock(name), token, expiry)
        state = self.cache.get(self._statekey(name)) or {}
        if state.get("token") == token:
            state["beat"] = self.clock()
            self.cache.set(self._statekey(name), state, None)
        return True

    def finish(self, name, token, outcome) -> bool:
        released = False
        if self.cache.get(self._lock(name)) == token:
            self.cache.delete(self._lock(name))
            released = True
        state = self.cache.get(self._statekey(name)) or {}
        if state.get("token") == token:
            now = self.clock()
            state.update(last_end=now, last_duration=now - float(state["started"]),
                         last_outcome=outcome)
            if outcome == "success":
                state["last_success"] = now
            for field in HOLDER_FIELDS:
                state.pop(field, None)
            self.cache.set(self._statekey(name), state, None)
        return released
